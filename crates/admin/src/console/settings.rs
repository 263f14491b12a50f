//! The console's settings and its key: [`ConsoleArgs`] (flags and `HOOKLINE_CONSOLE_*`),
//! the [`Look`], and [`Console`], which seals sessions and portal links with HMAC-SHA256 (so
//! every instance that shares `HOOKLINE_CONSOLE_SECRET` accepts them), remembers the portal
//! links already opened, and writes the session cookie.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use axum::http::{HeaderMap, HeaderValue};
use base64::Engine;
use hmac::{KeyInit, Mac};
use serde::{Deserialize, Serialize};

use super::session::SessionData;

/// The session cookie's name.
pub const COOKIE: &str = "hookline_console";

type HmacSha256 = hmac::Hmac<sha2::Sha256>;

/// The console's settings (`docs/console.md`).
#[derive(Debug, Clone, clap::Args)]
pub struct ConsoleArgs {
    /// Key that seals console sessions and portal links (at least 32 characters). Instances
    /// behind one load balancer need the same; unset, each start picks a random one (sessions
    /// and links then end at a restart and work on this instance only).
    #[arg(long, env = "HOOKLINE_CONSOLE_SECRET", hide_env_values = true)]
    pub console_secret: Option<String>,

    /// How long a console session lasts.
    #[arg(long, env = "HOOKLINE_CONSOLE_SESSION_TTL", default_value = "8h")]
    pub console_session_ttl: String,

    /// How long a portal link may wait to be opened (it opens once).
    #[arg(long, env = "HOOKLINE_PORTAL_LINK_TTL", default_value = "5m")]
    pub portal_link_ttl: String,

    /// Origins allowed to show the console in an iframe (CSP `frame-ancestors`), space-separated,
    /// e.g. `https://app.example.com`; empty: none.
    #[arg(long, env = "HOOKLINE_CONSOLE_FRAME_ANCESTORS", default_value = "")]
    pub console_frame_ancestors: String,

    /// The product name the console shows.
    #[arg(
        long,
        env = "HOOKLINE_CONSOLE_PRODUCT_NAME",
        default_value = "Hookline"
    )]
    pub console_product_name: String,

    /// The logo the console shows (an https:// URL); none by default.
    #[arg(long, env = "HOOKLINE_CONSOLE_LOGO_URL")]
    pub console_logo_url: Option<String>,

    /// The accent colour, `#rrggbb`.
    #[arg(long, env = "HOOKLINE_CONSOLE_ACCENT", default_value = "#0b57d0")]
    pub console_accent: String,

    /// `Secure` on the session cookie: `auto` (when the request came over TLS, as
    /// `X-Forwarded-Proto: https` says), `always` or `never`.
    #[arg(long, env = "HOOKLINE_CONSOLE_SECURE_COOKIE", default_value = "auto")]
    pub console_secure_cookie: String,

    /// The console's public base URL (e.g. `https://webhooks.example.com`), for the links
    /// `POST /v1/operator/portal-links` returns; default: the request's `Host`.
    #[arg(long, env = "HOOKLINE_CONSOLE_PUBLIC_URL")]
    pub console_public_url: Option<String>,
}

/// The look of the console: product name, logo and accent colour.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Look {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logo: Option<String>,
    pub accent: String,
}

impl Look {
    /// Checks each setting; the error names the one at fault.
    pub fn checked(
        name: String,
        logo: Option<String>,
        accent: String,
    ) -> Result<Self, (&'static str, String)> {
        if name.trim().is_empty() || name.chars().count() > 60 {
            return Err(("product_name", "must be 1 to 60 characters".into()));
        }
        if let Some(l) = &logo {
            let ok = url::Url::parse(l).is_ok_and(|u| u.scheme() == "https" && u.host().is_some());
            if !ok {
                return Err(("logo_url", format!("{l:?} is not an https:// URL")));
            }
        }
        let hex = accent.strip_prefix('#').unwrap_or("");
        if hex.len() != 6 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err((
                "accent_color",
                format!("{accent:?} is not a colour like #0b57d0"),
            ));
        }
        Ok(Self { name, logo, accent })
    }
}

/// Whether to mark the cookie `Secure`.
#[derive(Debug, Clone, Copy, PartialEq)]
enum SecureCookie {
    Auto,
    Always,
    Never,
}

/// The console's state: key, settings and the portal links already opened.
pub struct Console {
    key: Vec<u8>,
    pub session_ttl: Duration,
    pub link_ttl: Duration,
    /// The CSP `frame-ancestors` value.
    pub frame_ancestors: String,
    pub look: Look,
    secure: SecureCookie,
    pub public_url: Option<String>,
    /// Portal link nonces opened on this instance, with their expiry (unix seconds).
    opened: Mutex<HashMap<String, i64>>,
}

impl Console {
    /// Checks the settings; the error says which one is wrong and how.
    pub fn from_args(a: &ConsoleArgs) -> Result<Self, String> {
        let key = match &a.console_secret {
            Some(s) if s.len() >= 32 => s.as_bytes().to_vec(),
            Some(_) => return Err("HOOKLINE_CONSOLE_SECRET must be at least 32 characters".into()),
            None => {
                use rand::RngCore;
                let mut k = vec![0u8; 32];
                rand::rng().fill_bytes(&mut k);
                k
            }
        };
        let ttl = |flag: &str, v: &str| {
            hookline_config::parse_duration(v).map_err(|e| format!("{flag}: {e}"))
        };
        let mut frame_ancestors = Vec::new();
        for origin in a.console_frame_ancestors.split_whitespace() {
            let ok = origin == "'self'"
                || url::Url::parse(origin).is_ok_and(|u| {
                    matches!(u.scheme(), "https" | "http")
                        && u.host().is_some()
                        && u.path() == "/"
                        && !origin.ends_with('/')
                });
            if !ok {
                return Err(format!(
                    "HOOKLINE_CONSOLE_FRAME_ANCESTORS: {origin:?} is not an origin such as \
                     https://app.example.com (or 'self')"
                ));
            }
            frame_ancestors.push(origin.to_owned());
        }
        let look = Look::checked(
            a.console_product_name.clone(),
            a.console_logo_url.clone(),
            a.console_accent.clone(),
        )
        .map_err(|(field, e)| format!("console {field}: {e}"))?;
        let secure = match a.console_secure_cookie.as_str() {
            "auto" => SecureCookie::Auto,
            "always" => SecureCookie::Always,
            "never" => SecureCookie::Never,
            other => {
                return Err(format!(
                    "HOOKLINE_CONSOLE_SECURE_COOKIE: {other:?}; use auto, always or never"
                ))
            }
        };
        Ok(Self {
            key,
            session_ttl: ttl("HOOKLINE_CONSOLE_SESSION_TTL", &a.console_session_ttl)?,
            link_ttl: ttl("HOOKLINE_PORTAL_LINK_TTL", &a.portal_link_ttl)?,
            frame_ancestors: if frame_ancestors.is_empty() {
                "'none'".into()
            } else {
                frame_ancestors.join(" ")
            },
            look,
            secure,
            public_url: a
                .console_public_url
                .clone()
                .map(|u| u.trim_end_matches('/').to_owned()),
            opened: Mutex::default(),
        })
    }

    /// `value` as `<payload>.<mac>`, sealed for `purpose` (sessions and links never mix).
    pub fn seal<T: Serialize>(&self, purpose: &str, value: &T) -> String {
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let payload = b64.encode(serde_json::to_vec(value).unwrap_or_default());
        let mac = self.mac(purpose, &payload).finalize().into_bytes();
        format!("{payload}.{}", b64.encode(mac))
    }

    /// The value [`Console::seal`] sealed for `purpose`, if the seal is intact.
    pub fn open<T: serde::de::DeserializeOwned>(&self, purpose: &str, sealed: &str) -> Option<T> {
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let (payload, mac) = sealed.split_once('.')?;
        let mac = b64.decode(mac).ok()?;
        self.mac(purpose, payload).verify_slice(&mac).ok()?;
        serde_json::from_slice(&b64.decode(payload).ok()?).ok()
    }

    fn mac(&self, purpose: &str, payload: &str) -> HmacSha256 {
        let mut m = HmacSha256::new_from_slice(&self.key).expect("HMAC takes any key length");
        m.update(purpose.as_bytes());
        m.update(b"\0");
        m.update(payload.as_bytes());
        m
    }

    /// Marks a portal link's nonce as opened; false if it was already (one-time links).
    pub fn first_opening(&self, nonce: &str, expires: i64) -> bool {
        let now = unix_now();
        let mut opened = self.opened.lock().unwrap_or_else(PoisonError::into_inner);
        opened.retain(|_, exp| *exp >= now);
        opened.insert(nonce.to_owned(), expires).is_none()
    }

    /// The `Set-Cookie` value that stores `session` (or ends it, with `None`).
    pub fn cookie(&self, headers: &HeaderMap, session: Option<&SessionData>) -> HeaderValue {
        let secure = match self.secure {
            SecureCookie::Always => true,
            SecureCookie::Never => false,
            SecureCookie::Auto => headers
                .get("x-forwarded-proto")
                .and_then(|v| v.to_str().ok())
                .is_some_and(|p| p.eq_ignore_ascii_case("https")),
        };
        let (value, age) = match session {
            Some(s) => (self.seal("session", s), self.session_ttl.as_secs()),
            None => (String::new(), 0),
        };
        let secure = if secure { "; Secure" } else { "" };
        HeaderValue::from_str(&format!(
            "{COOKIE}={value}; Path=/console; Max-Age={age}; HttpOnly; SameSite=Strict{secure}"
        ))
        .expect("a sealed value is a valid header")
    }
}

/// Seconds since the epoch.
pub fn unix_now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

/// A random URL-safe string of 128 bits.
pub fn nonce() -> String {
    use rand::RngCore;
    let mut b = [0u8; 16];
    rand::rng().fill_bytes(&mut b);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::console::session::Kind;
    use clap::Parser;

    #[derive(Parser)]
    struct Args {
        #[command(flatten)]
        console: ConsoleArgs,
    }

    fn console(extra: &[&str]) -> Result<Console, String> {
        let mut argv = vec!["test"];
        argv.extend_from_slice(extra);
        Console::from_args(&Args::parse_from(argv).console)
    }

    #[test]
    fn sealed_values_open_only_intact_and_for_their_purpose() {
        let c = console(&[]).unwrap();
        let sealed = c.seal("session", &serde_json::json!({"a": 1}));
        let back: Option<serde_json::Value> = c.open("session", &sealed);
        assert_eq!(back, Some(serde_json::json!({"a": 1})));
        assert!(
            c.open::<serde_json::Value>("portal-link", &sealed)
                .is_none(),
            "purposes never mix"
        );
        let (payload, mac) = sealed.split_once('.').unwrap();
        let forged = format!(
            "{}.{mac}",
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(br#"{"a":2}"#)
        );
        assert!(
            c.open::<serde_json::Value>("session", &forged).is_none(),
            "a changed payload"
        );
        assert!(
            c.open::<serde_json::Value>("session", payload).is_none(),
            "no seal at all"
        );
        let other = console(&[]).unwrap();
        assert!(
            other
                .open::<serde_json::Value>("session", &sealed)
                .is_none(),
            "another key"
        );
        let secret = "s".repeat(32);
        let (a, b) = (
            console(&["--console-secret", &secret]).unwrap(),
            console(&["--console-secret", &secret]).unwrap(),
        );
        assert!(
            b.open::<serde_json::Value>("session", &a.seal("session", &1))
                .is_some(),
            "a shared secret"
        );
    }

    #[test]
    fn settings_are_checked_with_a_message_naming_them() {
        assert!(console(&["--console-secret", "short"])
            .err()
            .unwrap()
            .contains("HOOKLINE_CONSOLE_SECRET"));
        for bad in ["https://app.example.com/path", "app.example.com", "*"] {
            let e = console(&["--console-frame-ancestors", bad]).err().unwrap();
            assert!(e.contains("HOOKLINE_CONSOLE_FRAME_ANCESTORS"), "{bad}: {e}");
        }
        let ok = console(&[
            "--console-frame-ancestors",
            "https://a.example 'self' http://127.0.0.1:8080",
        ])
        .unwrap();
        assert_eq!(
            ok.frame_ancestors,
            "https://a.example 'self' http://127.0.0.1:8080"
        );
        assert_eq!(console(&[]).unwrap().frame_ancestors, "'none'");
        assert!(console(&["--console-accent", "blue"])
            .err()
            .unwrap()
            .contains("accent"));
        assert!(console(&["--console-logo-url", "http://x.example/l.png"])
            .err()
            .unwrap()
            .contains("logo"));
        assert!(console(&["--console-secure-cookie", "yes"])
            .err()
            .unwrap()
            .contains("auto, always or never"));
    }

    #[test]
    fn portal_links_open_once() {
        let c = console(&[]).unwrap();
        let exp = unix_now() + 60;
        assert!(c.first_opening("n1", exp));
        assert!(!c.first_opening("n1", exp));
        assert!(c.first_opening("n2", exp));
    }

    #[test]
    fn the_cookie_is_http_only_strict_and_secure_behind_tls() {
        let c = console(&[]).unwrap();
        let data = SessionData::new(&c, Kind::Portal, None, None, c.look.clone());
        let plain = c.cookie(&HeaderMap::new(), Some(&data));
        let plain = plain.to_str().unwrap();
        assert!(
            plain.contains("HttpOnly")
                && plain.contains("SameSite=Strict")
                && !plain.contains("Secure"),
            "{plain}"
        );
        let mut tls = HeaderMap::new();
        tls.insert("x-forwarded-proto", HeaderValue::from_static("https"));
        assert!(c
            .cookie(&tls, Some(&data))
            .to_str()
            .unwrap()
            .ends_with("; Secure"));
        assert!(c
            .cookie(&HeaderMap::new(), None)
            .to_str()
            .unwrap()
            .contains("Max-Age=0"));
    }
}
