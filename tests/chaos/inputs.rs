//! The records the chaos run produces, and the deliveries each must end as.

use std::collections::BTreeSet;

use hookline_model::{DeliveryId, EventId, SubscriptionId};
use serde_json::{json, Value};

/// Database → (account, subscription) of the two tenants; database 14 has no subscription.
pub const TENANTS: [(&str, &str, &str); 2] = [("12", "1001", "healthy"), ("13", "1002", "faulty")];
pub const UNSUBSCRIBED_DB: &str = "14";
/// Profiles per tenant.
pub const PROFILES: usize = 50;

/// What one input record is.
pub enum Input {
    Change { key: String, value: Value },
    Click { key: String, value: Value },
    Hostile(Vec<u8>),
}

/// What the inputs must end as.
#[derive(Default)]
pub struct Expected {
    /// One delivery per valid click and change of a subscribed database.
    pub deliveries: BTreeSet<String>,
    /// Of those, the faulty tenant's (its endpoint ends the run answering 410).
    pub faulty: BTreeSet<String>,
    /// Of the faulty tenant's, the ones whose input record the routing stages had not finished
    /// (committed) when its endpoint began to answer 410: they may be routed after the stages
    /// learnt the subscription disabled, and so be filtered instead. Set by [`Expected::late`].
    pub may_be_filtered: BTreeSet<String>,
    /// Delivery id → the event or change id it is for (diagnosis).
    pub source: std::collections::HashMap<String, String>,
    pub filtered: usize,
    pub hostile: usize,
    pub changes: usize,
    pub clicks: usize,
}

impl Expected {
    fn expect(&mut self, delivery: String, faulty: bool) {
        if faulty {
            self.faulty.insert(delivery.clone());
        }
        self.deliveries.insert(delivery);
    }

    /// Marks the faulty tenant's deliveries of the input records `late` (event and change ids)
    /// as ones the routing stages may have filtered.
    pub fn late<'a>(&mut self, late: impl IntoIterator<Item = &'a str>) {
        let late: BTreeSet<&str> = late.into_iter().collect();
        for d in &self.faulty {
            if self
                .source
                .get(d)
                .is_some_and(|s| late.contains(s.as_str()))
            {
                self.may_be_filtered.insert(d.clone());
            }
        }
    }
}

fn tenant(n: usize) -> (&'static str, &'static str, &'static str) {
    TENANTS[n % TENANTS.len()]
}

fn delivery_id(event: &str, sub: &str) -> String {
    DeliveryId::derive(&EventId(event.into()), &SubscriptionId(sub.into())).0
}

/// The `n`-th input of the run: a realistic mix of clicks (most), profile creates and updates
/// (one in ten), clicks of a database nobody subscribed to (one in twenty) and records that are
/// not JSON at all (one in fifty).
pub fn input(n: usize, expected: &mut Expected) -> Input {
    if n % 50 == 2 {
        expected.hostile += 1;
        return Input::Hostile(format!("{{\"id\": \"evt-{n}\", \"type\": ").into_bytes());
    }
    if n % 20 == 1 {
        expected.filtered += 1;
        let value = click(n, UNSUBSCRIBED_DB, "1003", n % PROFILES);
        return Input::Click {
            key: format!("{UNSUBSCRIBED_DB}:{}", n % PROFILES),
            value,
        };
    }
    let (db, account, sub) = tenant(n / 10);
    if n.is_multiple_of(10) {
        let profile = (n / 20) % PROFILES;
        let id = format!("chg-{n}");
        expected.changes += 1;
        expected.source.insert(delivery_id(&id, sub), id.clone());
        expected.expect(delivery_id(&id, sub), sub == "faulty");
        let action = if n / 20 < PROFILES {
            "create"
        } else {
            "update"
        };
        return Input::Change {
            key: format!("{db}:{profile}"),
            value: json!({"id": id, "account": account, "database": db,
                "profile": profile.to_string(), "action": action, "trigger": "import",
                "timestamp": "2026-11-25T10:00:00Z", "parameters": {},
                "fields": {"name": format!("P{n}"), "email": format!("p{profile}@example.com")},
                "interests": ["vip"]}),
        };
    }
    let profile = n % PROFILES;
    expected.clicks += 1;
    let id = format!("evt-{n}");
    expected.source.insert(delivery_id(&id, sub), id.clone());
    expected.expect(delivery_id(&id, sub), sub == "faulty");
    Input::Click {
        key: format!("{db}:{profile}"),
        value: click(n, db, account, profile),
    }
}

fn click(n: usize, db: &str, account: &str, profile: usize) -> Value {
    json!({"id": format!("evt-{n}"), "type": "click", "account": account, "database": db,
           "profile": profile.to_string(), "timestamp": "2026-11-25T10:15:00Z",
           "ip": "203.0.113.7", "original": "https://shop.example/offer"})
}

/// The two tenants' subscriptions, `healthy` posting to `healthy_url` and `faulty` to
/// `faulty_url`.
pub fn subscriptions(healthy_url: &str, faulty_url: &str) -> Vec<(String, Value)> {
    TENANTS
        .iter()
        .map(|(db, account, id)| {
            let url = if *id == "healthy" {
                healthy_url
            } else {
                faulty_url
            };
            (
                id.to_string(),
                json!({"id": id, "account": account, "database": db,
                       "events": ["click", "create", "update"], "url": url, "format": "json",
                       "status": "active", "limits": {"per_second": 1000, "max_in_flight": 16}}),
            )
        })
        .collect()
}
