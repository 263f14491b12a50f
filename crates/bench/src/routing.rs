//! Section 3, routing. Every event is offered to the subscriptions of its database and their
//! conditions are evaluated; with 10,000 subscriptions over 1,000 databases that is about ten
//! candidates per event. The question is whether routing matters next to signing.

use std::hint::black_box;
use std::time::{Duration, Instant};

use hookline_model::Enriched;
use hookline_model::Subscription;
use hookline_routing::SubscriptionTable;
use serde_json::{json, Value};
use time::OffsetDateTime;

use crate::fixtures;
use crate::signing::SigningCeiling;
use crate::table::{pct, Row};
use crate::timing::{best_of, ROUNDS};

const SECTION: &str = "routing";
const SUBSCRIPTIONS: usize = 10_000;
const DATABASES: usize = 1_000;

/// The condition mix, one kind per subscription in turn: none, a text leaf, an `all` of a
/// field leaf and an interest, a regular expression.
fn condition(i: usize) -> Value {
    match (i / DATABASES) % 4 {
        0 => Value::Null,
        1 => json!({"field": "name", "op": "contains", "value": "Mike"}),
        2 => json!({"all": [{"field": "city", "op": "equals", "value": "Utrecht"},
                             {"interest": "vip", "op": "has"}]}),
        _ => json!({"field": "email", "op": "regexp", "value": "^[a-z.]+@example\\.(com|org)$"}),
    }
}

fn subscription(i: usize) -> Subscription {
    serde_json::from_value(json!({
        "id": format!("sub-{i:05}"), "account": "1001", "database": (i % DATABASES + 1).to_string(),
        "events": ["click", "open"], "url": format!("https://hooks{}.example.com/in", i % 97),
        "format": "json", "status": "active", "conditions": condition(i)}))
    .expect("bench subscription matches the model")
}

/// Builds the table, then routes clicks (one per database, profiles alternating between a
/// matching and a non-matching one) for `budget`, best of [`ROUNDS`].
pub fn run(budget: Duration, ceiling: &SigningCeiling) -> anyhow::Result<Vec<Row>> {
    let subs: Vec<Subscription> = (0..SUBSCRIPTIONS).map(subscription).collect();
    let mut table = SubscriptionTable::new();
    let started = Instant::now();
    for s in subs {
        table.upsert(s, true)?;
    }
    let upserts = SUBSCRIPTIONS as f64 / started.elapsed().as_secs_f64();

    let events: Vec<Enriched> = (0..DATABASES)
        .map(|d| {
            let (name, city, vip) = match d % 4 {
                0 => ("Mike Jansen", "Utrecht", true),
                1 => ("Jane Doe", "Utrecht", false),
                2 => ("Mike de Vries", "Amsterdam", true),
                _ => ("Anna Smit", "Utrecht", true),
            };
            fixtures::enriched(&(d + 1).to_string(), name, city, vip)
        })
        .collect();

    let (mut routed, mut matched, mut next) = (0u64, 0u64, 0usize);
    let mut route = || {
        let event = &events[next];
        next = (next + 1) % events.len();
        // The stages take the clock per event too (date conditions read it).
        let n = table
            .matching(black_box(event), OffsetDateTime::now_utc())
            .count();
        matched += n as u64;
        routed += 1;
    };
    let rate = best_of(ROUNDS, budget, &mut [&mut route])[0];
    let per_event = matched as f64 / routed as f64;

    Ok(vec![
        Row::num(
            SECTION,
            "table build: upsert + validate + compile condition",
            upserts,
            "subs/s",
        ),
        Row::num(
            SECTION,
            "events routed, 10k subs / 1k databases (~10 candidates)",
            rate,
            "events/s/core",
        )
        .vs(format!(
            "routing costs {} of one signature",
            pct(ceiling.cavage_per_core, rate)
        )),
        Row::num(
            SECTION,
            "matching subscriptions per event",
            per_event,
            "avg",
        ),
    ])
}
