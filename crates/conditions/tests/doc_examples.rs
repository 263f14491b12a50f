//! Every condition example in `docs/conditions.md` round-trips through the text form: each
//! valid JSON example (code blocks and inline) prints as text that parses back to it, and each
//! line of the `condition-text` blocks parses and prints back as written.

use hookline_conditions::{parse_text, to_text, Condition};
use serde_json::Value;

fn doc() -> String {
    let path = std::path::Path::new(
        &std::env::var("CARGO_MANIFEST_DIR")
            .unwrap_or_else(|_| env!("CARGO_MANIFEST_DIR").to_owned()),
    )
    .join("../../docs/conditions.md");
    std::fs::read_to_string(path).unwrap()
}

/// The fenced blocks of `lang`, as their text.
fn blocks(doc: &str, lang: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current: Option<String> = None;
    for line in doc.lines() {
        match &mut current {
            None if line.trim() == format!("```{lang}") => current = Some(String::new()),
            Some(b) if line.trim() == "```" => {
                out.push(std::mem::take(b));
                current = None;
            }
            Some(b) => {
                b.push_str(line);
                b.push('\n');
            }
            None => {}
        }
    }
    out
}

/// Every JSON object in the doc that is a valid condition: whole `json` blocks, their lines,
/// and inline code spans.
fn json_examples(doc: &str) -> Vec<Value> {
    let mut candidates = Vec::new();
    for block in blocks(doc, "json") {
        candidates.push(block.clone());
        candidates.extend(block.lines().map(str::to_owned));
    }
    for (i, span) in doc.split('`').enumerate() {
        if i % 2 == 1 && span.starts_with('{') {
            candidates.push(span.to_owned());
        }
    }
    let mut out: Vec<Value> = Vec::new();
    for c in candidates {
        if let Ok(v @ Value::Object(_)) = serde_json::from_str::<Value>(&c) {
            if Condition::parse(&v).is_ok() && !out.contains(&v) {
                out.push(v);
            }
        }
    }
    out
}

#[test]
fn every_json_example_round_trips_through_text() {
    let examples = json_examples(&doc());
    assert!(
        examples.len() >= 35,
        "only {} examples found; did the doc's format change?",
        examples.len()
    );
    for v in examples {
        let text = to_text(&v).unwrap();
        let back = parse_text(&text).unwrap_or_else(|e| panic!("{e}\n{text}\n{v}"));
        assert_eq!(back, v, "{text}");
        assert_eq!(to_text(&back).unwrap(), text);
    }
}

#[test]
fn every_text_example_parses_and_prints_as_written() {
    let lines: Vec<String> = blocks(&doc(), "condition-text")
        .iter()
        .flat_map(|b| b.lines().map(str::to_owned).collect::<Vec<_>>())
        .filter(|l| !l.trim().is_empty())
        .collect();
    assert!(lines.len() >= 10, "only {} text examples", lines.len());
    for line in lines {
        let v = parse_text(&line).unwrap_or_else(|e| panic!("{line}: {e}"));
        assert_eq!(to_text(&v).unwrap(), line, "printed back differently");
    }
}
