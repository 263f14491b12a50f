//! Building deliveries.

use hookline_enrich::Enriched;
use hookline_model::{Delivery, DeliveryId, SourcePosition, Subscription};

/// One delivery of `event` to `sub`, its body encoded in the subscription's format.
pub fn build_delivery(
    event: &Enriched,
    sub: &Subscription,
    source: Option<SourcePosition>,
) -> Delivery {
    let body = hookline_payload::encode(sub.format, &event.body);
    Delivery {
        delivery_id: DeliveryId::derive(&event.event_id, &sub.id),
        event_id: event.event_id.clone(),
        event_type: event.kind.as_str().to_owned(),
        subscription_id: sub.id.clone(),
        account: sub.account.clone(),
        database: event.database.clone(),
        collection: event.collection.clone(),
        url: sub.url.clone(),
        format: sub.format,
        content_type: Some(sub.format.content_type().to_owned()),
        // Every encoder writes UTF-8 (form is percent-encoded ASCII).
        body: String::from_utf8(body)
            .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned()),
        ordered: sub.ordered,
        signature: sub.signature,
        created_at: hookline_model::timefmt::now_rfc3339(),
        source,
        replayed_at: None,
    }
}
