//! Output as the docker CLI writes it: Go templates, tabwriter tables, human units, JSON.

mod funcs;
pub mod json;
pub mod table;
pub mod template;
pub mod units;

use json::Json;
use template::Template;

/// How a listing command prints its rows (`--format`).
pub enum Format {
    /// `table ...` (or the default): header, then aligned rows.
    Table(Template, Template),
    /// A plain template, one rendering per row.
    Raw(Template),
    /// `json`: each row as one JSON line.
    Json,
}

impl Format {
    /// `fmt` as given to `--format` (None: `default`), with the header names of the fields.
    pub fn parse(fmt: Option<&str>, default: &str, headers: &[(&str, &str)]) -> Result<Format, String> {
        let f = fmt.filter(|f| !f.is_empty()).unwrap_or(default);
        let f = if f == "table" { default } else { f };
        if f == "json" {
            return Ok(Format::Json);
        }
        // Docker's preFormat: strip `table `, trim spaces, unescape \t and \n.
        let (table, body) = match f.strip_prefix("table") {
            Some(rest) if rest.is_empty() || rest.starts_with(' ') => (true, rest),
            _ => (false, f),
        };
        let body = body.trim_matches(' ').replace("\\t", "\t").replace("\\n", "\n");
        let t = Template::parse(&body).map_err(|e| format!("template parsing error: {e}"))?;
        if table {
            Ok(Format::Table(t.clone(), t))
        } else {
            let _ = headers;
            Ok(Format::Raw(t))
        }
    }

    /// Renders rows (and the header for tables) into one string.
    pub fn render(&self, rows: &[Json], headers: &[(&str, &str)]) -> Result<String, String> {
        match self {
            Format::Json => {
                let mut out = String::new();
                for r in rows {
                    // `--format json` is Go's json.Marshal, which escapes HTML characters
                    // (the `json` template function does not).
                    let line = r.to_compact().replace('<', "\\u003c").replace('>', "\\u003e").replace('&', "\\u0026");
                    out.push_str(&line);
                    out.push('\n');
                }
                Ok(out)
            }
            Format::Raw(t) => {
                let mut out = String::new();
                for r in rows {
                    out.push_str(&t.render(r).map_err(exec_err)?);
                    out.push('\n');
                }
                Ok(out)
            }
            Format::Table(h, t) => {
                let mut w = table::TabWriter::default();
                let hdr = Json::Obj(headers.iter().map(|(k, v)| (k.to_string(), Json::str(*v))).collect());
                w.write(&h.render(&hdr).unwrap_or_default());
                w.write("\n");
                for r in rows {
                    w.write(&t.render(r).map_err(exec_err)?);
                    w.write("\n");
                }
                Ok(w.finish())
            }
        }
    }
}

fn exec_err(e: String) -> String {
    format!("template: :1: executing \"\": {e}")
}
