//! What an answer means: a response or a send error mapped to a [`Verdict`] and an error class,
//! and `Retry-After` read as seconds or an HTTP date.

use std::time::Duration;

use hookline_model::ErrorClass;
use hookline_outbound::{Response, SendError, SendErrorKind};

/// What to do after an attempt.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    Delivered,
    /// Try again (with the server's `Retry-After`, if it sent one).
    Retry {
        retry_after: Option<Duration>,
    },
    /// 410 Gone: the receiver asks to stop; the subscription is disabled.
    Gone,
    /// Trying again cannot help (invalid URL, refused by the network guard): dead-letter now.
    Permanent,
}

impl Verdict {
    /// A short name for logs and spans: `delivered`, `retry`, `gone`, `permanent`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Verdict::Delivered => "delivered",
            Verdict::Retry { .. } => "retry",
            Verdict::Gone => "gone",
            Verdict::Permanent => "permanent",
        }
    }
}

type Judged = (
    Verdict,
    Option<u16>,
    Option<ErrorClass>,
    Option<String>,
    Option<String>,
);

/// Maps a response or error to a verdict and an error class.
pub fn judge(result: &Result<Response, SendError>) -> Judged {
    match result {
        Ok(r) => {
            let excerpt = (!r.body.is_empty())
                .then(|| String::from_utf8_lossy(&r.body[..r.body.len().min(512)]).into_owned());
            let status = Some(r.status);
            match r.status {
                200..=299 => (Verdict::Delivered, status, None, None, excerpt),
                410 => (
                    Verdict::Gone,
                    status,
                    Some(ErrorClass::Http4xx),
                    Some("410 Gone: the receiver asked to stop".into()),
                    excerpt,
                ),
                429 | 503 => {
                    let ra = r
                        .headers
                        .get("retry-after")
                        .and_then(|v| v.to_str().ok())
                        .and_then(parse_retry_after);
                    let class = if r.status == 429 {
                        ErrorClass::Http4xx
                    } else {
                        ErrorClass::Http5xx
                    };
                    (
                        Verdict::Retry { retry_after: ra },
                        status,
                        Some(class),
                        Some(format!("HTTP {}", r.status)),
                        excerpt,
                    )
                }
                s => {
                    let class = if s >= 500 {
                        ErrorClass::Http5xx
                    } else {
                        ErrorClass::Http4xx
                    };
                    (
                        Verdict::Retry { retry_after: None },
                        status,
                        Some(class),
                        Some(format!("HTTP {s}")),
                        excerpt,
                    )
                }
            }
        }
        Err(e) => {
            let (verdict, class) = match e.kind {
                SendErrorKind::Timeout => {
                    (Verdict::Retry { retry_after: None }, ErrorClass::Timeout)
                }
                SendErrorKind::Dns => (Verdict::Retry { retry_after: None }, ErrorClass::Dns),
                SendErrorKind::Connect => {
                    (Verdict::Retry { retry_after: None }, ErrorClass::Connect)
                }
                SendErrorKind::Tls => (Verdict::Retry { retry_after: None }, ErrorClass::Tls),
                SendErrorKind::RefusedByGuard => (Verdict::Permanent, ErrorClass::RefusedByGuard),
                SendErrorKind::InvalidUrl => (Verdict::Permanent, ErrorClass::Other),
                SendErrorKind::Other => (Verdict::Retry { retry_after: None }, ErrorClass::Other),
            };
            (verdict, None, Some(class), Some(e.message.clone()), None)
        }
    }
}

/// `Retry-After` as seconds or an HTTP date, capped at a day.
pub fn parse_retry_after(value: &str) -> Option<Duration> {
    let v = value.trim();
    let d = if let Ok(secs) = v.parse::<u64>() {
        Duration::from_secs(secs)
    } else {
        let when = httpdate_parse(v)?;
        when.duration_since(std::time::SystemTime::now())
            .unwrap_or(Duration::ZERO)
    };
    Some(d.min(Duration::from_secs(86_400)))
}

fn httpdate_parse(v: &str) -> Option<std::time::SystemTime> {
    let fmt = time::macros::format_description!(
        "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] GMT"
    );
    let t = time::PrimitiveDateTime::parse(v, &fmt).ok()?.assume_utc();
    Some(std::time::UNIX_EPOCH + Duration::from_secs(t.unix_timestamp().max(0) as u64))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_is_seconds_or_a_date() {
        assert_eq!(parse_retry_after("30"), Some(Duration::from_secs(30)));
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"),
            Some(Duration::ZERO)
        );
        assert_eq!(
            parse_retry_after("999999"),
            Some(Duration::from_secs(86_400)),
            "capped at a day"
        );
        assert_eq!(parse_retry_after("soon"), None);
    }
}
