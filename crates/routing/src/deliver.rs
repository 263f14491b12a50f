//! Building deliveries.

use hookline_model::{Delivery, DeliveryId, Enriched, SourcePosition, Subscription};

/// One delivery of `event` to `sub`, its body encoded in the subscription's format.
pub fn build_delivery(
    event: &Enriched,
    sub: &Subscription,
    source: Option<SourcePosition>,
) -> Delivery {
    let body = hookline_payload::encode(sub.format, &event.body);
    // Every encoder writes UTF-8 (form is percent-encoded ASCII).
    let body = String::from_utf8(body)
        .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned());
    let to_sub = Delivery::to_subscription(
        sub,
        DeliveryId::derive(&event.event_id, &sub.id),
        event.event_id.clone(),
        event.kind,
        body,
    );
    Delivery {
        database: event.database.clone(),
        collection: event.collection.clone(),
        source,
        ..to_sub
    }
}
