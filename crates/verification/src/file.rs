//! Verification by a token file on the callback's own web server.
//!
//! Whoever can put a file next to the callback script, or at the web root, controls what that
//! URL runs, so serving the token there proves ownership. Both places are accepted because
//! some customers can write only to the script's directory (shared hosting) and others only
//! deploy to the root.
//!
//! The file is `<prefix>-<token>.txt`; the prefix is the operator's ([`FilePrefix`],
//! `HOOKLINE_VERIFICATION_PREFIX`, default `hookline`), as the product names its file after
//! itself. One redirect is followed, and only one kind: from `http://` to `https://` on the
//! same host (sites that force https answer the plain address with a redirect), through the
//! same client, so the SSRF guard checks the new address too.

use std::fmt;

use bytes::Bytes;
use hookline_outbound::{HttpClient, SendError};
use http::{HeaderName, HeaderValue, Method};
use url::Url;

use crate::token::VerificationToken;

/// How much of a wrong body an error message quotes: enough to recognise a login page or a
/// stale token, not enough to flood a UI.
const QUOTE_CHARS: usize = 80;

/// The prefix of the file name when none is configured.
pub const DEFAULT_PREFIX: &str = "hookline";

/// The first part of the file name, `<prefix>-<token>.txt`: 1 to 64 ASCII letters, digits,
/// `-`, `_` and `.`, starting with a letter or digit, so the name is one plain path segment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FilePrefix(String);

/// A prefix that cannot be part of a file name in a URL.
#[derive(Debug, Clone, thiserror::Error)]
#[error(
    "verification file prefix {0:?}: use 1 to 64 ASCII letters, digits, '-', '_' or '.', \
     starting with a letter or digit (e.g. hookline)"
)]
pub struct PrefixError(String);

impl FilePrefix {
    pub fn parse(raw: &str) -> Result<Self, PrefixError> {
        let fine = (1..=64).contains(&raw.len())
            && raw.starts_with(|c: char| c.is_ascii_alphanumeric())
            && raw
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
        if fine {
            Ok(Self(raw.to_owned()))
        } else {
            Err(PrefixError(raw.to_owned()))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Default for FilePrefix {
    fn default() -> Self {
        Self(DEFAULT_PREFIX.to_owned())
    }
}

/// `<prefix>-<token>.txt`: the name of the file the customer serves.
pub fn file_name(prefix: &FilePrefix, token: &VerificationToken) -> String {
    format!("{}-{token}.txt", prefix.0)
}

/// The prefix of `name` when it is a file name for `token` (`<prefix>-<token>.txt` with a
/// valid prefix); a challenge keeps its file name, so a prefix changed later does not break it.
pub fn prefix_of(name: &str, token: &VerificationToken) -> Option<FilePrefix> {
    let prefix = name
        .strip_suffix(".txt")?
        .strip_suffix(token.as_str())?
        .strip_suffix('-')?;
    FilePrefix::parse(prefix).ok()
}

/// Where the file `name` is looked for, in order: the callback's directory, then the web root
/// (`https://d.example/dir/hook.php` → `https://d.example/dir/hookline-<token>.txt`,
/// `https://d.example/hookline-<token>.txt`). A path ending in `/` is its own directory;
/// a callback at the root yields one location. Scheme, host and port are kept; query,
/// fragment and any user name or password are dropped, so the fetch sends no credentials.
pub fn file_locations(callback: &Url, name: &str) -> Vec<Url> {
    let mut base = callback.clone();
    base.set_query(None);
    base.set_fragment(None);
    // Only fails for URLs that cannot have credentials, which then have none to drop.
    let _ = base.set_username("");
    let _ = base.set_password(None);

    let path = callback.path();
    let dir = &path[..path.rfind('/').map_or(0, |i| i + 1)];
    let mut locations = Vec::with_capacity(2);
    for dir in [dir, "/"] {
        let mut u = base.clone();
        let dir = if dir.starts_with('/') {
            dir.to_owned()
        } else {
            format!("/{dir}")
        };
        u.set_path(&format!("{dir}{name}"));
        if !locations.contains(&u) {
            locations.push(u);
        }
    }
    locations
}

/// What fetching one location gave.
#[derive(Debug, Clone)]
pub struct FileAttempt {
    /// The URL that was fetched.
    pub url: Url,
    /// The `http://` location that redirected to `url`, when the redirect was followed.
    pub redirected_from: Option<Url>,
    pub outcome: FileOutcome,
}

/// The result of one fetch that did not prove ownership.
#[derive(Debug, Clone)]
pub enum FileOutcome {
    /// An answer whose status is not 2xx. Redirects are not followed (the file must be
    /// served at the location itself), so `location` is reported to explain a 3xx.
    Status {
        status: u16,
        location: Option<String>,
    },
    /// A 2xx answer whose body, trimmed, is not the token.
    WrongBody { status: u16, body: Bytes },
    /// No answer: connection refused, refused by the SSRF guard, DNS failure, TLS, timeout.
    Failed(SendError),
    /// The token was served (never part of an error).
    Found,
}

impl fmt::Display for FileAttempt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let url = &self.url;
        if let Some(from) = &self.redirected_from {
            write!(f, "GET {from} redirected to https, then ")?;
        }
        match &self.outcome {
            FileOutcome::Status {
                status,
                location: Some(to),
            } if (300..400).contains(status) => write!(
                f,
                "GET {url} answered {status} redirecting to {to:?} (only a redirect from http to https on the same host is followed, once; serve the file at this address)"
            ),
            FileOutcome::Status { status, .. } => write!(f, "GET {url} answered {status}"),
            FileOutcome::WrongBody { status, body } => {
                let text = String::from_utf8_lossy(body);
                let trimmed = text.trim();
                if trimmed.is_empty() {
                    write!(f, "GET {url} answered {status} but the body was empty (expected the token)")
                } else {
                    let mut quote: String = trimmed.chars().take(QUOTE_CHARS).collect();
                    if trimmed.chars().nth(QUOTE_CHARS).is_some() {
                        quote.push('…');
                    }
                    write!(f, "GET {url} answered {status} but the body was {quote:?} (expected the token)")
                }
            }
            FileOutcome::Failed(e) => write!(f, "GET {url} failed: {e}"),
            FileOutcome::Found => write!(f, "GET {url} served the token"),
        }
    }
}

/// Why file verification did not succeed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum FileVerificationError {
    /// The callback URL cannot be verified by file at all (not http/https, no host).
    /// Permanent: the URL must change.
    #[error("{callback} cannot be verified with a file: {reason}")]
    InvalidCallback { callback: String, reason: String },
    /// No location served the token. Retriable once the customer fixes what the attempts
    /// show; each attempt says what was fetched and what came back. The summary says whether
    /// a file was found with the wrong content, nothing was found, or nothing could be fetched.
    #[error("{}: {}", summary(attempts), join(attempts))]
    NotFound { attempts: Vec<FileAttempt> },
}

/// The first words of a failed verification: what the attempts, taken together, found.
fn summary(attempts: &[FileAttempt]) -> &'static str {
    let wrong = |a: &FileAttempt| matches!(a.outcome, FileOutcome::WrongBody { .. });
    let failed = |a: &FileAttempt| matches!(a.outcome, FileOutcome::Failed(_));
    if attempts.iter().any(wrong) {
        "the verification file was found, but its content is not the token"
    } else if !attempts.is_empty() && attempts.iter().all(failed) {
        "the verification file could not be fetched"
    } else {
        "the verification file was not found"
    }
}

fn join(attempts: &[FileAttempt]) -> String {
    attempts
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

/// Fetches the [`file_locations`] of file `name` in order with `client` (so the SSRF guard,
/// the connect and total timeouts and the bounded body read of Hookline's outbound client
/// apply) and returns the first location whose 2xx body, trimmed of surrounding whitespace
/// (and a UTF-8 byte-order mark, which Windows editors add), equals the token. A location
/// that redirects from `http` to `https` on the same host is fetched there, once (the address
/// returned is then the https one); no other redirect is followed.
pub async fn verify_file(
    client: &HttpClient,
    callback: &Url,
    name: &str,
    token: &VerificationToken,
) -> Result<Url, FileVerificationError> {
    let invalid = |reason: &str| FileVerificationError::InvalidCallback {
        callback: callback.to_string(),
        reason: reason.to_owned(),
    };
    if !matches!(callback.scheme(), "http" | "https") {
        return Err(invalid("only http:// and https:// URLs can serve a file"));
    }
    if callback.host().is_none() {
        return Err(invalid("the URL has no host"));
    }
    let mut attempts = Vec::new();
    for url in file_locations(callback, name) {
        let mut outcome = fetch(client, &url, token).await;
        let mut attempt_url = url.clone();
        let mut redirected_from = None;
        if let FileOutcome::Status {
            status: 300..=399,
            location: Some(to),
        } = &outcome
        {
            if let Some(https) = https_upgrade(&url, to) {
                outcome = fetch(client, &https, token).await;
                redirected_from = Some(url);
                attempt_url = https;
            }
        }
        if let FileOutcome::Found = outcome {
            return Ok(attempt_url);
        }
        attempts.push(FileAttempt {
            url: attempt_url,
            redirected_from,
            outcome,
        });
    }
    Err(FileVerificationError::NotFound { attempts })
}

/// The redirect target `location` of `from` when it is the one redirect followed: from
/// `http://` to `https://` on the same host.
fn https_upgrade(from: &Url, location: &str) -> Option<Url> {
    let to = from.join(location).ok()?;
    let same_host = to.host_str().is_some() && to.host_str() == from.host_str();
    (from.scheme() == "http" && to.scheme() == "https" && same_host).then_some(to)
}

/// One GET of `url` (through the guard; no redirect followed by the client).
async fn fetch(client: &HttpClient, url: &Url, token: &VerificationToken) -> FileOutcome {
    let answer = client
        .request(
            Method::GET,
            url.as_str(),
            // A cache in front of the site could still hold an earlier 404.
            vec![(
                HeaderName::from_static("cache-control"),
                HeaderValue::from_static("no-cache"),
            )],
            Bytes::new(),
        )
        .await;
    match answer {
        Ok(resp) if (200..300).contains(&resp.status) => {
            if body_is_token(&resp.body, token) {
                FileOutcome::Found
            } else {
                FileOutcome::WrongBody {
                    status: resp.status,
                    body: resp.body,
                }
            }
        }
        Ok(resp) => FileOutcome::Status {
            status: resp.status,
            location: resp
                .headers
                .get(http::header::LOCATION)
                .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned()),
        },
        Err(e) => FileOutcome::Failed(e),
    }
}

fn body_is_token(body: &[u8], token: &VerificationToken) -> bool {
    let body = body.strip_prefix("\u{feff}".as_bytes()).unwrap_or(body);
    std::str::from_utf8(body).is_ok_and(|s| s.trim() == token.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token() -> VerificationToken {
        VerificationToken::parse("0123456789abcdef0123456789abcdef").unwrap()
    }

    fn locations(callback: &str) -> Vec<String> {
        file_locations(
            &Url::parse(callback).unwrap(),
            &file_name(&FilePrefix::default(), &token()),
        )
        .into_iter()
        .map(String::from)
        .collect()
    }

    const F: &str = "hookline-0123456789abcdef0123456789abcdef.txt";

    #[test]
    fn the_prefix_is_checked_and_a_challenge_keeps_its_own() {
        let t = token();
        let acme = FilePrefix::parse("acme-mail").unwrap();
        assert_eq!(file_name(&acme, &t), format!("acme-mail-{t}.txt"));
        assert_eq!(prefix_of(&file_name(&acme, &t), &t), Some(acme));
        assert_eq!(prefix_of(F, &t), Some(FilePrefix::default()));
        assert_eq!(prefix_of("x.txt", &t), None);
        assert_eq!(prefix_of(&format!("../a-{t}.txt"), &t), None);
        for bad in ["", "-x", "a/b", "a b", "ä", &"x".repeat(65)] {
            assert!(FilePrefix::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn only_http_to_https_on_the_same_host_is_followed() {
        let from = Url::parse("http://d.example/dir/f.txt").unwrap();
        let ok = |to: &str| https_upgrade(&from, to).map(String::from);
        assert_eq!(
            ok("https://d.example/dir/f.txt").as_deref(),
            Some("https://d.example/dir/f.txt")
        );
        assert_eq!(
            ok("https://D.EXAMPLE:8443/f.txt").as_deref(),
            Some("https://d.example:8443/f.txt")
        );
        assert_eq!(ok("https://other.example/dir/f.txt"), None);
        assert_eq!(ok("http://d.example/elsewhere.txt"), None, "http to http");
        assert_eq!(ok("/relative.txt"), None, "stays http");
        let secure = Url::parse("https://d.example/f.txt").unwrap();
        assert_eq!(https_upgrade(&secure, "https://d.example/g.txt"), None);
    }

    #[test]
    fn the_script_directory_then_the_root() {
        assert_eq!(
            locations("https://d.example/dir/hook.php"),
            [
                format!("https://d.example/dir/{F}"),
                format!("https://d.example/{F}")
            ]
        );
        assert_eq!(
            locations("https://d.example/a/b/c/hook"),
            [
                format!("https://d.example/a/b/c/{F}"),
                format!("https://d.example/{F}")
            ]
        );
    }

    #[test]
    fn a_trailing_slash_is_its_own_directory() {
        assert_eq!(
            locations("https://d.example/dir/"),
            [
                format!("https://d.example/dir/{F}"),
                format!("https://d.example/{F}")
            ]
        );
    }

    #[test]
    fn a_callback_at_the_root_has_one_location() {
        assert_eq!(
            locations("https://d.example/hook.php"),
            [format!("https://d.example/{F}")]
        );
        assert_eq!(
            locations("https://d.example"),
            [format!("https://d.example/{F}")]
        );
        assert_eq!(
            locations("https://d.example/"),
            [format!("https://d.example/{F}")]
        );
    }

    #[test]
    fn scheme_host_and_port_stay_query_fragment_and_credentials_go() {
        assert_eq!(
            locations("http://user:pw@D.Example:8080/dir/hook.php?x=1&y=2#frag"),
            [
                format!("http://d.example:8080/dir/{F}"),
                format!("http://d.example:8080/{F}")
            ]
        );
        assert_eq!(
            locations("https://[::1]:8443/x/y.php"),
            [
                format!("https://[::1]:8443/x/{F}"),
                format!("https://[::1]:8443/{F}")
            ]
        );
    }

    #[test]
    fn encoded_directories_stay_encoded() {
        assert_eq!(
            locations("https://d.example/my%20dir/hook.php"),
            [
                format!("https://d.example/my%20dir/{F}"),
                format!("https://d.example/{F}")
            ]
        );
    }

    #[test]
    fn the_body_may_have_surrounding_whitespace_and_a_bom_only() {
        let t = token();
        assert!(body_is_token(t.as_str().as_bytes(), &t));
        assert!(body_is_token(format!("  {t}\r\n").as_bytes(), &t));
        assert!(body_is_token(format!("\u{feff}{t}\n").as_bytes(), &t));
        assert!(!body_is_token(format!("{t}x").as_bytes(), &t));
        assert!(!body_is_token(format!("token={t}").as_bytes(), &t));
        assert!(!body_is_token(b"", &t));
    }

    fn attempt(outcome: FileOutcome) -> FileAttempt {
        FileAttempt {
            url: Url::parse("https://d.example/x.txt").unwrap(),
            redirected_from: None,
            outcome,
        }
    }

    /// A file served with the wrong content was reported as "not found", sending the customer
    /// to look for a missing file that was there.
    #[test]
    fn the_summary_says_what_was_found() {
        let missing = || {
            attempt(FileOutcome::Status {
                status: 404,
                location: None,
            })
        };
        let wrong = attempt(FileOutcome::WrongBody {
            status: 200,
            body: Bytes::from("stale-token"),
        });
        let failed = attempt(FileOutcome::Failed(SendError {
            kind: hookline_outbound::SendErrorKind::Connect,
            message: "connection refused".into(),
        }));
        let message =
            |attempts: Vec<FileAttempt>| FileVerificationError::NotFound { attempts }.to_string();
        let m = message(vec![missing(), wrong.clone()]);
        assert!(
            m.starts_with("the verification file was found, but its content is not the token: "),
            "{m}"
        );
        assert!(m.contains("\"stale-token\" (expected the token)"), "{m}");
        let m = message(vec![missing(), missing()]);
        assert!(
            m.starts_with("the verification file was not found: "),
            "{m}"
        );
        let m = message(vec![failed.clone(), missing()]);
        assert!(
            m.starts_with("the verification file was not found: "),
            "{m}"
        );
        let m = message(vec![failed.clone(), failed]);
        assert!(
            m.starts_with("the verification file could not be fetched: "),
            "{m}"
        );
    }

    #[test]
    fn long_wrong_bodies_are_quoted_shortened() {
        let a = FileAttempt {
            url: Url::parse("https://d.example/x.txt").unwrap(),
            redirected_from: None,
            outcome: FileOutcome::WrongBody {
                status: 200,
                body: Bytes::from("<html>".repeat(100)),
            },
        };
        let msg = a.to_string();
        assert!(
            msg.starts_with("GET https://d.example/x.txt answered 200 but the body was \"<html>"),
            "{msg}"
        );
        assert!(msg.contains("…\" (expected the token)"), "{msg}");
        assert!(msg.len() < 200, "{msg}");
    }
}
