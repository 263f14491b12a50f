//! A captured request's head, from a headers file in any of the shapes receivers' logs and tools
//! print: raw `Name: value` lines (optionally after the request line), or JSON.

use anyhow::Context;
use serde_json::Value;

/// A captured request's head.
#[derive(Debug, Default, PartialEq)]
pub(super) struct Head {
    pub(super) method: Option<String>,
    pub(super) path: Option<String>,
    pub(super) headers: Vec<(String, String)>,
}

impl Head {
    pub(super) fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Reads a headers file in any of the accepted shapes.
pub(super) fn parse_head(text: &str) -> anyhow::Result<Head> {
    let trimmed = text.trim_start_matches('\u{feff}').trim();
    if trimmed.starts_with('{') || trimmed.starts_with('[') {
        let v: Value =
            serde_json::from_str(trimmed).context("the headers file is not valid JSON")?;
        let mut head = Head::default();
        let as_str = |v: &Value| match v {
            Value::String(s) => Some(s.clone()),
            Value::Array(a) => a.first().and_then(Value::as_str).map(str::to_owned),
            _ => None,
        };
        match v {
            Value::Object(map) => {
                for (k, v) in map {
                    let v = as_str(&v)
                        .ok_or_else(|| anyhow::anyhow!("header {k:?}: expected a string"))?;
                    head.headers.push((k, v));
                }
            }
            Value::Array(items) => {
                for item in items {
                    let pair = match &item {
                        Value::Array(p) if p.len() == 2 => p[0].as_str().zip(p[1].as_str()),
                        Value::Object(o) => o["name"].as_str().zip(o["value"].as_str()),
                        _ => None,
                    };
                    let (k, v) = pair.ok_or_else(|| {
                        anyhow::anyhow!(
                            "expected [name, value] pairs in the headers file, got {item}"
                        )
                    })?;
                    head.headers.push((k.to_owned(), v.to_owned()));
                }
            }
            _ => unreachable!("starts with {{ or ["),
        }
        return Ok(head);
    }
    let mut head = Head::default();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim_end_matches('\r');
        if line.trim().is_empty() {
            if head.headers.is_empty() && head.method.is_none() {
                continue;
            }
            break; // the body, if the file has one, starts here
        }
        if head.headers.is_empty() && head.method.is_none() {
            if let Some((method, path)) = request_line(line) {
                head.method = Some(method);
                head.path = Some(path);
                continue;
            }
        }
        let (k, v) = line.split_once(':').ok_or_else(|| {
            anyhow::anyhow!("line {}: expected `Name: value`, got {line:?}", n + 1)
        })?;
        head.headers
            .push((k.trim().to_owned(), v.trim().to_owned()));
    }
    Ok(head)
}

/// `POST /hook?x=1 HTTP/1.1` → (POST, /hook?x=1).
fn request_line(line: &str) -> Option<(String, String)> {
    let mut parts = line.split_whitespace();
    let method = parts.next()?;
    let target = parts.next()?;
    let version = parts.next();
    let ok = method.bytes().all(|b| b.is_ascii_uppercase())
        && (target.starts_with('/') || target.contains("://"))
        && version.is_none_or(|v| v.starts_with("HTTP/"))
        && parts.next().is_none();
    if !ok {
        return None;
    }
    // An absolute-form target (proxies) signs only its path and query.
    let target = match url::Url::parse(target) {
        Ok(u) => match u.query() {
            Some(q) => format!("{}?{q}", u.path()),
            None => u.path().to_owned(),
        },
        Err(_) => target.to_owned(),
    };
    Some((method.to_owned(), target))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_headers_with_a_request_line_parse() {
        let head = parse_head(
            "POST /hook.php?x=1 HTTP/1.1\r\nHost: d.example\r\nDigest: sha-256=abc\r\n\r\nbody",
        )
        .unwrap();
        assert_eq!(head.method.as_deref(), Some("POST"));
        assert_eq!(head.path.as_deref(), Some("/hook.php?x=1"));
        assert_eq!(head.header("host"), Some("d.example"));
        assert_eq!(head.header("DIGEST"), Some("sha-256=abc"));
        assert_eq!(
            head.headers.len(),
            2,
            "the body after the blank line is not a header"
        );
    }

    #[test]
    fn json_headers_parse_as_objects_or_pairs() {
        let a = parse_head(r#"{"Host": "d.example", "Date": ["Wed, 25 Nov 2026 10:15:00 GMT"]}"#)
            .unwrap();
        assert_eq!(a.header("date"), Some("Wed, 25 Nov 2026 10:15:00 GMT"));
        let b =
            parse_head(r#"[["host", "d.example"], {"name": "x-nonce", "value": "n"}]"#).unwrap();
        assert_eq!(b.header("x-nonce"), Some("n"));
        assert!(b.method.is_none());
    }

    #[test]
    fn a_line_without_a_colon_is_reported_with_its_number() {
        let e = parse_head("Host: a\nnonsense\n").unwrap_err().to_string();
        assert!(e.contains("line 2"), "{e}");
    }

    #[test]
    fn absolute_form_targets_sign_their_path() {
        assert_eq!(
            request_line("POST http://d.example/a?b=1 HTTP/1.1"),
            Some(("POST".into(), "/a?b=1".into()))
        );
        assert_eq!(request_line("Host: x"), None);
    }
}
