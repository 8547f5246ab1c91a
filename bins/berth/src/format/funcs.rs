//! Functions and value printing for [`super::template`]: Docker's template functions
//! (`json`, `index`, `join`, ...), Go's comparison and logic functions, and Go's `%v`.

use std::fmt::Write as _;

use super::json::Json;

/// A value and the field name it came from (Go prints a nil slice `[]`, a nil map `map[]`
/// and a nil pointer `<nil>`: JSON has only `null`, so the name tells which it was).
#[derive(Debug, Clone)]
pub(super) struct V {
    pub j: Json,
    pub key: String,
}

pub(super) fn v(j: Json) -> V {
    V { j, key: String::new() }
}

pub(super) fn truthy(j: &Json) -> bool {
    match j {
        Json::Null => false,
        Json::Bool(b) => *b,
        Json::Num(n) => n.as_f64().is_some_and(|f| f != 0.0),
        Json::Str(s) => !s.is_empty(),
        Json::Arr(a) => !a.is_empty(),
        Json::Obj(m) => !m.is_empty(),
    }
}

pub(super) fn type_name(j: &Json) -> &'static str {
    match j {
        Json::Null => "<nil>",
        Json::Bool(_) => "bool",
        Json::Num(_) => "int",
        Json::Str(_) => "string",
        Json::Arr(_) => "[]interface {}",
        Json::Obj(_) => "map[string]interface {}",
    }
}

/// Text of a value as a string argument (no quoting).
pub(super) fn plain(j: &Json) -> String {
    go_string(j, "")
}

fn cmp_values(a: &Json, b: &Json) -> Option<std::cmp::Ordering> {
    match (a, b) {
        (Json::Num(x), Json::Num(y)) => x.as_f64()?.partial_cmp(&y.as_f64()?),
        (Json::Str(x), Json::Str(y)) => Some(x.cmp(y)),
        (Json::Bool(x), Json::Bool(y)) => Some(x.cmp(y)),
        (Json::Null, Json::Null) => Some(std::cmp::Ordering::Equal),
        _ => None,
    }
}

pub(super) fn call(name: &str, args: Vec<V>) -> Result<V, String> {
    let need = |n: usize| -> Result<(), String> {
        if args.len() != n {
            return Err(format!("wrong number of args for {name}: want {n} got {}", args.len()));
        }
        Ok(())
    };
    let s = |i: usize| plain(&args[i].j);
    let out = match name {
        "json" => {
            need(1)?;
            Json::Str(args[0].j.to_compact())
        }
        "index" => {
            let mut cur = args.first().map(|a| a.j.clone()).unwrap_or_default();
            for k in &args[1..] {
                cur = match (&cur, &k.j) {
                    (Json::Obj(_), key) => cur.get(&plain(key)).cloned().unwrap_or(Json::Null),
                    (Json::Arr(a), Json::Num(n)) => {
                        let i = n.as_i64().unwrap_or(-1);
                        a.get(i as usize).cloned().ok_or_else(|| format!("error calling index: index out of range: {i}"))?
                    }
                    (Json::Null, _) => Json::Null,
                    _ => return Err(format!("error calling index: cannot index {}", type_name(&cur))),
                };
            }
            cur
        }
        "join" => {
            need(2)?;
            let parts: Vec<String> = match &args[0].j {
                Json::Arr(a) => a.iter().map(plain).collect(),
                Json::Null => vec![],
                o => vec![plain(o)],
            };
            Json::Str(parts.join(&s(1)))
        }
        "split" => {
            need(2)?;
            Json::Arr(s(0).split(s(1).as_str()).map(|x| Json::Str(x.to_owned())).collect())
        }
        "upper" => Json::Str(s(0).to_uppercase()),
        "lower" => Json::Str(s(0).to_lowercase()),
        "title" => Json::Str(
            s(0).split(' ')
                .map(|w| {
                    let mut c = w.chars();
                    c.next().map(|f| f.to_uppercase().chain(c).collect()).unwrap_or_default()
                })
                .collect::<Vec<String>>()
                .join(" "),
        ),
        "truncate" => {
            need(2)?;
            let n = args[1].j.as_i64().unwrap_or(0).max(0) as usize;
            Json::Str(s(0).chars().take(n).collect())
        }
        "pad" => {
            need(3)?;
            let l = " ".repeat(args[1].j.as_i64().unwrap_or(0).max(0) as usize);
            let r = " ".repeat(args[2].j.as_i64().unwrap_or(0).max(0) as usize);
            Json::Str(format!("{l}{}{r}", s(0)))
        }
        "len" => {
            need(1)?;
            let n = match &args[0].j {
                Json::Str(x) => x.len(),
                Json::Arr(a) => a.len(),
                Json::Obj(m) => m.len(),
                Json::Null => 0,
                o => return Err(format!("len of type {}", type_name(o))),
            };
            Json::Num(n.into())
        }
        "print" | "println" => {
            let mut t = String::new();
            for (i, a) in args.iter().enumerate() {
                // Go's Sprint puts spaces only between non-strings; Sprintln always.
                if i > 0 && (name == "println" || (!matches!(a.j, Json::Str(_)) && !matches!(args[i - 1].j, Json::Str(_)))) {
                    t.push(' ');
                }
                print_value(a, &mut t);
            }
            if name == "println" {
                t.push('\n');
            }
            Json::Str(t)
        }
        "printf" => {
            let fmt = args.first().map(|a| plain(&a.j)).unwrap_or_default();
            Json::Str(printf(&fmt, &args[1.min(args.len())..]))
        }
        "eq" => Json::Bool(args.len() >= 2 && args[1..].iter().any(|b| cmp_values(&args[0].j, &b.j) == Some(std::cmp::Ordering::Equal))),
        "ne" => {
            need(2)?;
            Json::Bool(cmp_values(&args[0].j, &args[1].j) != Some(std::cmp::Ordering::Equal))
        }
        "lt" | "le" | "gt" | "ge" => {
            need(2)?;
            let o = cmp_values(&args[0].j, &args[1].j).ok_or_else(|| format!("error calling {name}: incompatible types for comparison"))?;
            use std::cmp::Ordering::*;
            Json::Bool(match name {
                "lt" => o == Less,
                "le" => o != Greater,
                "gt" => o == Greater,
                _ => o != Less,
            })
        }
        "not" => {
            need(1)?;
            Json::Bool(!truthy(&args[0].j))
        }
        "and" => return Ok(args.iter().find(|a| !truthy(&a.j)).or(args.last()).cloned().unwrap_or_else(|| v(Json::Null))),
        "or" => return Ok(args.iter().find(|a| truthy(&a.j)).or(args.last()).cloned().unwrap_or_else(|| v(Json::Null))),
        _ => return Err(format!("function \"{name}\" not defined")),
    };
    Ok(v(out))
}

/// `printf` with the verbs people use: %s %v %d %q %%, widths like %-10s.
fn printf(fmt: &str, args: &[V]) -> String {
    let mut out = String::new();
    let mut it = fmt.chars().peekable();
    let mut ai = 0;
    while let Some(c) = it.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        let mut spec = String::new();
        while let Some(&d) = it.peek() {
            if d == '-' || d.is_ascii_digit() || d == '.' {
                spec.push(d);
                it.next();
            } else {
                break;
            }
        }
        let Some(verb) = it.next() else { break };
        if verb == '%' {
            out.push('%');
            continue;
        }
        let Some(a) = args.get(ai) else {
            let _ = write!(out, "%!{verb}(MISSING)");
            continue;
        };
        ai += 1;
        let mut text = String::new();
        match verb {
            'q' => text = serde_json::to_string(&plain(&a.j)).unwrap_or_default(),
            _ => print_value(a, &mut text),
        }
        let left = spec.starts_with('-');
        let width: usize = spec.trim_start_matches('-').split('.').next().and_then(|w| w.parse().ok()).unwrap_or(0);
        let n = text.chars().count();
        if n < width {
            let pad = " ".repeat(width - n);
            text = if left { text + &pad } else { pad + &text };
        }
        out.push_str(&text);
    }
    out
}

/// Fields whose Go type is a map (`map[k:v]`, nil `map[]`), not a struct.
const MAP_FIELDS: &[&str] = &[
    "Labels", "Attributes", "Options", "Tmpfs", "Sysctls", "StorageOpt", "Annotations", "Volumes", "ExposedPorts",
    "PortBindings", "Ports", "Networks", "DriverOpts", "Data", "Config", "EndpointsConfig", "Status", "Runtimes",
];
/// Fields whose Go type is a pointer (nil prints `<nil>`).
const POINTER_FIELDS: &[&str] = &[
    "PidsLimit", "Init", "OomKillDisable", "MemorySwappiness", "Healthcheck", "Health", "StopTimeout", "SizeRw",
    "SizeRootFs", "ExitCode", "Platform", "IPAMConfig", "BindOptions", "VolumeOptions", "TmpfsOptions", "Error",
];

pub(super) fn print_value(x: &V, out: &mut String) {
    out.push_str(&go_string(&x.j, &x.key));
}

/// Go's `%v` of a value decoded into Docker's types.
pub(super) fn go_string(j: &Json, key: &str) -> String {
    match j {
        Json::Null if POINTER_FIELDS.contains(&key) => "<nil>".into(),
        Json::Null if MAP_FIELDS.contains(&key) => "map[]".into(),
        Json::Null if key.is_empty() => "<no value>".into(),
        Json::Null => "[]".into(),
        Json::Bool(b) => b.to_string(),
        Json::Num(n) => match (n.as_i64(), n.as_u64()) {
            (Some(i), _) => i.to_string(),
            (_, Some(u)) => u.to_string(),
            _ => go_float(n.as_f64().unwrap_or(0.0)),
        },
        Json::Str(s) => s.clone(),
        Json::Arr(a) => format!("[{}]", a.iter().map(|x| go_string(x, "")).collect::<Vec<_>>().join(" ")),
        Json::Obj(m) if MAP_FIELDS.contains(&key) => {
            let mut m: Vec<&(String, Json)> = m.iter().collect();
            m.sort_by(|a, b| a.0.cmp(&b.0));
            format!("map[{}]", m.iter().map(|(k, x)| format!("{k}:{}", go_string(x, k))).collect::<Vec<_>>().join(" "))
        }
        Json::Obj(m) => format!("{{{}}}", m.iter().map(|(k, x)| go_string(x, k)).collect::<Vec<_>>().join(" ")),
    }
}

/// Go's `%v` of a float64: shortest repr, exponent form outside [1e-4, 1e21).
fn go_float(f: f64) -> String {
    let a = f.abs();
    if a != 0.0 && !(1e-4..1e21).contains(&a) {
        let s = format!("{f:e}");
        let (m, e) = s.split_once('e').unwrap_or((&s, "0"));
        let e: i32 = e.parse().unwrap_or(0);
        format!("{m}e{}{:02}", if e < 0 { '-' } else { '+' }, e.abs())
    } else {
        format!("{f}")
    }
}

