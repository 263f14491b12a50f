//! The secret a customer publishes to prove ownership.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Random bytes in a generated token: 160 bits, so guessing one is hopeless and a token
/// seen for one subscription says nothing about another.
const TOKEN_BYTES: usize = 20;

/// Shortest token [`VerificationToken::parse`] accepts: 32 hex digits carry 128 bits.
const MIN_LEN: usize = 32;

/// Longest token accepted; it must still fit in a file name and a TXT character-string.
const MAX_LEN: usize = 128;

/// A verification token: lower-case hex, safe in a URL path, a file name and a TXT record
/// without any escaping.
#[derive(Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct VerificationToken(String);

/// A string that cannot be a verification token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("a verification token has {MIN_LEN} to {MAX_LEN} characters; this one has {0}")]
    Length(usize),
    #[error("a verification token has only the characters a-z, A-Z, 0-9, '-' and '_'; this one has {0:?}")]
    Character(char),
}

impl VerificationToken {
    /// A new random token from the operating system's CSPRNG (via `rand`'s thread RNG, which
    /// is seeded from it and reseeds).
    pub fn generate() -> Self {
        let bytes: [u8; TOKEN_BYTES] = rand::random();
        let mut hex = String::with_capacity(TOKEN_BYTES * 2);
        for b in bytes {
            hex.push(char::from(b"0123456789abcdef"[usize::from(b >> 4)]));
            hex.push(char::from(b"0123456789abcdef"[usize::from(b & 0xf)]));
        }
        Self(hex)
    }

    /// A token stored earlier (e.g. with the subscription). Accepts what [`Self::generate`]
    /// makes and, so that stored tokens survive a change of generator, any 32–128 characters
    /// from the URL-safe base64 alphabet; nothing else, so a token never needs escaping.
    pub fn parse(s: &str) -> Result<Self, TokenError> {
        let len = s.chars().count();
        if !(MIN_LEN..=MAX_LEN).contains(&len) {
            return Err(TokenError::Length(len));
        }
        if let Some(c) = s
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || *c == '-' || *c == '_'))
        {
            return Err(TokenError::Character(c));
        }
        Ok(Self(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Only the first characters: a token is a (low-value) secret and debug output ends up in logs.
impl fmt::Debug for VerificationToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "VerificationToken({}…)", &self.0[..6])
    }
}

impl fmt::Display for VerificationToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for VerificationToken {
    type Err = TokenError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl TryFrom<String> for VerificationToken {
    type Error = TokenError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::parse(&s)
    }
}

impl From<VerificationToken> for String {
    fn from(t: VerificationToken) -> Self {
        t.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_tokens_are_long_hex_and_distinct() {
        let a = VerificationToken::generate();
        let b = VerificationToken::generate();
        assert_ne!(a, b);
        assert_eq!(a.as_str().len(), 40);
        assert!(a
            .as_str()
            .chars()
            .all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c)));
        assert_eq!(VerificationToken::parse(a.as_str()), Ok(a.clone()));
        assert!(
            !format!("{a:?}").contains(a.as_str()),
            "Debug hides the token"
        );
    }

    #[test]
    fn parse_refuses_short_long_and_unsafe_tokens() {
        assert_eq!(VerificationToken::parse("abc"), Err(TokenError::Length(3)));
        assert_eq!(
            VerificationToken::parse(&"a".repeat(129)),
            Err(TokenError::Length(129))
        );
        let slash = format!("{}/x", "a".repeat(32));
        assert_eq!(
            VerificationToken::parse(&slash),
            Err(TokenError::Character('/'))
        );
        assert!(VerificationToken::parse(&"A-_9".repeat(8)).is_ok());
    }

    #[test]
    fn serde_round_trips_and_validates() {
        let t = VerificationToken::generate();
        let json = serde_json::to_string(&t).unwrap();
        assert_eq!(json, format!("\"{t}\""));
        assert_eq!(serde_json::from_str::<VerificationToken>(&json).unwrap(), t);
        assert!(serde_json::from_str::<VerificationToken>("\"../etc/passwd\"").is_err());
    }
}
