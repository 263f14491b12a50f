//! The keys page: the public keys receivers verify with, the DNS TXT record that publishes the
//! RSA key, and the receiver examples of `docs/receivers/` (built in).

use axum::extract::State;
use axum::response::{IntoResponse, Response};

use super::html::{error_page, esc, page as frame};
use super::session::Session;
use crate::auth::OptionalCaller;
use crate::extract::ApiQuery;
use crate::keys::KeysQuery;
use crate::AppState;

/// The receiver examples: (title, file, source).
const EXAMPLES: &[(&str, &str, &str)] = &[
    (
        "PHP",
        "verify.php",
        include_str!("../../../../docs/receivers/verify.php"),
    ),
    (
        "Node.js",
        "verify.mjs",
        include_str!("../../../../docs/receivers/verify.mjs"),
    ),
    (
        "Python",
        "verify.py",
        include_str!("../../../../docs/receivers/verify.py"),
    ),
    (
        "Python (Standard Webhooks)",
        "standard-webhooks-verify.py",
        include_str!("../../../../docs/receivers/standard-webhooks-verify.py"),
    ),
];

/// `GET /console/keys`.
pub async fn page(State(state): State<AppState>, session: Session) -> Response {
    let caller = or_return!(session.account());
    let q = KeysQuery {
        account: Some(caller.account.to_string()),
    };
    let keys = match crate::keys::list(State(state), OptionalCaller(None), ApiQuery(q)).await {
        Ok(k) => k.0,
        Err(e) => return error_page(&session, &e),
    };
    let mut body = String::from(
        "<p>Every webhook is signed. Your receiver checks the signature with one of these public \
         keys, picked by its key id.</p>",
    );
    for k in &keys {
        body.push_str(&format!(
            "<section class=\"key\"><h2>{} <code>{}</code></h2><pre>{}</pre>",
            esc(k.algorithm),
            esc(&k.key_id),
            esc(&k.public_key_pem)
        ));
        if let Some(txt) = &k.dns_txt {
            body.push_str(&format!(
                "<p>Published in DNS as a TXT record at <code>{}</code>:</p><pre>{}</pre>",
                esc(&k.key_id),
                esc(txt)
            ));
        }
        if let Some(sw) = &k.standard_webhooks {
            body.push_str(&format!(
                "<p>Standard Webhooks form:</p><pre>{}</pre>",
                esc(sw)
            ));
        }
        body.push_str("</section>");
    }
    body.push_str("<h2>Receiver examples</h2>");
    for (title, file, source) in EXAMPLES {
        body.push_str(&format!(
            "<details><summary>{} (<code>{}</code>)</summary><pre>{}</pre></details>",
            esc(title),
            esc(file),
            esc(source)
        ));
    }
    frame(&session, "Keys", &body).into_response()
}
