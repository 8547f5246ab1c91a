//! The part of Go's text/template that docker `--format` and `inspect -f` users write:
//! fields (`{{.State.Status}}`, `{{.Label "k"}}`), pipelines, `$` and range variables,
//! `if`/`else`/`range`/`with`/`end`, `{{-`/`-}}` trimming, string/number literals and Docker's
//! functions (`json`, `index`, `join`, `split`, `upper`, `lower`, `title`, `truncate`, `pad`,
//! `len`, `print[f|ln]`, comparisons). Values are printed as Go's `%v` prints them.

use super::funcs::{call, go_string, plain, print_value, truthy, type_name, v, V};
use super::json::Json;

#[derive(Debug, Clone)]
enum Arg {
    Dot(Vec<String>),
    Var(String, Vec<String>),
    Ident(String),
    Str(String),
    Num(serde_json::Number),
    Bool(bool),
    Nil,
    Sub(Pipe, Vec<String>),
}

#[derive(Debug, Clone, Default)]
struct Pipe {
    decl: Vec<String>,
    cmds: Vec<Vec<Arg>>,
}

#[derive(Debug, Clone)]
enum Node {
    Text(String),
    Action(Pipe),
    If(Pipe, Vec<Node>, Vec<Node>),
    Range(Pipe, Vec<Node>, Vec<Node>),
    With(Pipe, Vec<Node>, Vec<Node>),
}

#[derive(Debug, Clone)]
pub struct Template {
    nodes: Vec<Node>,
}

// ---------------------------------------------------------------- lexing and parsing

/// Splits the source into text and action bodies, applying trim markers.
fn split(src: &str) -> Result<Vec<(bool, String)>, String> {
    let mut out: Vec<(bool, String)> = Vec::new();
    let mut rest = src;
    let mut trim_next = false;
    while let Some(open) = rest.find("{{") {
        let mut text = &rest[..open];
        if trim_next {
            text = text.trim_start();
        }
        let after = &rest[open + 2..];
        let (trim_left, body_start) = if after.starts_with("- ") || after.starts_with("-\t") || after.starts_with("-\n") { (true, 1) } else { (false, 0) };
        if trim_left {
            text = text.trim_end();
        }
        out.push((false, text.to_owned()));
        let close = find_close(&after[body_start..]).ok_or("unclosed action")?;
        let mut body = &after[body_start..body_start + close];
        trim_next = false;
        if body.ends_with(" -") || body.ends_with("\t-") || body.ends_with("\n-") {
            body = &body[..body.len() - 1];
            trim_next = true;
        }
        out.push((true, body.trim().to_owned()));
        rest = &after[body_start + close + 2..];
    }
    out.push((false, if trim_next { rest.trim_start().to_owned() } else { rest.to_owned() }));
    Ok(out)
}

/// The `}}` that closes an action, skipping quoted strings.
fn find_close(s: &str) -> Option<usize> {
    let b = s.as_bytes();
    let mut i = 0;
    while i + 1 < b.len() + 1 {
        match b.get(i)? {
            b'"' => {
                i += 1;
                while *b.get(i)? != b'"' {
                    if b[i] == b'\\' {
                        i += 1;
                    }
                    i += 1;
                }
            }
            b'`' => {
                i += 1;
                while *b.get(i)? != b'`' {
                    i += 1;
                }
            }
            b'}' if b.get(i + 1) == Some(&b'}') => return Some(i),
            _ => {}
        }
        i += 1;
    }
    None
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Field(Vec<String>),
    Var(String, Vec<String>),
    Ident(String),
    Str(String),
    Num(String),
    Pipe,
    Open,
    Close(Vec<String>),
    Decl,
    Comma,
}

fn fields_after(s: &[char], i: &mut usize) -> Vec<String> {
    let mut out = Vec::new();
    while *i < s.len() && s[*i] == '.' {
        *i += 1;
        let st = *i;
        while *i < s.len() && (s[*i].is_alphanumeric() || s[*i] == '_') {
            *i += 1;
        }
        if *i > st {
            out.push(s[st..*i].iter().collect());
        }
    }
    out
}

fn lex(body: &str) -> Result<Vec<Tok>, String> {
    let s: Vec<char> = body.chars().collect();
    let mut i = 0;
    let mut out = Vec::new();
    while i < s.len() {
        let c = s[i];
        match c {
            c if c.is_whitespace() => i += 1,
            '|' => {
                out.push(Tok::Pipe);
                i += 1
            }
            '(' => {
                out.push(Tok::Open);
                i += 1
            }
            ')' => {
                i += 1;
                out.push(Tok::Close(fields_after(&s, &mut i)));
            }
            ',' => {
                out.push(Tok::Comma);
                i += 1
            }
            ':' if s.get(i + 1) == Some(&'=') => {
                out.push(Tok::Decl);
                i += 2
            }
            '=' => {
                out.push(Tok::Decl);
                i += 1
            }
            '.' => out.push(Tok::Field(fields_after(&s, &mut i))),
            '$' => {
                i += 1;
                let st = i;
                while i < s.len() && (s[i].is_alphanumeric() || s[i] == '_') {
                    i += 1;
                }
                let name: String = s[st..i].iter().collect();
                out.push(Tok::Var(name, fields_after(&s, &mut i)));
            }
            '"' => {
                i += 1;
                let mut t = String::new();
                while i < s.len() && s[i] != '"' {
                    if s[i] == '\\' && i + 1 < s.len() {
                        i += 1;
                        t.push(match s[i] {
                            'n' => '\n',
                            't' => '\t',
                            'r' => '\r',
                            '0' => '\0',
                            o => o,
                        });
                    } else {
                        t.push(s[i]);
                    }
                    i += 1;
                }
                i += 1;
                out.push(Tok::Str(t));
            }
            '`' => {
                i += 1;
                let st = i;
                while i < s.len() && s[i] != '`' {
                    i += 1;
                }
                out.push(Tok::Str(s[st..i].iter().collect()));
                i += 1;
            }
            c if c.is_ascii_digit() || c == '-' => {
                let st = i;
                i += 1;
                while i < s.len() && (s[i].is_ascii_alphanumeric() || s[i] == '.') {
                    i += 1;
                }
                out.push(Tok::Num(s[st..i].iter().collect()));
            }
            c if c.is_alphabetic() || c == '_' => {
                let st = i;
                while i < s.len() && (s[i].is_alphanumeric() || s[i] == '_') {
                    i += 1;
                }
                out.push(Tok::Ident(s[st..i].iter().collect()));
            }
            o => return Err(format!("unexpected {o:?} in command")),
        }
    }
    Ok(out)
}

fn parse_pipe(toks: &[Tok], pos: &mut usize) -> Result<Pipe, String> {
    let mut p = Pipe::default();
    // `$x :=` or `$k, $v :=`
    let mut j = *pos;
    let mut vars = Vec::new();
    while let Some(Tok::Var(n, f)) = toks.get(j) {
        if !f.is_empty() {
            break;
        }
        vars.push(n.clone());
        j += 1;
        match toks.get(j) {
            Some(Tok::Comma) => j += 1,
            Some(Tok::Decl) => {
                p.decl = vars.clone();
                *pos = j + 1;
                break;
            }
            _ => break,
        }
    }
    let mut cmd = Vec::new();
    while let Some(t) = toks.get(*pos) {
        *pos += 1;
        let a = match t {
            Tok::Field(f) => Arg::Dot(f.clone()),
            Tok::Var(n, f) => Arg::Var(n.clone(), f.clone()),
            Tok::Str(s) => Arg::Str(s.clone()),
            Tok::Num(n) => Arg::Num(n.parse().map_err(|_| format!("bad number syntax: {n:?}"))?),
            Tok::Ident(w) => match w.as_str() {
                "true" => Arg::Bool(true),
                "false" => Arg::Bool(false),
                "nil" => Arg::Nil,
                _ => Arg::Ident(w.clone()),
            },
            Tok::Open => {
                let sub = parse_pipe(toks, pos)?;
                match toks.get(*pos) {
                    Some(Tok::Close(f)) => {
                        *pos += 1;
                        Arg::Sub(sub, f.clone())
                    }
                    _ => return Err("unclosed left paren".into()),
                }
            }
            Tok::Close(_) => {
                *pos -= 1;
                break;
            }
            Tok::Pipe => {
                if cmd.is_empty() {
                    return Err("missing command before |".into());
                }
                p.cmds.push(std::mem::take(&mut cmd));
                continue;
            }
            Tok::Decl | Tok::Comma => return Err("unexpected := or ,".into()),
        };
        cmd.push(a);
    }
    if cmd.is_empty() {
        return Err("missing value for command".into());
    }
    p.cmds.push(cmd);
    Ok(p)
}

impl Template {
    pub fn parse(src: &str) -> Result<Template, String> {
        let parts = split(src)?;
        let mut it = parts.into_iter().peekable();
        let (nodes, end) = parse_list(&mut it)?;
        if let Some(e) = end {
            return Err(format!("unexpected {{{{{e}}}}}"));
        }
        Ok(Template { nodes })
    }

    /// Renders against `data`.
    pub fn render(&self, data: &Json) -> Result<String, String> {
        let mut out = String::new();
        let root = v(data.clone());
        let mut vars = vec![("".to_owned(), root.clone())];
        exec(&self.nodes, &root, &mut vars, &mut out)?;
        Ok(out)
    }
}

type Parts = std::iter::Peekable<std::vec::IntoIter<(bool, String)>>;

/// Parses nodes until `{{end}}`/`{{else}}` (returned) or the end of input.
fn parse_list(it: &mut Parts) -> Result<(Vec<Node>, Option<String>), String> {
    let mut nodes = Vec::new();
    while let Some((action, body)) = it.next() {
        if !action {
            if !body.is_empty() {
                nodes.push(Node::Text(body));
            }
            continue;
        }
        if body.starts_with("/*") {
            continue;
        }
        let word = body.split_whitespace().next().unwrap_or("");
        match word {
            "end" | "else" => return Ok((nodes, Some(body))),
            "if" | "range" | "with" => {
                let toks = lex(&body[word.len()..])?;
                let pipe = parse_pipe(&toks, &mut 0)?;
                let (then, end) = parse_list(it)?;
                let mut els = Vec::new();
                match end.as_deref() {
                    Some("end") => {}
                    Some(e) if e.starts_with("else") => {
                        let rest = e["else".len()..].trim();
                        if rest.starts_with("if ") && word == "if" {
                            // `{{else if x}}`: a nested if sharing our `end`.
                            let toks = lex(&rest[2..])?;
                            let p2 = parse_pipe(&toks, &mut 0)?;
                            let (t2, e2) = parse_list(it)?;
                            let mut els2 = Vec::new();
                            if e2.as_deref() == Some("else") {
                                let (x, e3) = parse_list(it)?;
                                els2 = x;
                                if e3.as_deref() != Some("end") {
                                    return Err("missing {{end}}".into());
                                }
                            } else if e2.as_deref() != Some("end") {
                                return Err("missing {{end}}".into());
                            }
                            els.push(Node::If(p2, t2, els2));
                        } else {
                            let (x, e2) = parse_list(it)?;
                            els = x;
                            if e2.as_deref() != Some("end") {
                                return Err("missing {{end}}".into());
                            }
                        }
                    }
                    _ => return Err(format!("unexpected EOF: missing {{{{end}}}} for {word}")),
                }
                nodes.push(match word {
                    "if" => Node::If(pipe, then, els),
                    "range" => Node::Range(pipe, then, els),
                    _ => Node::With(pipe, then, els),
                });
            }
            _ => {
                let toks = lex(&body)?;
                nodes.push(Node::Action(parse_pipe(&toks, &mut 0)?));
            }
        }
    }
    Ok((nodes, None))
}

// ---------------------------------------------------------------- evaluation

type Vars = Vec<(String, V)>;

fn exec(nodes: &[Node], dot: &V, vars: &mut Vars, out: &mut String) -> Result<(), String> {
    for n in nodes {
        match n {
            Node::Text(t) => out.push_str(t),
            Node::Action(p) => {
                let val = eval_pipe(p, dot, vars)?;
                if p.decl.is_empty() {
                    print_value(&val, out);
                }
            }
            Node::If(p, then, els) => {
                let mark = vars.len();
                let c = eval_pipe(p, dot, vars)?;
                exec(if truthy(&c.j) { then } else { els }, dot, vars, out)?;
                vars.truncate(mark);
            }
            Node::With(p, body, els) => {
                let mark = vars.len();
                let c = eval_pipe(p, dot, vars)?;
                if truthy(&c.j) {
                    exec(body, &c, vars, out)?;
                } else {
                    exec(els, dot, vars, out)?;
                }
                vars.truncate(mark);
            }
            Node::Range(p, body, els) => {
                let mut p2 = p.clone();
                let decl = std::mem::take(&mut p2.decl);
                let c = eval_pipe(&p2, dot, vars)?;
                let items: Vec<(Json, V)> = match &c.j {
                    Json::Arr(a) => a.iter().enumerate().map(|(i, x)| (Json::Num(i.into()), v(x.clone()))).collect(),
                    Json::Obj(m) => {
                        // Go ranges over a map in key order.
                        let mut m = m.clone();
                        m.sort_by(|a, b| a.0.cmp(&b.0));
                        m.into_iter().map(|(k, x)| (Json::Str(k.clone()), V { j: x, key: k })).collect()
                    }
                    Json::Null => Vec::new(),
                    Json::Num(n) => (0..n.as_i64().unwrap_or(0)).map(|i| (Json::Num(i.into()), v(Json::Num(i.into())))).collect(),
                    o => return Err(format!("range can't iterate over {}", go_string(o, ""))),
                };
                if items.is_empty() {
                    exec(els, dot, vars, out)?;
                }
                for (k, item) in items {
                    let mark = vars.len();
                    match decl.as_slice() {
                        [a] => vars.push((a.clone(), item.clone())),
                        [a, b] => {
                            vars.push((a.clone(), v(k)));
                            vars.push((b.clone(), item.clone()));
                        }
                        _ => {}
                    }
                    exec(body, &item, vars, out)?;
                    vars.truncate(mark);
                }
            }
        }
    }
    Ok(())
}

fn eval_pipe(p: &Pipe, dot: &V, vars: &mut Vars) -> Result<V, String> {
    let mut prev: Option<V> = None;
    for cmd in &p.cmds {
        prev = Some(eval_cmd(cmd, dot, vars, prev)?);
    }
    let val = prev.unwrap_or_else(|| v(Json::Null));
    for name in &p.decl {
        vars.push((name.clone(), val.clone()));
    }
    Ok(val)
}

fn walk(mut cur: V, fields: &[String]) -> Result<V, String> {
    for f in fields {
        cur = match &cur.j {
            // A missing key prints `<no value>`, as Go's map lookup does.
            Json::Obj(_) => match cur.j.get(f) {
                Some(x) => V { j: x.clone(), key: f.clone() },
                None => v(Json::Null),
            },
            Json::Null => return Err(format!("nil pointer evaluating .{f}")),
            o => return Err(format!("can't evaluate field {f} in type {}", type_name(o))),
        };
    }
    Ok(cur)
}

fn eval_arg(a: &Arg, dot: &V, vars: &mut Vars) -> Result<V, String> {
    Ok(match a {
        Arg::Dot(f) => walk(dot.clone(), f)?,
        Arg::Var(n, f) => {
            let base = vars.iter().rev().find(|(k, _)| k == n).map(|(_, x)| x.clone()).ok_or_else(|| format!("undefined variable \"${n}\""))?;
            walk(base, f)?
        }
        Arg::Str(s) => v(Json::Str(s.clone())),
        Arg::Num(n) => v(Json::Num(n.clone())),
        Arg::Bool(b) => v(Json::Bool(*b)),
        Arg::Nil => v(Json::Null),
        Arg::Sub(p, f) => walk(eval_pipe(p, dot, vars)?, f)?,
        Arg::Ident(n) => call(n, vec![])?,
    })
}

fn eval_cmd(cmd: &[Arg], dot: &V, vars: &mut Vars, prev: Option<V>) -> Result<V, String> {
    if let Some(Arg::Ident(name)) = cmd.first() {
        let mut args = Vec::new();
        for a in &cmd[1..] {
            args.push(eval_arg(a, dot, vars)?);
        }
        args.extend(prev);
        return call(name, args);
    }
    let first = eval_arg(&cmd[0], dot, vars)?;
    if cmd.len() == 1 && prev.is_none() {
        return Ok(first);
    }
    // `.Label "key"`: a method taking an argument, here an index into the map.
    let mut args = Vec::new();
    for a in &cmd[1..] {
        args.push(eval_arg(a, dot, vars)?);
    }
    args.extend(prev);
    match (&first.j, args.as_slice()) {
        (Json::Obj(_), [k]) => Ok(v(first.j.get(&plain(&k.j)).cloned().unwrap_or(Json::Str(String::new())))),
        _ => Err(format!("can't give argument to non-function {}", go_string(&first.j, &first.key))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(t: &str, data: &str) -> String {
        Template::parse(t).unwrap().render(&Json::parse(data.as_bytes()).unwrap()).unwrap()
    }

    const C: &str = r#"{"Id":"abc","State":{"Status":"running","Pid":42,"Running":true},"Config":{"Env":["A=1","B=2"],"Cmd":null,"Labels":{"z":"1","a":"2"},"Healthcheck":null},"HostConfig":{"Memory":104857600,"PidsLimit":null,"LogConfig":{"Type":"json-file","Config":{}}}}"#;

    #[test]
    fn fields_and_functions() {
        assert_eq!(r("{{.State.Status}} {{.Id}} {{.ID}}", C), "running abc abc");
        assert_eq!(r("{{json .State}}", C), r#"{"Status":"running","Pid":42,"Running":true}"#);
        assert_eq!(r(r#"{{index .Config.Labels "a"}}"#, C), "2");
        assert_eq!(r("{{.Config.Env}} {{.Config.Cmd}} {{.Config.Labels}} {{.HostConfig.PidsLimit}}", C), "[A=1 B=2] [] map[a:2 z:1] <nil>");
        assert_eq!(r("{{.HostConfig.Memory}} {{.HostConfig.LogConfig}}", C), "104857600 {json-file map[]}");
        assert_eq!(r(r#"{{join .Config.Env ","}}|{{upper .State.Status}}|{{len .Config.Env}}"#, C), "A=1,B=2|RUNNING|2");
        assert_eq!(r("{{.State.Status | upper}}", C), "RUNNING");
        assert_eq!(r(r#"{{printf "%-8s|" .State.Status}}"#, C), "running |");
        assert_eq!(r("{{.Missing}}", C), "<no value>");
    }

    #[test]
    fn control_flow_and_variables() {
        assert_eq!(r("{{range .Config.Env}}[{{.}}]{{end}}", C), "[A=1][B=2]");
        assert_eq!(r("{{range $k, $v := .Config.Labels}}{{$k}}={{$v}};{{end}}", C), "a=2;z=1;");
        assert_eq!(r("{{if .State.Running}}up{{else}}down{{end}}", C), "up");
        assert_eq!(r("{{if eq .State.Status \"exited\"}}x{{else if .State.Running}}r{{end}}", C), "r");
        assert_eq!(r("{{with .State}}{{.Pid}}{{end}}", C), "42");
        assert_eq!(r("{{range .Config.Cmd}}x{{else}}none{{end}}", C), "none");
        assert_eq!(r("a {{- .Id -}} b\n", C), "aabcb\n");
        assert_eq!(r("{{$.Id}}{{range .Config.Env}}{{$.Id}}{{end}}", C), "abcabcabc");
        assert_eq!(r("{{(index .Config.Env 1)}}", C), "B=2");
    }

    #[test]
    fn errors_are_reported() {
        assert!(Template::parse("{{if .X}}").is_err());
        assert!(Template::parse("{{.X").is_err());
        let t = Template::parse("{{nosuch .X}}").unwrap();
        assert!(t.render(&Json::Obj(vec![])).unwrap_err().contains("not defined"));
    }
}
