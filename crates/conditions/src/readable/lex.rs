//! The lexer of the text form: words, quoted strings (JSON escapes) and parentheses, each
//! with the byte offset it starts at; and where an offset is, as a line and column.

use std::fmt;

use serde_json::Value;

use super::TextError;

/// One token and where it starts (a byte offset).
#[derive(Debug, Clone)]
pub(super) struct Token {
    pub(super) kind: Kind,
    pub(super) start: usize,
}

#[derive(Debug, Clone, PartialEq)]
pub(super) enum Kind {
    Open,
    Close,
    /// A quoted string, decoded.
    Quoted(String),
    Word(String),
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Kind::Open => f.write_str("`(`"),
            Kind::Close => f.write_str("`)`"),
            Kind::Quoted(s) => write!(f, "the string {}", Value::String(s.clone())),
            Kind::Word(w) => write!(f, "`{w}`"),
        }
    }
}

/// The 1-based line and column of byte offset `at` of `text`.
pub(super) fn position(text: &str, at: usize) -> (usize, usize) {
    let before = &text[..at.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    (line, before[line_start..].chars().count() + 1)
}

pub(super) fn error(text: &str, at: usize, message: impl Into<String>) -> TextError {
    let (line, column) = position(text, at);
    TextError {
        line,
        column,
        message: message.into(),
    }
}

pub(super) fn lex(text: &str) -> Result<Vec<Token>, TextError> {
    let mut tokens = Vec::new();
    let mut chars = text.char_indices().peekable();
    while let Some(&(start, c)) = chars.peek() {
        match c {
            c if c.is_whitespace() => {
                chars.next();
            }
            '(' | ')' => {
                chars.next();
                let kind = if c == '(' { Kind::Open } else { Kind::Close };
                tokens.push(Token { kind, start });
            }
            '"' => {
                chars.next();
                let mut end = None;
                let mut escaped = false;
                for (i, c) in chars.by_ref() {
                    match c {
                        _ if escaped => escaped = false,
                        '\\' => escaped = true,
                        '"' => {
                            end = Some(i);
                            break;
                        }
                        _ => {}
                    }
                }
                let end =
                    end.ok_or_else(|| error(text, start, "this string has no closing quote"))?;
                let decoded: String = serde_json::from_str(&text[start..=end]).map_err(|e| {
                    error(
                        text,
                        start,
                        format!("this string is not valid: {e} (escapes as in JSON: \\\" \\\\ \\n \\u00e9)"),
                    )
                })?;
                tokens.push(Token {
                    kind: Kind::Quoted(decoded),
                    start,
                });
            }
            _ => {
                let mut end = text.len();
                while let Some(&(i, c)) = chars.peek() {
                    if c.is_whitespace() || matches!(c, '(' | ')' | '"') {
                        end = i;
                        break;
                    }
                    chars.next();
                }
                tokens.push(Token {
                    kind: Kind::Word(text[start..end].to_owned()),
                    start,
                });
            }
        }
    }
    Ok(tokens)
}
