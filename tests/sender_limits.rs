//! Per-subscription sending limits, observed from the receivers' side: a subscription with
//! `limits.per_second` gets its deliveries no faster than its token bucket allows (a burst of
//! one second's worth, then the rate), while a subscription with default limits in the same
//! sender is not slowed by it.
//!
//! Only the sender runs (in-process, through the same `run` its binary calls); the deliveries
//! are written straight to `deliveries`, so the timing seen is the sender's alone.

use std::time::{Duration, Instant};

use hookline_integration_tests::{count, fixtures, key_path, produce, Sender};
use hookline_testkit::{eventually, Broker, Receiver, TestTopics};
use serde_json::{json, Value};

fn subscription(id: &str, url: &str, limits: Option<Value>) -> (String, Value) {
    let fields = limits.map_or_else(|| json!({}), |l| json!({ "limits": l }));
    fixtures::keyed_subscription(id, url, fields)
}

/// A built delivery, as the routing stages write it, keyed by its subscription.
fn delivery(n: usize, sub: &str, url: &str) -> (String, Value) {
    let body = json!({"id": format!("evt-{sub}-{n}"), "type": "click"}).to_string();
    (
        sub.to_owned(),
        json!({"delivery_id": format!("dlv_{sub}_{n}"), "event_id": format!("evt-{sub}-{n}"),
               "event_type": "click", "subscription_id": sub, "account": "1001",
               "database": "12", "url": url, "format": "json", "body": body,
               "created_at": hookline_model::timefmt::now_rfc3339()}),
    )
}

/// Arrival times in seconds after the first arrival, sorted.
fn arrivals(r: &Receiver) -> Vec<f64> {
    let mut at: Vec<Instant> = r.received().iter().map(|p| p.at).collect();
    at.sort();
    at.iter().map(|t| (*t - at[0]).as_secs_f64()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn per_second_limit_spaces_one_subscription_and_not_the_other() {
    const N: usize = 30;
    const RATE: f64 = 5.0;
    let limited = Receiver::start(200).await;
    let free = Receiver::start(200).await;
    let broker = Broker::start();
    let t = TestTopics::create(&broker.bootstrap, 3).await;
    produce(
        &t,
        &t.topics.subscriptions,
        &[
            subscription(
                "sub-limited",
                &limited.url("/limited"),
                Some(json!({"per_second": RATE})),
            ),
            subscription("sub-free", &free.url("/free"), None),
        ],
    )
    .await;
    // The whole burst is on the topic before the sender starts, interleaved, so both
    // subscriptions are offered all their work at once.
    let mut records = Vec::new();
    for n in 0..N {
        records.push(delivery(n, "sub-limited", &limited.url("/limited")));
        records.push(delivery(n, "sub-free", &free.url("/free")));
    }
    produce(&t, &t.topics.deliveries, &records).await;
    let sender = Sender::start(&t, &key_path("rate"), &[]);

    assert!(
        eventually(Duration::from_secs(60), || limited.count() >= N
            && free.count() >= N)
        .await,
        "limited got {} and free got {} of {N}",
        limited.count(),
        free.count()
    );
    let m = sender.metrics.clone();
    assert!(
        eventually(Duration::from_secs(10), || count(
            &m.attempts,
            &["delivered"]
        ) == 2 * N as u64)
        .await,
        "every attempt has a delivered outcome"
    );
    sender.stop(Duration::from_secs(30)).await;
    assert_eq!(limited.count(), N, "no duplicates at the limited endpoint");
    assert_eq!(free.count(), N, "no duplicates at the free endpoint");

    // The bucket holds one second's worth (RATE) and refills at RATE per second. Any stretch
    // of arrivals from the i-th to the j-th therefore holds at most RATE + RATE × its length,
    // measured at the sender. Arrivals lag sends by network and scheduling delays, which a
    // loaded 2-core machine stretches: allow JITTER of it, and one request more. (Without the
    // limit all 30 arrive within a fraction of a second: 30 requests in 0.3 s, where this
    // allows 12.5.)
    const JITTER: f64 = 1.0;
    let a = arrivals(&limited);
    eprintln!("limited arrivals (s): {a:.3?}");
    for i in 0..a.len() {
        for j in i..a.len() {
            let n = (j - i + 1) as f64;
            let allowed = RATE + RATE * (a[j] - a[i] + JITTER) + 1.0;
            assert!(
                n <= allowed,
                "{n} requests within {:.3} s (arrivals {i}..={j}); the bucket allows {allowed:.1}",
                a[j] - a[i]
            );
        }
    }
    // The rate over the whole paced stretch (after the burst of RATE) is the bucket's: N - RATE
    // requests over at least (N - RATE) / RATE seconds less JITTER (the stretch is 5 s here, so
    // that is within 20 %), and not slower than a third of it.
    let paced = a[N - 1] - a[RATE as usize - 1];
    let rate = (N as f64 - RATE) / paced;
    let ideal = (N as f64 - RATE) / RATE;
    assert!(
        paced >= ideal - JITTER && rate >= RATE / 3.0,
        "the limited endpoint's paced {} requests took {paced:.2} s ({rate:.2}/s); the bucket's pace is {ideal:.1} s ({RATE}/s)",
        N - RATE as usize
    );
    // The initial burst goes at once: its RATE requests come faster than the bucket's pace
    // would let them without a burst (RATE - 1 refills, 0.8 s); the pace after it is that.
    let burst = a[RATE as usize - 1];
    assert!(
        burst < (RATE - 1.0) / RATE,
        "the first {RATE} requests are the burst, but took {burst:.3} s: {a:.3?}"
    );

    // The other subscription, on the same sender and the same partitions, is not held to it:
    // its 30 take a fraction of the limited one's paced stretch, and it finishes first.
    let f = arrivals(&free);
    eprintln!("free arrivals (s): {f:.3?}");
    assert!(
        f[N - 1] < paced / 3.0,
        "the default-limit subscription took {:.2} s for {N} requests, the limited one {paced:.2} s after its burst",
        f[N - 1]
    );
    let first = |r: &Receiver| r.received().iter().map(|p| p.at).min().unwrap();
    let last = |r: &Receiver| r.received().iter().map(|p| p.at).max().unwrap();
    assert!(
        last(&free) < last(&limited),
        "the free subscription finished before the limited one"
    );
    // Both are offered their work at once: neither starts after the other has had its burst
    // and a second of paced sending (the limited one's first 2 × RATE arrivals).
    let head_start = first(&free).max(first(&limited)) - first(&free).min(first(&limited));
    assert!(
        head_start.as_secs_f64() < a[2 * RATE as usize - 1],
        "both started together ({head_start:?} apart)"
    );
}
