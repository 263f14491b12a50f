//! Cross-checks the form format against real PHP (`php-cli`): what
//! `parse_str` (the parser behind `$_POST`) makes of our bodies, and what
//! `urlencode` makes of awkward strings. Skipped when `php` is not on PATH, with a
//! `SKIPPED-RUNTIME:` line that `scripts/test-summary.sh` reports by name in the
//! `make test` summary; CI installs `php-cli` and sets `HOOKLINE_REQUIRE_RUNTIMES=1`,
//! which makes a missing `php` fail these tests instead.
//!
//! Each test starts PHP once and feeds it one body per line (form bodies
//! never contain a raw newline), so the whole file costs three PHP runs.

mod common;

use std::io::Write as _;
use std::process::{Command, Stdio};

use common::*;
use hookline_payload::{decode_form, encode, Format};
use serde_json::{json, Map, Value};

/// Reports the running test's skip past libtest's capture, in the format of
/// `hookline_integration_tests::skip_for_missing_runtime` (which this crate cannot depend on),
/// or fails the test when `HOOKLINE_REQUIRE_RUNTIMES=1`.
fn skip_for_missing_php(why: &str) {
    let test = std::thread::current()
        .name()
        .unwrap_or("<unnamed test>")
        .to_owned();
    assert!(
        std::env::var("HOOKLINE_REQUIRE_RUNTIMES").as_deref() != Ok("1"),
        "{test} needs php, and HOOKLINE_REQUIRE_RUNTIMES=1 forbids skipping it: {why}"
    );
    let line = format!("SKIPPED-RUNTIME: php::{test} (php): {why}\n");
    let _ = std::io::stderr().lock().write_all(line.as_bytes());
}

/// Runs `php -r script` with `input` on stdin; `None` if PHP is not installed (reported as a
/// skip).
fn php(script: &str, input: &str) -> Option<String> {
    let child = Command::new("php")
        // -n: PHP's built-in defaults (max_input_vars = 1000, nesting 64),
        // whatever php.ini the machine has.
        .args(["-n", "-d", "display_errors=stderr", "-r", script])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn();
    let mut child = match child {
        Ok(child) => child,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
            skip_for_missing_php("php not found (apt-get install php-cli)");
            return None;
        }
        Err(err) => panic!("cannot start php: {err}"),
    };
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(input.as_bytes()).unwrap();
    drop(stdin);
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "php failed: {:?}", out.status);
    Some(String::from_utf8(out.stdout).expect("php output is UTF-8"))
}

/// `parse_str` on each line, one `json_encode` per line.
fn php_parse_str(bodies: &[String]) -> Option<Vec<Value>> {
    const SCRIPT: &str = r#"
        while (($line = fgets(STDIN)) !== false) {
            parse_str(rtrim($line, "\n"), $a);
            echo json_encode((object) $a, JSON_INVALID_UTF8_SUBSTITUTE), "\n";
        }
    "#;
    let mut input = String::new();
    for body in bodies {
        assert!(!body.contains('\n'));
        input.push_str(body);
        input.push('\n');
    }
    let out = php(SCRIPT, &input)?;
    let values: Vec<Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).expect("php printed JSON"))
        .collect();
    assert_eq!(values.len(), bodies.len(), "one result per body");
    Some(values)
}

fn form(event: &Map<String, Value>) -> String {
    String::from_utf8(encode(Format::Form, event)).unwrap()
}

#[test]
fn php_parses_our_bodies_as_expected() {
    let events = [click(), profile_update(), awkward()];
    let bodies: Vec<String> = events.iter().map(form).collect();
    let Some(parsed) = php_parse_str(&bodies) else {
        return;
    };
    // PHP agrees with our decoder on every body...
    for (body, php) in bodies.iter().zip(&parsed) {
        assert_same(&decode_form(body.as_bytes()), php);
    }
    // ...and with the documented expectations.
    assert_same(&parsed[0], &click_as_php());
    assert_same(&parsed[1], &profile_update_as_php());
    assert_eq!(parsed[2]["fields"]["0"], json!("empty nested key"));
    assert_eq!(
        parsed[2]["unicode"],
        json!("\u{0}\u{1}\u{7f}\u{80}\u{2028}\u{FFFF}\u{10FFFF}")
    );
}

#[test]
fn decode_form_matches_php_on_edge_cases() {
    let mut bodies: Vec<String> = [
        // name mangling, appends, numeric keys, overwrites, broken brackets
        "a[-5]=x&a[]=y&b.c=1&d e=2&f[g.h]=3&i[j=4&k[l][m=5&n[o]p=6&q[ ]=7&q[ ]=8",
        "%20r=9&s[]=1&s[x]=2&s[]=3&t[08]=a&t[8]=b&t[-0]=c&u=1&u[]=2&v[]=1&v=2",
        "w[a]]=1&=z&y&[a]=1&zz[a][b][c]=1&z9%00x=1&z8=%00a&&&x=1=2",
        // encoded brackets decode before parsing; bad escapes stay literal
        "p%5Bq%5D%5B%5D=1&p%5Bq%5D%5B%5D=2&pct=%zz%4&bad=%e9&plus=a+b%2Bc",
        // numeric-looking keys: lists only for 0..n-1 in order
        "l[0]=a&l[1]=b&m[1]=a&m[0]=b&n[0]=a&n[2]=b&o[9223372036854775807]=x&o[]=y",
        "a.b[c.d]=1&a b[]=2&%20%20lead=3&tail%20=4&x[ a]=5&x[a ]=6",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    // PHP's default limits: 64 bracket levels, 1000 pairs.
    bodies.push(format!(
        "a{}=1&b=0&b{}=2&c=3",
        "[x]".repeat(64),
        "[x]".repeat(65)
    ));
    bodies.push(
        (0..1005)
            .map(|i| format!("v{i}={i}"))
            .collect::<Vec<_>>()
            .join("&"),
    );
    let Some(parsed) = php_parse_str(&bodies) else {
        return;
    };
    for (body, php) in bodies.iter().zip(&parsed) {
        let ours = decode_form(body.as_bytes());
        assert_eq!(
            serde_json::to_string(&ours).unwrap(),
            serde_json::to_string(php).unwrap(),
            "body: {body}"
        );
    }
    assert_eq!(parsed[7].as_object().unwrap().len(), 1000);
}

#[test]
fn value_encoding_matches_php_urlencode() {
    let mut samples: Vec<String> = vec![
        (1u8..=0x7f).map(char::from).collect(),
        "Grüße 日本語 🎉 \u{80}\u{7ff}\u{800}\u{ffff}\u{10000}".into(),
        "a+b c&d=e%f[g]h~i*j'k\"l".into(),
    ];
    samples.push(String::new());
    const SCRIPT: &str = r#"
        foreach (json_decode(file_get_contents("php://stdin")) as $s) {
            echo urlencode($s), "\n";
        }
    "#;
    let Some(out) = php(SCRIPT, &serde_json::to_string(&samples).unwrap()) else {
        return;
    };
    let php: Vec<&str> = out.split('\n').collect();
    assert_eq!(php.len(), samples.len() + 1, "{out}");
    for (sample, php) in samples.iter().zip(php) {
        let mut event = Map::new();
        event.insert("k".into(), Value::String(sample.clone()));
        let body = form(&event);
        assert_eq!(body.strip_prefix("k=").unwrap(), php, "sample {sample:?}");
    }
}
