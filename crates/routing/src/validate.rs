//! What makes a subscription acceptable.

use hookline_conditions::Condition;
use hookline_model::Subscription;

/// A subscription that cannot be accepted: which field and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct InvalidSubscription {
    pub field: String,
    pub message: String,
}

fn bad(field: &str, message: impl Into<String>) -> InvalidSubscription {
    InvalidSubscription {
        field: field.to_owned(),
        message: message.into(),
    }
}

/// Checks a subscription and compiles its condition. `require_https`: refuse `http://` URLs
/// (the production default; local runs and tests allow http).
pub fn validate_subscription(
    sub: &Subscription,
    require_https: bool,
) -> Result<Condition, InvalidSubscription> {
    if sub.id.0.is_empty() || sub.id.0.len() > 128 {
        return Err(bad("id", "must be 1 to 128 characters"));
    }
    check_scope(sub)?;
    if sub.events.is_empty() {
        return Err(bad("events", "list at least one event type (click, open, bounce, failure, delivery, create, update, delete)"));
    }
    if let Some(a) = &sub.actions {
        if a.is_empty() {
            return Err(bad(
                "actions",
                "an empty list would match nothing; omit it to receive all actions",
            ));
        }
    }
    if let Some(t) = &sub.triggers {
        if t.is_empty() {
            return Err(bad(
                "triggers",
                "an empty list would match nothing; omit it to receive all triggers",
            ));
        }
    }
    let url = url::Url::parse(&sub.url)
        .map_err(|e| bad("url", format!("{:?} is not a valid URL: {e}", sub.url)))?;
    match url.scheme() {
        "https" => {}
        "http" if !require_https => {}
        "http" => {
            return Err(bad(
                "url",
                "must use https:// (plain http is refused by policy)",
            ))
        }
        other => {
            return Err(bad(
                "url",
                format!("scheme {other:?} is not supported; use https://"),
            ))
        }
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(bad("url", "has no host"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(bad(
            "url",
            "must not carry credentials (user:password@); they would be logged and shared",
        ));
    }
    if url.fragment().is_some() {
        return Err(bad("url", "must not have a #fragment"));
    }
    if !hookline_schemas::is_delivery_url(&sub.url) {
        return Err(bad("url", not_a_delivery_url(&sub.url, &url)));
    }
    if !(1..=1000).contains(&sub.limits.max_in_flight) {
        return Err(bad("limits.max_in_flight", "must be between 1 and 1000"));
    }
    if !(sub.limits.per_second > 0.0 && sub.limits.per_second <= 10_000.0) {
        return Err(bad(
            "limits.per_second",
            "must be above 0 and at most 10000",
        ));
    }
    Condition::parse(&sub.conditions).map_err(|e| {
        bad(
            &format!("conditions{}", e.path().trim_end_matches('/')),
            e.message(),
        )
    })
}

/// Why `text` (which parses as `url`) cannot be a delivery's URL, with the spelling that can.
/// An account-wide subscription (no database) takes no collection: a collection belongs to one
/// database.
fn check_scope(sub: &Subscription) -> Result<(), InvalidSubscription> {
    if sub.database.is_none() && sub.collection.is_some() {
        return Err(bad(
            "collection",
            "a collection belongs to a database: give `database` too, or drop `collection` for an account-wide subscription",
        ));
    }
    Ok(())
}

fn not_a_delivery_url(text: &str, url: &url::Url) -> String {
    let mut message = format!(
        "{text:?} is not written as deliveries must carry it: an absolute http:// or https:// \
         URI as RFC 3986 writes it (other characters than ASCII letters, digits and \
         -._~:/?#[]@!$&'()*+,;= percent-encoded, a non-ASCII host in punycode)"
    );
    if hookline_schemas::is_delivery_url(url.as_str()) {
        message.push_str(&format!("; write {:?}", url.as_str()));
    }
    message
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sub(url: &str) -> Subscription {
        serde_json::from_value(serde_json::json!({"id": "s1", "account": "1001",
            "database": "12", "events": ["click"], "url": url, "status": "active"}))
        .unwrap()
    }

    /// Every delivery carries its subscription's URL, and the sender refuses a delivery whose
    /// URL breaks the delivery schema's rule (an RFC 3986 URI starting with `http://` or
    /// `https://`). A URL the API accepted but a delivery cannot carry meant every event for
    /// that subscription ended in quarantine. Found by the `subscription` fuzz target.
    #[test]
    fn a_url_no_delivery_could_carry_is_refused() {
        for url in [
            "https://bücher.example/in",
            "https://hooks.example/ïn",
            "https://hooks.example/a b",
            "https://hooks.example/in?q={x}",
            "https://hooks.example/in|x",
            "https:hooks.example/in",
            "https:/hooks.example/in",
            "HTTPS://hooks.example/in",
            " https://hooks.example/in",
            "https://hooks.example/\tin",
        ] {
            assert!(url::Url::parse(url).is_ok(), "{url} parses as a URL");
            let err = validate_subscription(&sub(url), true).unwrap_err();
            assert_eq!(err.field, "url", "{url}: {err}");
        }
        let err = validate_subscription(&sub("https://bücher.example/in"), true).unwrap_err();
        assert!(
            err.message.contains("\"https://xn--bcher-kva.example/in\""),
            "the message shows the spelling that works: {err}"
        );
        for url in [
            "https://xn--bcher-kva.example/in",
            "https://hooks.example/%C3%AFn?q=%7Bx%7D",
            "https://hooks.example:8443/in?a=1&b=2",
        ] {
            assert!(validate_subscription(&sub(url), true).is_ok(), "{url}");
        }
    }
}
