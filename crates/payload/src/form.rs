//! `application/x-www-form-urlencoded`, the default format, as PHP reads it.
//!
//! Most Copernica webhook receivers are PHP scripts that read `$_POST`, so the
//! encoder writes what PHP's `http_build_query` would and [`decode_form`]
//! parses like PHP's `parse_str` (the same code PHP uses for `$_POST`).
//!
//! # Encoding rules
//!
//! * Each leaf becomes one `name=value` pair, pairs joined by `&`, in the
//!   event's order (depth first).
//! * Nested maps: `fields[name]=Mike`, deeper `subprofiles[a][b]=x`.
//!   Brackets are percent-encoded like `http_build_query` does
//!   (`fields%5Bname%5D=Mike`); PHP decodes before it parses, so both spellings
//!   are the same to a receiver.
//! * Lists of scalars use empty brackets: `interests[]=vip&interests[]=news`.
//!   A list that holds at least one non-empty map or list uses explicit
//!   indices for all its elements (`x[0][k]=v&x[1][k]=w`), because
//!   `x[][k]=v&x[][j]=w` would give PHP two elements instead of one.
//! * Scalars: strings as they are, numbers as JSON prints them (`3`, `2.5`,
//!   `1e+100`, sent as `1e%2B100`), `true` → `1`, `false` → `0` (both as `http_build_query`), and
//!   `null`, `[]` and `{}` → an empty value (`key=`). `http_build_query` would
//!   drop the last three altogether; we keep the key so that `isset()` still
//!   sees it, and the empty string is falsy and `empty()` in PHP like the
//!   original value.
//! * Percent-encoding is PHP's `urlencode`: `A-Z a-z 0-9 - _ .` stay, space
//!   becomes `+`, every other byte of the UTF-8 text becomes `%XX` (uppercase
//!   hex), `~` and `*` included.
//!
//! # What PHP does to names (documented, not worked around)
//!
//! * In the top-level name only, `.` and space become `_` and leading spaces
//!   are dropped (`a.b` arrives as `$_POST['a_b']`); nested keys are kept.
//! * Empty top-level names are dropped; an empty nested key (`x[]`) means
//!   "append"; names are cut at a NUL byte; a `[` or `]` inside a key breaks the
//!   bracket structure. Copernica's names never contain these.
//! * Numeric keys (`"12"`, but not `"012"` or `"-0"`) become integers, so a map
//!   whose keys are `"0"`, `"1"`, … arrives as a list.
//! * PHP keeps at most `max_input_vars` (1000) pairs and
//!   `max_input_nesting_level` (64) bracket levels by default; beyond that it
//!   drops data with a warning. [`decode_form`] applies the same defaults.

use std::collections::HashMap;
use std::io::Write as _;

use serde_json::{Map, Value};

/// PHP's default `max_input_vars`: pairs beyond this are ignored.
pub const PHP_MAX_INPUT_VARS: usize = 1000;
/// PHP's default `max_input_nesting_level`: names with more bracket levels are dropped.
pub const PHP_MAX_INPUT_NESTING_LEVEL: usize = 64;

/// Bytes that PHP's `urlencode` leaves alone: `A-Z a-z 0-9 - _ .`.
const fn keep_table() -> [bool; 256] {
    let mut t = [false; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        t[b] = c.is_ascii_alphanumeric() || c == b'-' || c == b'_' || c == b'.';
        b += 1;
    }
    t
}
static KEEP: [bool; 256] = keep_table();
const HEX: &[u8; 16] = b"0123456789ABCDEF";

/// Appends `bytes` percent-encoded like PHP's `urlencode`.
fn urlencode(out: &mut Vec<u8>, bytes: &[u8]) {
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        if KEEP[b as usize] {
            continue;
        }
        out.extend_from_slice(&bytes[start..i]);
        if b == b' ' {
            out.push(b'+');
        } else {
            out.extend_from_slice(&[b'%', HEX[(b >> 4) as usize], HEX[(b & 15) as usize]]);
        }
        start = i + 1;
    }
    out.extend_from_slice(&bytes[start..]);
}

/// Appends the form body of `event` to `out`.
pub(crate) fn encode_into(event: &Map<String, Value>, out: &mut Vec<u8>) {
    let mut enc = Encoder {
        out,
        // The encoded name of the current leaf; grows and shrinks with depth.
        name: Vec::with_capacity(128),
        first: true,
    };
    for (key, value) in event {
        enc.name.clear();
        urlencode(&mut enc.name, key.as_bytes());
        enc.value(value);
    }
}

struct Encoder<'a> {
    out: &'a mut Vec<u8>,
    name: Vec<u8>,
    first: bool,
}

impl Encoder<'_> {
    fn value(&mut self, value: &Value) {
        match value {
            Value::Object(map) if !map.is_empty() => {
                for (key, value) in map {
                    let len = self.name.len();
                    self.name.extend_from_slice(b"%5B");
                    urlencode(&mut self.name, key.as_bytes());
                    self.name.extend_from_slice(b"%5D");
                    self.value(value);
                    self.name.truncate(len);
                }
            }
            Value::Array(list) if !list.is_empty() => {
                let indexed = list.iter().any(is_nonempty_container);
                for (i, value) in list.iter().enumerate() {
                    let len = self.name.len();
                    if indexed {
                        // Writing into a Vec cannot fail.
                        let _ = write!(self.name, "%5B{i}%5D");
                    } else {
                        self.name.extend_from_slice(b"%5B%5D");
                    }
                    self.value(value);
                    self.name.truncate(len);
                }
            }
            leaf => self.leaf(leaf),
        }
    }

    fn leaf(&mut self, value: &Value) {
        if !self.first {
            self.out.push(b'&');
        }
        self.first = false;
        self.out.extend_from_slice(&self.name);
        self.out.push(b'=');
        match value {
            Value::String(s) => urlencode(self.out, s.as_bytes()),
            Value::Number(n) => {
                let start = self.out.len();
                let _ = write!(self.out, "{n}");
                // Usually only digits, `-`, `.` and `e`, which urlencode keeps;
                // a large exponent prints as `1e+100`, whose `+` needs `%2B`.
                if !self.out[start..].iter().all(|&b| KEEP[b as usize]) {
                    let text = self.out.split_off(start);
                    urlencode(self.out, &text);
                }
            }
            Value::Bool(true) => self.out.push(b'1'),
            Value::Bool(false) => self.out.push(b'0'),
            // null, [] and {}: an empty value, the key stays visible.
            _ => {}
        }
    }
}

fn is_nonempty_container(v: &Value) -> bool {
    match v {
        Value::Object(m) => !m.is_empty(),
        Value::Array(a) => !a.is_empty(),
        _ => false,
    }
}

/// A capacity estimate for the form body of `event` (exact for plain ASCII
/// alphanumerics, a little slack for the rest).
pub(crate) fn estimate(event: &Map<String, Value>) -> usize {
    fn text(s: &str) -> usize {
        s.len() + s.len() / 4
    }
    fn value(v: &Value, name: usize) -> usize {
        match v {
            Value::Object(m) if !m.is_empty() => {
                m.iter().map(|(k, v)| value(v, name + 6 + text(k))).sum()
            }
            Value::Array(a) if !a.is_empty() => a.iter().map(|v| value(v, name + 8)).sum(),
            Value::String(s) => name + 2 + text(s),
            Value::Number(_) => name + 8,
            _ => name + 3,
        }
    }
    event.iter().map(|(k, v)| value(v, text(k))).sum()
}

// ---------------------------------------------------------------------------
// Decoding: PHP's parse_str.
// ---------------------------------------------------------------------------

/// Parses a form body exactly as PHP's `parse_str` (and so `$_POST`) would,
/// returning the resulting PHP array as JSON.
///
/// * Pairs are split on `&` (empty pieces skipped), name and value at the
///   first `=`; both are URL-decoded (`+` is a space, `%XX` a byte, a `%` not
///   followed by two hex digits stays literal). Invalid UTF-8 becomes U+FFFD.
/// * Names follow PHP: leading spaces dropped, `.`/space in the top-level name
///   become `_`, `a[b][c]` nests, `a[]` appends at the next integer index,
///   text after a closing `]` that isn't `[` is ignored, an unterminated `[`
///   turns into `_` at the top level and is ignored deeper, numeric keys become
///   integers, a later scalar overwrites an earlier array and vice versa.
/// * [`PHP_MAX_INPUT_VARS`] and [`PHP_MAX_INPUT_NESTING_LEVEL`] apply.
/// * Every leaf is a JSON string. Nested arrays become JSON lists when their
///   keys are exactly `0, 1, …` in order (as `json_encode` does), objects
///   otherwise. The top level is always an object (`json_encode((object) $a)`).
pub fn decode_form(body: &[u8]) -> Value {
    let mut top = PhpArray::default();
    let pairs = body.split(|&b| b == b'&').filter(|p| !p.is_empty());
    for pair in pairs.take(PHP_MAX_INPUT_VARS) {
        let (name, value) = match pair.iter().position(|&b| b == b'=') {
            Some(i) => (&pair[..i], &pair[i + 1..]),
            None => (pair, &[][..]),
        };
        let value = String::from_utf8_lossy(&urldecode(value)).into_owned();
        register(&mut top, &urldecode(name), value);
    }
    Value::Object(top.into_map())
}

/// PHP's `php_url_decode`.
fn urldecode(bytes: &[u8]) -> Vec<u8> {
    fn hex(b: u8) -> u8 {
        match b {
            b'0'..=b'9' => b - b'0',
            b'a'..=b'f' => b - b'a' + 10,
            _ => b - b'A' + 10,
        }
    }
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => match (bytes.get(i + 1), bytes.get(i + 2)) {
                (Some(&h), Some(&l)) if h.is_ascii_hexdigit() && l.is_ascii_hexdigit() => {
                    out.push(hex(h) << 4 | hex(l));
                    i += 3;
                    continue;
                }
                _ => out.push(b'%'),
            },
            b => out.push(b),
        }
        i += 1;
    }
    out
}

// size: PHP's php_register_variable_ex step by step, kept whole to compare with its source
/// PHP's `php_register_variable_ex` for one decoded name and its value.
fn register(top: &mut PhpArray, name: &[u8], value: String) {
    // C strings: the name ends at the first NUL.
    let name = match name.iter().position(|&b| b == 0) {
        Some(n) => &name[..n],
        None => name,
    };
    let leading = name.iter().take_while(|&&b| b == b' ').count();
    let name = &name[leading..];

    let bracket = name.iter().position(|&b| b == b'[');
    let var_end = bracket.unwrap_or(name.len());
    if var_end == 0 {
        return; // empty variable name
    }
    let mangle = |bytes: &[u8], with_bracket: bool| -> Vec<u8> {
        bytes
            .iter()
            .map(|&b| match b {
                b' ' | b'.' => b'_',
                b'[' if with_bracket => b'_',
                b => b,
            })
            .collect()
    };
    let var = mangle(&name[..var_end], false);

    let Some(mut open) = bracket else {
        top.set(Some(PhpKey::from_bytes(&var)), Node::Str(value));
        return;
    };

    // Parse the bracketed indices; `None` is an append (`[]`).
    let mut indices: Vec<Option<&[u8]>> = Vec::new();
    let mut nesting = 0;
    loop {
        nesting += 1;
        if nesting > PHP_MAX_INPUT_NESTING_LEVEL {
            top.remove(&PhpKey::from_bytes(&var));
            return;
        }
        let index_start = open + 1;
        let mut ip = index_start;
        if name.get(ip) == Some(&b' ') {
            ip += 1;
        }
        let close = if name.get(ip) == Some(&b']') {
            indices.push(None);
            ip
        } else {
            match name[ip.min(name.len())..].iter().position(|&b| b == b']') {
                Some(off) => {
                    let close = ip + off;
                    indices.push(Some(&name[index_start..close]));
                    close
                }
                None => {
                    // Not an index. At the top level the `[` and the rest join
                    // the variable name; deeper, the broken part is ignored.
                    if indices.is_empty() {
                        let mut var = var;
                        var.push(b'_');
                        var.extend(mangle(&name[index_start..], true));
                        top.set(Some(PhpKey::from_bytes(&var)), Node::Str(value));
                        return;
                    }
                    break;
                }
            }
        };
        if name.get(close + 1) == Some(&b'[') {
            open = close + 1;
        } else {
            break;
        }
    }

    let mut array = top;
    let mut key = Some(PhpKey::from_bytes(&var));
    for index in indices {
        match array.array_at(key) {
            Some(next) => array = next,
            None => return, // append impossible (next index overflow), PHP gives up
        }
        key = index.map(PhpKey::from_bytes);
    }
    array.set(key, Node::Str(value));
}

/// A PHP array key: numeric strings are integers.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum PhpKey {
    Int(i64),
    Str(String),
}

impl PhpKey {
    /// `ZEND_HANDLE_NUMERIC_STR`: `0`, or an optional `-` then a non-zero digit
    /// and digits, within `i64`; `-0` stays a string.
    fn from_bytes(bytes: &[u8]) -> PhpKey {
        let digits = bytes.strip_prefix(b"-").unwrap_or(bytes);
        let canonical = !digits.is_empty()
            && digits.iter().all(u8::is_ascii_digit)
            && (digits[0] != b'0' || bytes == b"0");
        if canonical {
            if let Some(n) = std::str::from_utf8(bytes)
                .ok()
                .and_then(|s| s.parse::<i64>().ok())
            {
                return PhpKey::Int(n);
            }
        }
        PhpKey::Str(String::from_utf8_lossy(bytes).into_owned())
    }

    fn into_string(self) -> String {
        match self {
            PhpKey::Int(n) => n.to_string(),
            PhpKey::Str(s) => s,
        }
    }
}

#[derive(Debug)]
enum Node {
    Str(String),
    Arr(PhpArray),
}

/// An ordered PHP array: insertion order, overwrite in place, `[]` appends at
/// `nNextFreeElement`.
#[derive(Debug, Default)]
struct PhpArray {
    entries: Vec<(PhpKey, Node)>,
    index: HashMap<PhpKey, usize>,
    /// The next index for an append; `None` until an integer key was used.
    next_free: Option<i64>,
}

impl PhpArray {
    /// Resolves `key` (`None` appends), returning `None` if an append is impossible.
    fn resolve(&self, key: Option<PhpKey>) -> Option<PhpKey> {
        match key {
            Some(k) => Some(k),
            None => match self.next_free {
                None => Some(PhpKey::Int(0)),
                Some(i64::MAX) if self.index.contains_key(&PhpKey::Int(i64::MAX)) => None,
                Some(n) => Some(PhpKey::Int(n)),
            },
        }
    }

    fn set(&mut self, key: Option<PhpKey>, node: Node) {
        if let Some(key) = self.resolve(key) {
            let slot = self.slot(key);
            self.entries[slot].1 = node;
        }
    }

    /// The array at `key` (`None` appends), replacing a string there by an array.
    fn array_at(&mut self, key: Option<PhpKey>) -> Option<&mut PhpArray> {
        let key = self.resolve(key)?;
        let slot = self.slot(key);
        let node = &mut self.entries[slot].1;
        if !matches!(node, Node::Arr(_)) {
            *node = Node::Arr(PhpArray::default());
        }
        match node {
            Node::Arr(array) => Some(array),
            Node::Str(_) => None,
        }
    }

    /// The entry index for `key`, inserting an empty string if it is new.
    fn slot(&mut self, key: PhpKey) -> usize {
        if let Some(&slot) = self.index.get(&key) {
            return slot;
        }
        if let PhpKey::Int(n) = key {
            if self.next_free.is_none_or(|next| n >= next) {
                self.next_free = Some(n.saturating_add(1));
            }
        }
        self.index.insert(key.clone(), self.entries.len());
        self.entries.push((key, Node::Str(String::new())));
        self.entries.len() - 1
    }

    fn remove(&mut self, key: &PhpKey) {
        if let Some(slot) = self.index.remove(key) {
            self.entries.remove(slot);
            for v in self.index.values_mut() {
                if *v > slot {
                    *v -= 1;
                }
            }
        }
    }

    fn is_list(&self) -> bool {
        self.entries
            .iter()
            .enumerate()
            .all(|(i, (k, _))| *k == PhpKey::Int(i as i64))
    }

    fn into_value(self) -> Value {
        if self.is_list() {
            Value::Array(
                self.entries
                    .into_iter()
                    .map(|(_, n)| n.into_value())
                    .collect(),
            )
        } else {
            Value::Object(self.into_map())
        }
    }

    fn into_map(self) -> Map<String, Value> {
        self.entries
            .into_iter()
            .map(|(k, n)| (k.into_string(), n.into_value()))
            .collect()
    }
}

impl Node {
    fn into_value(self) -> Value {
        match self {
            Node::Str(s) => Value::String(s),
            Node::Arr(a) => a.into_value(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn enc(v: Value) -> String {
        let Value::Object(m) = v else { unreachable!() };
        let mut out = Vec::new();
        encode_into(&m, &mut out);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn urlencode_matches_php() {
        // php -r 'echo urlencode("a b&c=d+e%[]~*ü-_.");'
        let mut out = Vec::new();
        urlencode(&mut out, "a b&c=d+e%[]~*ü-_.".as_bytes());
        assert_eq!(out, b"a+b%26c%3Dd%2Be%25%5B%5D%7E%2A%C3%BC-_.");
    }

    #[test]
    fn scalars() {
        assert_eq!(
            enc(json!({"t": true, "f": false, "n": null, "i": -3, "x": 2.5, "e": [], "m": {}})),
            "t=1&f=0&n=&i=-3&x=2.5&e=&m="
        );
    }

    #[test]
    fn lists_of_containers_are_indexed() {
        assert_eq!(
            enc(json!({"x": [{"k": 1}, "s", [], [1, 2]]})),
            "x%5B0%5D%5Bk%5D=1&x%5B1%5D=s&x%5B2%5D=&x%5B3%5D%5B%5D=1&x%5B3%5D%5B%5D=2"
        );
        assert_eq!(enc(json!({"x": [{}, null]})), "x%5B%5D=&x%5B%5D=");
    }

    #[test]
    fn estimate_is_close() {
        let Value::Object(m) = json!({"fields": {"name": "Mike", "a": [1, 2]}, "id": "abc"}) else {
            unreachable!()
        };
        let mut out = Vec::new();
        encode_into(&m, &mut out);
        let est = estimate(&m);
        assert!(
            est >= out.len() && est < out.len() * 2,
            "{est} vs {}",
            out.len()
        );
    }

    #[test]
    fn urldecode_like_php() {
        assert_eq!(urldecode(b"a+b%41%4a%zz%4"), b"a bAJ%zz%4");
        assert_eq!(urldecode(b"%"), b"%");
        assert_eq!(urldecode(b"%2"), b"%2");
        assert_eq!(urldecode(b"%20"), b" ");
    }

    #[test]
    fn numeric_keys() {
        assert_eq!(PhpKey::from_bytes(b"0"), PhpKey::Int(0));
        assert_eq!(PhpKey::from_bytes(b"-12"), PhpKey::Int(-12));
        assert_eq!(PhpKey::from_bytes(b"08"), PhpKey::Str("08".into()));
        assert_eq!(PhpKey::from_bytes(b"-0"), PhpKey::Str("-0".into()));
        assert_eq!(PhpKey::from_bytes(b"+1"), PhpKey::Str("+1".into()));
        assert_eq!(PhpKey::from_bytes(b""), PhpKey::Str("".into()));
        assert_eq!(
            PhpKey::from_bytes(b"9223372036854775808"),
            PhpKey::Str("9223372036854775808".into())
        );
    }

    /// Expectations taken from PHP 8.2's `parse_str` + `json_encode`.
    #[test]
    fn parse_str_edge_cases() {
        let body = "a[-5]=x&a[]=y&b.c=1&d e=2&f[g.h]=3&i[j=4&k[l][m=5&n[o]p=6&q[ ]=7&q[ ]=8\
                    &%20r=9&s[]=1&s[x]=2&s[]=3&t[08]=a&t[8]=b&t[-0]=c&u=1&u[]=2&v[]=1&v=2\
                    &w[a]]=1&=z&y&[a]=1&zz[a][b][c]=1&z9%00x=1&z8=%00a";
        let expected = r#"{"a":{"-5":"x","-4":"y"},"b_c":"1","d_e":"2","f":{"g.h":"3"},"i_j":"4","k":{"l":"5"},"n":{"o":"6"},"q":["7","8"],"r":"9","s":{"0":"1","x":"2","1":"3"},"t":{"08":"a","8":"b","-0":"c"},"u":["2"],"v":"2","w":{"a":"1"},"y":"","zz":{"a":{"b":{"c":"1"}}},"z9":"1","z8":"\u0000a"}"#;
        assert_eq!(
            serde_json::to_string(&decode_form(body.as_bytes())).unwrap(),
            expected
        );
    }

    #[test]
    fn php_limits() {
        let ok = format!("a{}=1", "[x]".repeat(64));
        let deep = format!("b=0&b{}=2", "[x]".repeat(65));
        let body = format!("{ok}&{deep}&c=3");
        let v = decode_form(body.as_bytes());
        let keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
        assert_eq!(keys, ["a", "c"]);

        let many: Vec<String> = (0..1005).map(|i| format!("v{i}=1")).collect();
        let v = decode_form(many.join("&").as_bytes());
        assert_eq!(v.as_object().unwrap().len(), PHP_MAX_INPUT_VARS);
    }

    #[test]
    fn top_level_is_always_an_object() {
        assert_eq!(decode_form(b""), json!({}));
        assert_eq!(decode_form(b"0=a&1=b"), json!({"0": "a", "1": "b"}));
        assert_eq!(decode_form(b"x[0]=a&x[1]=b"), json!({"x": ["a", "b"]}));
        assert_eq!(
            decode_form(b"x[1]=a&x[0]=b"),
            json!({"x": {"1": "a", "0": "b"}})
        );
    }
}
