//! Text helpers for evaluation: case-insensitive matching without allocating for ASCII, the
//! text and number forms of JSON values, and the e-mail check.

use std::borrow::Cow;
use std::cmp::Ordering;

use serde_json::Value;

/// The four positive text operators; the negated ones are these with the result inverted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum TextOp {
    Equals,
    Contains,
    StartsWith,
    EndsWith,
}

impl TextOp {
    fn exact(self, hay: &str, needle: &str) -> bool {
        match self {
            TextOp::Equals => hay == needle,
            TextOp::Contains => hay.contains(needle),
            TextOp::StartsWith => hay.starts_with(needle),
            TextOp::EndsWith => hay.ends_with(needle),
        }
    }

    /// Only correct when both sides are ASCII (then ASCII folding equals full lowercasing).
    fn ascii_folded(self, hay: &[u8], needle: &[u8]) -> bool {
        let n = needle.len();
        match self {
            TextOp::Equals => hay.eq_ignore_ascii_case(needle),
            TextOp::StartsWith => hay.len() >= n && hay[..n].eq_ignore_ascii_case(needle),
            TextOp::EndsWith => hay.len() >= n && hay[hay.len() - n..].eq_ignore_ascii_case(needle),
            TextOp::Contains => n == 0 || hay.windows(n).any(|w| w.eq_ignore_ascii_case(needle)),
        }
    }
}

/// Applies `op` to `hay` and `needle`. `needle_lower` is the needle already lowercased (a
/// literal operand, precomputed at parse time), `None` when the needle came from the data.
pub(crate) fn text_match(
    op: TextOp,
    hay: &str,
    needle: &str,
    needle_lower: Option<&str>,
    case_sensitive: bool,
) -> bool {
    if case_sensitive {
        return op.exact(hay, needle);
    }
    let folded_needle = needle_lower.unwrap_or(needle);
    if hay.is_ascii() && folded_needle.is_ascii() {
        return op.ascii_folded(hay.as_bytes(), folded_needle.as_bytes());
    }
    let hay = hay.to_lowercase();
    match needle_lower {
        Some(lower) => op.exact(&hay, lower),
        None => op.exact(&hay, &needle.to_lowercase()),
    }
}

/// Orders two texts, case-insensitively unless `case_sensitive`.
pub(crate) fn text_cmp(a: &str, b: &str, b_lower: Option<&str>, case_sensitive: bool) -> Ordering {
    if case_sensitive {
        return a.cmp(b);
    }
    let folded_b = b_lower.unwrap_or(b);
    if a.is_ascii() && folded_b.is_ascii() {
        let fold = |c: u8| c.to_ascii_lowercase();
        return a.bytes().map(fold).cmp(folded_b.bytes().map(fold));
    }
    let a = a.to_lowercase();
    match b_lower {
        Some(lower) => a.as_str().cmp(lower),
        None => a.cmp(&b.to_lowercase()),
    }
}

/// The text form of a (possibly missing) JSON value: strings as they are, numbers and booleans
/// as written, missing and `null` as the empty string, arrays and objects as compact JSON.
pub(crate) fn text_of(v: Option<&Value>) -> Cow<'_, str> {
    match v {
        None | Some(Value::Null) => Cow::Borrowed(""),
        Some(Value::String(s)) => Cow::Borrowed(s),
        Some(Value::Bool(true)) => Cow::Borrowed("true"),
        Some(Value::Bool(false)) => Cow::Borrowed("false"),
        Some(Value::Number(n)) => Cow::Owned(n.to_string()),
        Some(other) => Cow::Owned(other.to_string()),
    }
}

/// The number a (possibly missing) JSON value stands for: JSON numbers, and strings that
/// [`parse_number`] accepts. Booleans, `null` and missing are not numbers.
pub(crate) fn number_of(v: Option<&Value>) -> Option<f64> {
    match v? {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => parse_number(s),
        _ => None,
    }
}

/// Parses a decimal number, strictly: optional surrounding whitespace, an optional sign, digits
/// with an optional fraction, an optional exponent. Rejects what `f64::from_str` would also
/// take but no person means as a number in a profile field (`inf`, `NaN`, `1_000`, hex).
pub(crate) fn parse_number(s: &str) -> Option<f64> {
    let s = s.trim();
    let b = s.as_bytes();
    let mut i = 0;
    if i < b.len() && (b[i] == b'+' || b[i] == b'-') {
        i += 1;
    }
    let int_start = i;
    while i < b.len() && b[i].is_ascii_digit() {
        i += 1;
    }
    let mut digits = i - int_start;
    if i < b.len() && b[i] == b'.' {
        i += 1;
        let frac_start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        digits += i - frac_start;
    }
    if digits == 0 {
        return None;
    }
    if i < b.len() && (b[i] == b'e' || b[i] == b'E') {
        i += 1;
        if i < b.len() && (b[i] == b'+' || b[i] == b'-') {
            i += 1;
        }
        let exp_start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        if i == exp_start {
            return None;
        }
    }
    if i != b.len() {
        return None;
    }
    s.parse::<f64>().ok().filter(|n| n.is_finite())
}

/// A pragmatic e-mail address check, as a CRM means it: `local@domain.tld`, no whitespace, one
/// `@`, a local part without leading, trailing or doubled dots, and a domain of at least two
/// labels made of letters, digits and inner hyphens, whose last label has at least two letters.
/// Non-ASCII letters are allowed (internationalised addresses).
pub(crate) fn is_email(s: &str) -> bool {
    if s.len() > 254 {
        return false;
    }
    let Some((local, domain)) = s.split_once('@') else {
        return false;
    };
    if local.is_empty() || local.len() > 64 || domain.contains('@') {
        return false;
    }
    let local_ok = local
        .chars()
        .all(|c| !c.is_whitespace() && !c.is_control() && !"<>()[]\\,;:\"".contains(c))
        && !local.starts_with('.')
        && !local.ends_with('.')
        && !local.contains("..");
    if !local_ok {
        return false;
    }
    if !domain.contains('.') {
        return false;
    }
    let label_ok = |l: &str| {
        !l.is_empty()
            && l.len() <= 63
            && !l.starts_with('-')
            && !l.ends_with('-')
            && l.chars().all(|c| c.is_alphanumeric() || c == '-')
    };
    let tld = domain.rsplit('.').next().unwrap_or_default();
    domain.split('.').all(label_ok)
        && tld.chars().count() >= 2
        && tld.chars().all(char::is_alphabetic)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn case_insensitive_ascii_and_unicode() {
        assert!(text_match(
            TextOp::Equals,
            "MIKE",
            "mike",
            Some("mike"),
            false
        ));
        assert!(!text_match(
            TextOp::Equals,
            "MIKE",
            "mike",
            Some("mike"),
            true
        ));
        assert!(text_match(
            TextOp::Contains,
            "Ångström",
            "ÅNG",
            Some("ång"),
            false
        ));
        assert!(text_match(
            TextOp::StartsWith,
            "ÉCOLE",
            "école",
            None,
            false
        ));
        // Lowercasing, not full case folding: "ß" does not match "ss".
        assert!(!text_match(
            TextOp::EndsWith,
            "straße",
            "SSE",
            Some("sse"),
            false
        ));
        assert!(text_match(
            TextOp::Contains,
            "anything",
            "",
            Some(""),
            false
        ));
        assert!(!text_match(
            TextOp::StartsWith,
            "ab",
            "abc",
            Some("abc"),
            false
        ));
        assert!(!text_match(
            TextOp::EndsWith,
            "bc",
            "abc",
            Some("abc"),
            false
        ));
        // A needle from the data (other_field) is folded too.
        assert!(text_match(
            TextOp::Equals,
            "amsterdam",
            "AMSTERDAM",
            None,
            false
        ));
        assert!(text_match(TextOp::Equals, "ÉTÉ", "été", None, false));
    }

    #[test]
    fn ordering_folds_case_unless_asked_not_to() {
        assert_eq!(
            text_cmp("apple", "BANANA", Some("banana"), false),
            Ordering::Less
        );
        assert_eq!(text_cmp("apple", "BANANA", None, true), Ordering::Greater);
        assert_eq!(text_cmp("Émile", "émile", None, false), Ordering::Equal);
    }

    #[test]
    fn text_forms() {
        assert_eq!(text_of(None), "");
        assert_eq!(text_of(Some(&json!(null))), "");
        assert_eq!(text_of(Some(&json!(42))), "42");
        assert_eq!(text_of(Some(&json!(1.5))), "1.5");
        assert_eq!(text_of(Some(&json!(true))), "true");
        assert_eq!(text_of(Some(&json!({"a": 1}))), r#"{"a":1}"#);
    }

    #[test]
    fn numbers_are_parsed_strictly() {
        for (s, n) in [
            ("42", 42.0),
            ("-1.5", -1.5),
            (" +3 ", 3.0),
            (".5", 0.5),
            ("5.", 5.0),
            ("1e3", 1000.0),
            ("2E-2", 0.02),
        ] {
            assert_eq!(parse_number(s), Some(n), "{s}");
        }
        for s in [
            "", "-", ".", "abc", "1,5", "inf", "NaN", "1e", "0x10", "1_000", "1e999", "12abc",
            "1 2",
        ] {
            assert_eq!(parse_number(s), None, "{s:?}");
        }
        assert_eq!(number_of(Some(&json!(7))), Some(7.0));
        assert_eq!(number_of(Some(&json!("7"))), Some(7.0));
        assert_eq!(number_of(Some(&json!(true))), None);
        assert_eq!(number_of(None), None);
    }

    #[test]
    fn email_check() {
        for ok in [
            "mike@example.com",
            "first.last+tag@sub.example.co.uk",
            "jöran@exämple.se",
            "a@b.nl",
        ] {
            assert!(is_email(ok), "{ok}");
        }
        for bad in [
            "",
            "mike",
            "mike@",
            "@example.com",
            "mike@example",
            "mike@@example.com",
            "mi ke@example.com",
            ".mike@example.com",
            "mi..ke@example.com",
            "mike@-example.com",
            "mike@example..com",
            "mike@example.c",
            "mike@example.123",
            "a@b@c.com",
        ] {
            assert!(!is_email(bad), "{bad}");
        }
    }
}
