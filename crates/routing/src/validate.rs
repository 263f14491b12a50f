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
