//! A `subscriptions` record value, as every stage's live table takes it in
//! (`SubscriptionSink::change` in `crates/routing/src/view.rs`, and the admin API's table):
//! parsed, validated and its condition compiled; then routed with as a stage would.

use hookline_model::Subscription;
use hookline_routing::{CompiledSubscription, SubscriptionTable};

use crate::records::check_delivery;
use crate::{ensure, sample, Broken, Verdict};

pub(crate) fn check(value: &[u8]) -> Result<Verdict, Broken> {
    let sub: Subscription = match serde_json::from_slice(value) {
        Ok(sub) => sub,
        Err(e) => return Ok(Verdict::Refused(format!("not a subscription: {e}"))),
    };
    // `--require-https` only ever refuses more.
    let strict = CompiledSubscription::compile(sub.clone(), true);
    let compiled = match CompiledSubscription::compile(sub, false) {
        Ok(compiled) => compiled,
        Err(e) => {
            ensure(strict.is_err(), || {
                format!("accepted with https required, refused without: {e}")
            })?;
            return Ok(Verdict::Refused(e.to_string()));
        }
    };
    read_back(&compiled.sub)?;
    let mut table = SubscriptionTable::new();
    // An account-wide subscription is tried on events of a database of its account.
    let account = compiled.sub.account.clone();
    let database = compiled
        .sub
        .database
        .clone()
        .unwrap_or_else(|| hookline_model::DatabaseId::new("12").expect("a valid id"));
    let collection = compiled.sub.collection.clone();
    table.insert(compiled);
    for event in sample::events(&account, &database, collection.as_ref()) {
        for sub in table.matching(&event, sample::now()) {
            check_delivery(&hookline_routing::build_delivery(&event, &sub.sub, None))?;
        }
    }
    Ok(Verdict::Accepted)
}

/// An accepted subscription is written to the topic (admin API, CLI) and read again by every
/// stage: it must come back the same and be accepted again, or it would silently not route.
fn read_back(sub: &Subscription) -> Result<(), Broken> {
    let bytes = serde_json::to_vec(sub)
        .map_err(|e| Broken(format!("subscription {} does not encode: {e}", sub.id)))?;
    let back: Subscription = serde_json::from_slice(&bytes)
        .map_err(|e| Broken(format!("subscription {} does not read back: {e}", sub.id)))?;
    ensure(&back == sub, || {
        format!("subscription {} reads back differently", sub.id)
    })?;
    CompiledSubscription::compile(back, false)
        .map(drop)
        .map_err(|e| {
            Broken(format!(
                "subscription {} refused when read back: {e}",
                sub.id
            ))
        })
}
