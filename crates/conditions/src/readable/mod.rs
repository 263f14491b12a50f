//! The text form of conditions: what people type and read, parsed into the JSON wire form
//! (the same tree [`crate::Condition::parse`] takes) and printed back from it by
//! [`crate::print`].
//!
//! ```text
//! name contains "Mike" and (interest vip or signup after -30d) and not email is_email
//! ```
//!
//! - `and` binds tighter than `or`; `not` applies to what follows it; parentheses group. A
//!   chain `a and b and c` is one `all`, and a parenthesised group stays a group of its own,
//!   so the nesting of the tree is kept exactly. `all(c)` and `any(c)` write a group of one.
//! - A leaf is `<field> <op> [operand] [options]` for profile fields; `subprofile <field> …`
//!   and `event <field> …` for the other sources; `interest <name> [op]` and
//!   `tag <text> [op]` (the operator defaults to `has`); `new_profile`.
//! - An operand is a quoted string (JSON escapes), a number, `true` / `false`, a bare word
//!   (a string: `-30d`, `now`, `2026-01-01`), or `field <name>` for `other_field`. Options
//!   are the words `case_sensitive`, `numeric` and `ignore_year` after the operand.
//! - Names that are not plain words (or are keywords) are quoted: `"first name" equals "x"`.
//!
//! Mistakes are reported with the line and column they are at: syntax errors by the parser,
//! and the validation errors of [`crate::Condition::parse`] mapped back from their JSON path
//! to the text that produced it.

mod lex;

use serde_json::{Map, Value};

use crate::error::ConditionError;
use lex::{error, lex, position, Kind, Token};

/// A text condition that does not parse or does not validate, with where the mistake is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}, column {column}: {message}")]
pub struct TextError {
    /// 1-based line of the mistake.
    pub line: usize,
    /// 1-based column (in characters) of the mistake.
    pub column: usize,
    pub message: String,
}

/// Operators that take an operand on fields (`value` or `other_field`).
pub(crate) const OPERAND_OPS: [&str; 11] = [
    "equals",
    "not_equals",
    "contains",
    "not_contains",
    "starts_with",
    "ends_with",
    "less",
    "more",
    "regexp",
    "before",
    "after",
];
/// Operators without an operand on fields.
const BARE_OPS: [&str; 4] = ["is_email", "is_numeric", "is_empty", "changed"];
/// Operators on interests and tags (their text is the subject).
const SET_OPS: [&str; 11] = [
    "has",
    "has_not",
    "gained",
    "lost",
    "equals",
    "not_equals",
    "contains",
    "not_contains",
    "starts_with",
    "ends_with",
    "regexp",
];
/// The options, in the order they are printed.
pub(crate) const OPTIONS: [&str; 3] = ["case_sensitive", "numeric", "ignore_year"];
/// Words with a meaning of their own: a name or a string spelled like one is quoted.
pub(crate) const KEYWORDS: [&str; 13] = [
    "and",
    "or",
    "not",
    "all",
    "any",
    "subprofile",
    "event",
    "interest",
    "tag",
    "new_profile",
    "field",
    "true",
    "false",
];

/// Parses a condition in its text form into the JSON wire form, and validates it. Empty text
/// (or only white space) is `null`: no condition.
pub fn parse_text(text: &str) -> Result<Value, TextError> {
    let tokens = lex(text)?;
    if tokens.is_empty() {
        return Ok(Value::Null);
    }
    let mut p = Parser {
        text,
        tokens,
        at: 0,
        depth: 0,
    };
    let ast = p.or_expr()?;
    if let Some(t) = p.peek() {
        return Err(p.error_at(
            t.start,
            format!(
                "expected `and`, `or` or the end after a condition, found {}",
                t.kind
            ),
        ));
    }
    let mut spans = Vec::new();
    let json = to_json(&ast, "", &mut spans);
    match crate::Condition::parse(&json) {
        Ok(_) => Ok(json),
        Err(e) => Err(locate(text, &spans, &e)),
    }
}

/// The parsed text, with where each part starts.
#[derive(Debug)]
enum Ast {
    Group {
        key: &'static str,
        items: Vec<Ast>,
        start: usize,
    },
    Not(Box<Ast>, usize),
    Leaf(Leaf),
}

#[derive(Debug)]
struct Leaf {
    start: usize,
    /// The subject key and name (none for `new_profile`), and where the name starts.
    subject: Option<(&'static str, String, usize)>,
    op: (String, usize),
    operand: Option<(Operand, usize)>,
    options: Vec<(&'static str, usize)>,
}

#[derive(Debug)]
enum Operand {
    Value(Value),
    OtherField(String),
}

struct Parser<'a> {
    text: &'a str,
    tokens: Vec<Token>,
    at: usize,
    depth: usize,
}

/// Nesting of parentheses and `not`s beyond any sensible condition (validation allows 32
/// groups); keeps the recursion bounded on hostile input.
const MAX_NESTING: usize = 64;

fn is_word(t: Option<&Token>, word: &str) -> bool {
    matches!(t, Some(Token { kind: Kind::Word(w), .. }) if w.eq_ignore_ascii_case(word))
}

impl Parser<'_> {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.at)
    }

    fn peek_at(&self, ahead: usize) -> Option<&Token> {
        self.tokens.get(self.at + ahead)
    }

    fn next(&mut self) -> Option<Token> {
        let t = self.tokens.get(self.at).cloned();
        self.at += 1;
        t
    }

    fn error_at(&self, at: usize, message: impl Into<String>) -> TextError {
        error(self.text, at, message)
    }

    /// An error at the next token, or at the end of the text.
    fn expected(&self, what: &str) -> TextError {
        match self.peek() {
            Some(t) => self.error_at(t.start, format!("expected {what}, found {}", t.kind)),
            None => self.error_at(self.text.len(), format!("expected {what}, found the end")),
        }
    }

    fn or_expr(&mut self) -> Result<Ast, TextError> {
        self.chain("or", "any", Self::and_expr)
    }

    fn and_expr(&mut self) -> Result<Ast, TextError> {
        self.chain("and", "all", Self::unary)
    }

    fn chain(
        &mut self,
        word: &str,
        key: &'static str,
        item: fn(&mut Self) -> Result<Ast, TextError>,
    ) -> Result<Ast, TextError> {
        let start = self.peek().map_or(self.text.len(), |t| t.start);
        let mut items = vec![item(self)?];
        while is_word(self.peek(), word) {
            self.next();
            items.push(item(self)?);
        }
        Ok(if items.len() == 1 {
            items.remove(0)
        } else {
            Ast::Group { key, items, start }
        })
    }

    fn unary(&mut self) -> Result<Ast, TextError> {
        let Some(t) = self.peek().cloned() else {
            return Err(self.expected("a condition"));
        };
        self.depth += 1;
        if self.depth > MAX_NESTING {
            return Err(self.error_at(t.start, "conditions nest too deeply here"));
        }
        let ast = match &t.kind {
            Kind::Word(w) if w.eq_ignore_ascii_case("not") => {
                self.next();
                Ast::Not(Box::new(self.unary()?), t.start)
            }
            Kind::Open => {
                self.next();
                let inner = self.or_expr()?;
                self.close(t.start)?;
                inner
            }
            Kind::Word(w)
                if (w == "all" || w == "any")
                    && matches!(
                        self.peek_at(1),
                        Some(Token {
                            kind: Kind::Open,
                            ..
                        })
                    ) =>
            {
                let key = if w == "all" { "all" } else { "any" };
                self.next();
                let open = self.next().map_or(t.start, |o| o.start);
                let inner = self.or_expr()?;
                self.close(open)?;
                Ast::Group {
                    key,
                    items: vec![inner],
                    start: t.start,
                }
            }
            _ => Ast::Leaf(self.leaf()?),
        };
        self.depth -= 1;
        Ok(ast)
    }

    fn close(&mut self, open: usize) -> Result<(), TextError> {
        match self.next() {
            Some(Token {
                kind: Kind::Close, ..
            }) => Ok(()),
            Some(t) => Err(self.error_at(
                t.start,
                format!(
                    "expected `)` to close the `(` at column {}, found {}",
                    position(self.text, open).1,
                    t.kind
                ),
            )),
            None => Err(self.error_at(open, "this `(` is never closed")),
        }
    }

    /// A name: a plain word that is no keyword, or a quoted string.
    fn name(&mut self, what: &str) -> Result<(String, usize), TextError> {
        match self.peek().cloned() {
            Some(Token {
                kind: Kind::Quoted(s),
                start,
            }) => {
                self.next();
                Ok((s, start))
            }
            Some(Token {
                kind: Kind::Word(w),
                start,
            }) if !is_keyword(&w) => {
                self.next();
                Ok((w, start))
            }
            Some(Token {
                kind: Kind::Word(w),
                start,
            }) => Err(self.error_at(
                start,
                format!("expected {what}, found the keyword `{w}`; quote a name spelled like a keyword: \"{w}\""),
            )),
            _ => Err(self.expected(what)),
        }
    }

    fn leaf(&mut self) -> Result<Leaf, TextError> {
        let start = self.peek().map_or(self.text.len(), |t| t.start);
        let keyword = match self.peek() {
            Some(Token {
                kind: Kind::Word(w),
                ..
            }) => ["subprofile", "event", "interest", "tag", "new_profile"]
                .into_iter()
                .find(|k| w == k),
            _ => None,
        };
        let mut leaf = Leaf {
            start,
            subject: None,
            op: (String::new(), start),
            operand: None,
            options: Vec::new(),
        };
        match keyword {
            Some("new_profile") => {
                self.next();
                leaf.op = ("new_profile".to_owned(), start);
                return Ok(leaf);
            }
            Some(k @ ("interest" | "tag")) => {
                self.next();
                let (name, at) = self.name(&format!("the {k} after `{k}`"))?;
                leaf.subject = Some((k, name, at));
                leaf.op = match self.peek() {
                    Some(Token {
                        kind: Kind::Word(w),
                        start,
                    }) if SET_OPS.contains(&w.as_str()) => {
                        let op = (w.clone(), *start);
                        self.next();
                        op
                    }
                    _ => ("has".to_owned(), start),
                };
            }
            Some(k) => {
                self.next();
                let key = if k == "subprofile" {
                    "subprofile_field"
                } else {
                    "event"
                };
                let (name, at) = self.name(&format!("a field name after `{k}`"))?;
                leaf.subject = Some((key, name, at));
                self.field_rest(&mut leaf)?;
            }
            None => {
                let (name, at) = self.name("a condition")?;
                leaf.subject = Some(("field", name, at));
                self.field_rest(&mut leaf)?;
            }
        }
        self.options(&mut leaf);
        Ok(leaf)
    }

    /// The operator and operand of a field leaf.
    fn field_rest(&mut self, leaf: &mut Leaf) -> Result<(), TextError> {
        let (op, at) = match self.peek().cloned() {
            Some(Token {
                kind: Kind::Word(w),
                start,
            }) if !is_keyword(&w) => (w, start),
            _ => return Err(self.expected("an operator (equals, contains, after, is_empty, ...)")),
        };
        self.next();
        let takes_operand = OPERAND_OPS.contains(&op.as_str());
        if !takes_operand && !BARE_OPS.contains(&op.as_str()) && !SET_OPS.contains(&op.as_str()) {
            let known: Vec<&str> = OPERAND_OPS.iter().chain(&BARE_OPS).copied().collect();
            let hint = crate::parse::suggestion(&op, &known);
            return Err(self.error_at(
                at,
                format!(
                    "unknown operator `{op}`{hint}; expected one of {}, {}",
                    OPERAND_OPS.join(", "),
                    BARE_OPS.join(", ")
                ),
            ));
        }
        leaf.op = (op, at);
        if takes_operand {
            leaf.operand = Some(self.operand()?);
        }
        Ok(())
    }

    fn operand(&mut self) -> Result<(Operand, usize), TextError> {
        let Some(t) = self.peek().cloned() else {
            return Err(self.expected("a value (\"text\", a number, -30d, or field <name>)"));
        };
        let operand = match &t.kind {
            Kind::Quoted(s) => Operand::Value(Value::String(s.clone())),
            Kind::Word(w) if w == "field" => {
                self.next();
                let (name, _) = self.name("a field name after `field`")?;
                return Ok((Operand::OtherField(name), t.start));
            }
            Kind::Word(w) if w == "true" || w == "false" => {
                Operand::Value(Value::Bool(w == "true"))
            }
            Kind::Word(w) if is_keyword(w) || OPTIONS.contains(&w.as_str()) => {
                return Err(self.error_at(
                    t.start,
                    format!(
                    "expected a value, found `{w}`; quote a value spelled like a keyword: \"{w}\""
                ),
                ))
            }
            Kind::Word(w) => Operand::Value(word_value(w)),
            _ => return Err(self.expected("a value (\"text\", a number, -30d, or field <name>)")),
        };
        self.next();
        Ok((operand, t.start))
    }

    fn options(&mut self, leaf: &mut Leaf) {
        while let Some(Token {
            kind: Kind::Word(w),
            start,
        }) = self.peek()
        {
            let Some(option) = OPTIONS.into_iter().find(|o| o == w) else {
                break;
            };
            leaf.options.push((option, *start));
            self.next();
        }
    }
}

/// Keywords are recognised in any case for `and`, `or` and `not`, exactly otherwise.
pub(crate) fn is_keyword(word: &str) -> bool {
    KEYWORDS.contains(&word)
        || ["and", "or", "not"]
            .iter()
            .any(|k| word.eq_ignore_ascii_case(k))
}

/// A bare word as a value: a JSON number is a number, anything else a string.
fn word_value(word: &str) -> Value {
    let numeric = word
        .bytes()
        .all(|b| b.is_ascii_digit() || matches!(b, b'-' | b'+' | b'.' | b'e' | b'E'));
    match serde_json::from_str::<Value>(word) {
        Ok(n @ Value::Number(_)) if numeric => n,
        _ => Value::String(word.to_owned()),
    }
}

/// The JSON form of `ast` at `path`, noting where in the text each path comes from.
fn to_json(ast: &Ast, path: &str, spans: &mut Vec<(String, usize)>) -> Value {
    let mut obj = Map::new();
    match ast {
        Ast::Group { key, items, start } => {
            spans.push((path.to_owned(), *start));
            let here = format!("{path}/{key}");
            spans.push((here.clone(), *start));
            let items = items
                .iter()
                .enumerate()
                .map(|(i, a)| to_json(a, &format!("{here}/{i}"), spans))
                .collect();
            obj.insert((*key).to_owned(), Value::Array(items));
        }
        Ast::Not(inner, start) => {
            spans.push((path.to_owned(), *start));
            let here = format!("{path}/not");
            obj.insert("not".to_owned(), to_json(inner, &here, spans));
        }
        Ast::Leaf(leaf) => {
            spans.push((path.to_owned(), leaf.start));
            if let Some((key, name, at)) = &leaf.subject {
                spans.push((format!("{path}/{key}"), *at));
                obj.insert((*key).to_owned(), Value::String(name.clone()));
            }
            spans.push((format!("{path}/op"), leaf.op.1));
            obj.insert("op".to_owned(), Value::String(leaf.op.0.clone()));
            match &leaf.operand {
                Some((Operand::Value(v), at)) => {
                    spans.push((format!("{path}/value"), *at));
                    obj.insert("value".to_owned(), v.clone());
                }
                Some((Operand::OtherField(f), at)) => {
                    spans.push((format!("{path}/other_field"), *at));
                    obj.insert("other_field".to_owned(), Value::String(f.clone()));
                }
                None => {}
            }
            for (option, at) in &leaf.options {
                spans.push((format!("{path}/{option}"), *at));
                obj.insert((*option).to_owned(), Value::Bool(true));
            }
        }
    }
    Value::Object(obj)
}

/// A validation error placed at the text its path came from (the closest recorded path that
/// is the error's path or a parent of it).
fn locate(text: &str, spans: &[(String, usize)], e: &ConditionError) -> TextError {
    let path = if e.path() == "/" { "" } else { e.path() };
    let at = spans
        .iter()
        .filter(|(p, _)| path == p || path.starts_with(&format!("{p}/")) || p.is_empty())
        .max_by_key(|(p, _)| p.len())
        .map_or(0, |(_, at)| *at);
    error(text, at, e.message())
}
