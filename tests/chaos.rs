//! Chaos: tracking events and profile changes flow through every stage, several instances per
//! consumer group, while a driver kills instances with SIGKILL and restarts them, adds and
//! removes instances (rebalances), restarts the broker (long form) and switches one tenant's
//! endpoint between healthy, 500, silence, resets, drip-fed answers, endless bodies and 410.
//! At the end every input record is accounted for: each delivery it causes was received or
//! dead-lettered with a reason, each hostile record quarantined; nothing is lost.
//!
//! The short form runs in `make test`; `make chaos` runs the long form
//! (`HOOKLINE_CHAOS_EVENTS=20000 HOOKLINE_CHAOS_BROKER_RESTARTS=1`) and prints the table that
//! `docs/reliability.md` records.

#[path = "chaos/fleet.rs"]
mod fleet;
#[path = "chaos/inputs.rs"]
mod inputs;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::{Duration, Instant};

use hookline_integration_tests::{produce, produce_raw, read_to_end};
use hookline_testkit::{Broker, Fault, FaultyEndpoint, Receiver, TestTopics};
use rand::{Rng, SeedableRng};
use rdkafka::message::Message;

use fleet::{Fleet, KINDS};
use inputs::{Expected, Input};

/// The faulty endpoint's phases, one per driver step, in this order; the last (410) disables
/// the subscription, so what is still due for it is dead-lettered.
const PHASES: [Fault; 9] = [
    Fault::Healthy,
    Fault::Status(500),
    Fault::Silent,
    Fault::Reset,
    Fault::Healthy,
    Fault::Drip,
    Fault::Endless,
    Fault::Healthy,
    Fault::Status(410),
];

struct Plan {
    events: usize,
    /// Instances per consumer group; with 2 or more the driver also scales up and down.
    instances: usize,
    broker_restarts: usize,
    seed: u64,
}

/// The long form's plan, from `HOOKLINE_CHAOS_*` (`make chaos` sets them).
fn plan_from_env() -> Plan {
    let var = |k: &str, d: u64| {
        std::env::var(k)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(d)
    };
    Plan {
        events: var("HOOKLINE_CHAOS_EVENTS", 20_000) as usize,
        instances: var("HOOKLINE_CHAOS_INSTANCES", 2).max(1) as usize,
        broker_restarts: var("HOOKLINE_CHAOS_BROKER_RESTARTS", 1) as usize,
        seed: var("HOOKLINE_CHAOS_SEED", 7),
    }
}

/// Faults injected, by kind.
type Faults = BTreeMap<&'static str, usize>;

/// The short form, in `make test`: one instance per group, killed and restarted, and every
/// endpoint fault.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_record_is_accounted_for_under_kills_and_endpoint_faults() {
    let plan = Plan {
        events: 1_000,
        instances: 1,
        broker_restarts: 0,
        seed: 7,
    };
    run(plan).await;
}

/// The long form (`make chaos`): more records, two instances per group with scale-up and
/// scale-down, broker restarts. On the local broker it finds partitions left with killed
/// members for minutes (`docs/reliability.md`), hence not in `make test`.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "run by make chaos; see docs/reliability.md for what it finds on the local broker"]
async fn every_record_is_accounted_for_under_chaos() {
    run(plan_from_env()).await;
}

async fn run(plan: Plan) {
    let started = Instant::now();
    let mut broker = Broker::start();
    let t = TestTopics::create(&broker.bootstrap, 3).await;
    let healthy = Receiver::start(200).await;
    let faulty = FaultyEndpoint::start().await;
    let subs = inputs::subscriptions(&healthy.url("/hooks"), &faulty.url("/hooks"));
    produce(&t, &t.topics.subscriptions, &subs).await;

    let dir = std::env::temp_dir().join(format!("hookline-chaos-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let mut fleet = Fleet::new(&t, dir.clone());
    fleet.complete(plan.instances);
    let driving = Instant::now();
    let (mut expected, faults, before_410) =
        drive(&plan, &t, &faulty, &mut fleet, &mut broker).await;
    let drive_time = driving.elapsed();
    expected.late(late_records(&t, &before_410).iter().map(String::as_str));

    // Settle: every instance up, then wait until each delivery has ended somewhere.
    fleet.complete(plan.instances);
    let deadline = Instant::now() + Duration::from_secs(240 + plan.events as u64 / 50);
    let mut ended = Ended::default();
    while Instant::now() < deadline {
        ended = Ended::read(&t, &healthy, &faulty, &expected);
        if expected.deliveries.iter().all(|d| ended.contains(d)) {
            break;
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
    fleet.sample_all();
    report(&plan, &expected, &ended, &faults, &fleet, started.elapsed());
    verify(&t, &expected, &ended);
    verify_bounds(&expected, &ended, &faults, &fleet, drive_time);
    drop(fleet);
    let _ = std::fs::remove_dir_all(&dir);
}

/// The routing stages' committed offsets per input topic and partition, taken just before the
/// faulty endpoint begins to answer 410: records before them were routed while the subscription
/// was still active.
type Committed = Vec<(String, Vec<(i64, i64)>)>;

/// Produces the inputs phase by phase, switching the faulty endpoint and disturbing the fleet
/// at each step; returns what the inputs must end as, the faults injected and the routing
/// stages' progress when the faulty endpoint began to answer 410.
async fn drive(
    plan: &Plan,
    t: &TestTopics,
    faulty: &FaultyEndpoint,
    fleet: &mut Fleet,
    broker: &mut Broker,
) -> (Expected, Faults, Committed) {
    let mut rng = rand::rngs::StdRng::seed_from_u64(plan.seed);
    let mut expected = Expected::default();
    let mut faults = Faults::new();
    let per_step = plan.events.div_ceil(PHASES.len());
    let mut before_410 = Committed::new();
    for (step, phase) in PHASES.iter().enumerate() {
        if *phase == Fault::Status(410) {
            before_410 = routing_progress(t);
        }
        faulty.set(*phase);
        *faults.entry(fault_name(*phase)).or_default() += 1;
        let range = step * per_step..((step + 1) * per_step).min(plan.events);
        produce_inputs(t, range, &mut expected).await;
        disturb(fleet, broker, plan, step, &mut rng, &mut faults).await;
        tokio::time::sleep(Duration::from_secs(3)).await;
    }
    (expected, faults, before_410)
}

/// The routing stages' committed offsets on their input topics.
fn routing_progress(t: &TestTopics) -> Committed {
    [
        ("tracking", &t.topics.tracking),
        ("profiles", &t.topics.profile_changes),
    ]
    .into_iter()
    .map(|(group, topic)| {
        let g = format!("{}{group}", t.prefix);
        let at = hookline_integration_tests::committed_by_partition(t, &g, topic);
        assert!(
            at.iter().all(|(c, _)| *c >= 0),
            "{group}: committed offsets unreadable"
        );
        (topic.clone(), at)
    })
    .collect()
}

/// The ids of the input records at or after `committed`: the ones the routing stages may have
/// handled after the faulty subscription was disabled.
fn late_records(t: &TestTopics, committed: &Committed) -> Vec<String> {
    let mut late = Vec::new();
    for (topic, at) in committed {
        for m in read_to_end(t, topic) {
            let from = at.get(m.partition() as usize).map_or(0, |(c, _)| *c);
            let v = m
                .payload()
                .and_then(|p| serde_json::from_slice::<serde_json::Value>(p).ok());
            if let (true, Some(id)) = (
                m.offset() >= from,
                v.as_ref().and_then(|v| v["id"].as_str()),
            ) {
                late.push(id.to_owned());
            }
        }
    }
    late
}

/// Nothing lost, every hostile record quarantined, nothing delivered that was not due, every
/// dead letter with its reason.
fn verify(t: &TestTopics, expected: &Expected, ended: &Ended) {
    let lost: Vec<&String> = expected
        .deliveries
        .iter()
        .filter(|d| !ended.contains(d))
        .collect();
    if !lost.is_empty() {
        diagnose(t, &lost, expected);
    }
    assert!(
        lost.is_empty(),
        "{} of {} deliveries lost, e.g. {:?}",
        lost.len(),
        expected.deliveries.len(),
        &lost[..lost.len().min(10)]
    );
    assert_eq!(
        ended.quarantined, expected.hostile,
        "every hostile record is quarantined (counted once per input record)"
    );
    let unexpected: Vec<&String> = ended
        .delivered
        .keys()
        .filter(|d| !expected.deliveries.contains(*d))
        .collect();
    assert!(
        unexpected.is_empty(),
        "deliveries nobody asked for (filtered events delivered?): {unexpected:?}"
    );
    for (id, reason) in &ended.dead {
        assert!(!reason.is_empty(), "{id}: a dead letter carries its reason");
    }
}

/// The stages' peak memory stays far below their design bounds (a join stage holds no queue;
/// the sender's in-memory bodies are bounded per loop, `MEMORY_BUDGET_KIB`).
const MAX_RSS_MIB: [(&str, u64); 3] = [
    ("hookline-profiles", 256),
    ("hookline-tracking", 256),
    ("hookline-sender", 512),
];
/// The sender's in-flight slots summed over both endpoints (`max_in_flight` 16 each).
const IN_FLIGHT_SLOTS: f64 = 32.0;
/// What a member repeats after a crash besides its in-flight attempts: the work finished since
/// its last commit, at most the 1 s commit interval plus the time to store offsets (100 ms).
const UNCOMMITTED: f64 = 1.1;

/// Memory stays bounded, and the healthy tenant's repeated POSTs stay within the at-least-once
/// window of `docs/reliability.md`: per disturbance (kill, scale-up or -down, broker restart)
/// at most the in-flight slots plus the uncommitted work at the run's delivery rate. (The faulty
/// tenant's repeats are not counted: an answer that arrives after the request timeout, as the
/// drip-fed and endless phases send, is a 2xx the sender never saw.)
fn verify_bounds(
    expected: &Expected,
    ended: &Ended,
    faults: &Faults,
    fleet: &Fleet,
    drive_time: Duration,
) {
    for (kind, max) in MAX_RSS_MIB {
        let peak = fleet.peak_rss_kib.get(kind).copied().unwrap_or(0) / 1024;
        assert!(peak <= max, "{kind}: peak RSS {peak} MiB, bound {max} MiB");
    }
    let healthy: Vec<&String> = expected
        .deliveries
        .iter()
        .filter(|d| !expected.faulty.contains(*d))
        .collect();
    let posts: usize = healthy.iter().filter_map(|d| ended.delivered.get(*d)).sum();
    let repeats = posts.saturating_sub(healthy.len()) as f64;
    let disturbances: usize = ["SIGKILL", "scale-up", "scale-down", "broker restart"]
        .iter()
        .filter_map(|k| faults.get(k))
        .sum();
    let rate = healthy.len() as f64 / drive_time.as_secs_f64().max(1.0);
    let window = disturbances as f64 * (IN_FLIGHT_SLOTS + UNCOMMITTED * rate);
    println!("healthy tenant: {repeats} repeated POSTs; window {window:.0} ({disturbances} disturbances at {rate:.0}/s)");
    assert!(
        repeats <= window,
        "the healthy tenant's repeats ({repeats}) exceed the at-least-once window ({window:.0})"
    );
}

async fn produce_inputs(t: &TestTopics, range: std::ops::Range<usize>, expected: &mut Expected) {
    let (mut changes, mut clicks, mut hostile) = (Vec::new(), Vec::new(), Vec::new());
    for n in range {
        match inputs::input(n, expected) {
            Input::Change { key, value } => changes.push((key, value)),
            Input::Click { key, value } => clicks.push((key, value)),
            Input::Hostile(bytes) => hostile.push(bytes),
        }
    }
    produce(t, &t.topics.profile_changes, &changes).await;
    produce(t, &t.topics.tracking, &clicks).await;
    let raw: Vec<hookline_integration_tests::RawRecord<'_>> = hostile
        .iter()
        .map(|b| (Some(&b"12:0"[..]), Some(b.as_slice())))
        .collect();
    produce_raw(t, &t.topics.tracking, &raw).await;
}

/// One step's disturbance: a kill and restart of a random instance, a scale-up or scale-down
/// now and then, and the broker restarts of the long form.
async fn disturb(
    fleet: &mut Fleet,
    broker: &mut Broker,
    plan: &Plan,
    step: usize,
    rng: &mut rand::rngs::StdRng,
    faults: &mut Faults,
) {
    let running = fleet.running();
    let (kind, n) = running[rng.random_range(0..running.len())];
    if fleet.kill(kind, n) {
        *faults.entry("SIGKILL").or_default() += 1;
        if rng.random_bool(0.5) {
            tokio::time::sleep(Duration::from_millis(rng.random_range(100..1500))).await;
        }
        fleet.start(kind, n);
    }
    let extra = plan.instances; // the instance a scale-up adds
    match step {
        2 if plan.instances > 1 => {
            for kind in KINDS {
                fleet.start(kind, extra);
            }
            *faults.entry("scale-up").or_default() += 3;
        }
        5 if plan.instances > 1 => {
            for kind in KINDS {
                fleet.stop(kind, extra);
            }
            *faults.entry("scale-down").or_default() += 3;
        }
        _ => {}
    }
    if step >= 3 && step < 3 + plan.broker_restarts {
        broker.kill();
        tokio::time::sleep(Duration::from_secs(2)).await;
        broker.restart();
        *faults.entry("broker restart").or_default() += 1;
    }
}

/// Where lost deliveries were last seen: routed or not, their last outcome, retry records.
fn diagnose(t: &TestTopics, lost: &[&String], expected: &Expected) {
    let sources: Vec<&String> = lost
        .iter()
        .filter_map(|d| expected.source.get(*d))
        .collect();
    println!("lost sources, e.g. {:?}", &sources[..sources.len().min(20)]);
    for (group, topic) in [
        ("tracking", &t.topics.tracking),
        ("profiles", &t.topics.profile_changes),
    ] {
        let g = format!("{}{group}", t.prefix);
        let at = hookline_integration_tests::committed_and_end(t, &g, topic);
        println!("{group}: committed, end {at:?}");
    }
    let lost: BTreeSet<&str> = lost.iter().map(|s| s.as_str()).collect();
    let ids = |topic: &str, path: &[&str]| -> Vec<(String, serde_json::Value)> {
        read_to_end(t, topic)
            .iter()
            .filter_map(|m| serde_json::from_slice::<serde_json::Value>(m.payload()?).ok())
            .filter_map(|v| {
                let id = path.iter().find_map(|p| v.pointer(p)?.as_str())?.to_owned();
                lost.contains(id.as_str()).then_some((id, v))
            })
            .collect()
    };
    let mut routed: BTreeMap<String, String> = BTreeMap::new();
    for (id, v) in ids(&t.topics.deliveries, &["/delivery_id"]) {
        routed.insert(id, v["subscription_id"].as_str().unwrap_or("?").to_owned());
    }
    let mut by_sub: BTreeMap<&str, usize> = BTreeMap::new();
    for sub in routed.values() {
        *by_sub.entry(sub.as_str()).or_default() += 1;
    }
    let mut last: BTreeMap<String, String> = BTreeMap::new();
    for (id, v) in ids(&t.topics.outcomes, &["/delivery_id"]) {
        last.insert(id, v["result"].as_str().unwrap_or("?").to_owned());
    }
    let mut retried: BTreeSet<String> = BTreeSet::new();
    for (topic, _) in t.topics.retry_tiers() {
        retried.extend(
            ids(&topic, &["/delivery/delivery_id"])
                .into_iter()
                .map(|(i, _)| i),
        );
    }
    let mut by_last: BTreeMap<&str, usize> = BTreeMap::new();
    for id in &lost {
        *by_last
            .entry(last.get(*id).map_or("no outcome", |s| s.as_str()))
            .or_default() += 1;
    }
    println!(
        "lost: {} routed to deliveries {by_sub:?}, {} with retry records; last outcome: {by_last:?}",
        routed.len(),
        retried.len()
    );
}

fn fault_name(f: Fault) -> &'static str {
    match f {
        Fault::Healthy => "endpoint healthy",
        Fault::Status(410) => "endpoint 410",
        Fault::Status(_) => "endpoint 500",
        Fault::Silent => "endpoint silent (timeouts)",
        Fault::Reset => "endpoint resets",
        Fault::Drip => "endpoint drip-fed",
        Fault::Endless => "endpoint endless body",
    }
}

/// Where the deliveries ended.
#[derive(Default)]
struct Ended {
    /// Delivery id → POSTs received and answered 2xx.
    delivered: HashMap<String, usize>,
    /// Delivery id → dead-letter reason (the last one).
    dead: HashMap<String, String>,
    quarantined: usize,
    /// POSTs received by the healthy tenant's endpoint.
    healthy_posts: usize,
    /// Deliveries the routing stages did not make because the subscription was disabled.
    filtered_disabled: BTreeSet<String>,
}

impl Ended {
    fn read(t: &TestTopics, healthy: &Receiver, faulty: &FaultyEndpoint, x: &Expected) -> Self {
        let mut e = Ended::default();
        let routed: BTreeSet<String> = read_to_end(t, &t.topics.deliveries)
            .iter()
            .filter_map(|m| serde_json::from_slice::<serde_json::Value>(m.payload()?).ok())
            .filter_map(|v| Some(v["delivery_id"].as_str()?.to_owned()))
            .collect();
        e.filtered_disabled = x.may_be_filtered.difference(&routed).cloned().collect();
        for p in healthy.received() {
            e.healthy_posts += 1;
            if let Some(id) = p.header("x-hookline-delivery") {
                *e.delivered.entry(id.to_owned()).or_default() += 1;
            }
        }
        for s in faulty.seen() {
            // Drip-fed and endless answers are 200s too: the status line is the answer.
            let ok = matches!(s.answer, Fault::Healthy | Fault::Drip | Fault::Endless);
            if let (Some(id), true) = (s.delivery, ok) {
                *e.delivered.entry(id).or_default() += 1;
            }
        }
        for m in read_to_end(t, &t.topics.dead_letter) {
            let v: serde_json::Value = serde_json::from_slice(m.payload().unwrap()).unwrap();
            let id = v["delivery"]["delivery_id"]
                .as_str()
                .or(v["delivery_id"].as_str())
                .unwrap_or_default()
                .to_owned();
            e.dead
                .insert(id, v["reason"].as_str().unwrap_or_default().to_owned());
        }
        // Distinct input records: a record re-read after a kill is quarantined again.
        let sources: BTreeSet<(String, i32, i64)> = read_to_end(t, &t.topics.quarantine)
            .iter()
            .filter_map(|m| serde_json::from_slice::<serde_json::Value>(m.payload()?).ok())
            .map(|v| {
                let topic = v["source_topic"].as_str().unwrap_or_default().to_owned();
                (
                    topic,
                    v["partition"].as_i64().unwrap_or(-1) as i32,
                    v["offset"].as_i64().unwrap_or(-1),
                )
            })
            .collect();
        e.quarantined = sources.len();
        e
    }

    fn contains(&self, delivery: &str) -> bool {
        self.delivered.contains_key(delivery)
            || self.dead.contains_key(delivery)
            || self.filtered_disabled.contains(delivery)
    }
}

fn report(
    plan: &Plan,
    expected: &Expected,
    ended: &Ended,
    faults: &Faults,
    fleet: &Fleet,
    took: Duration,
) {
    let inputs = plan.events;
    let delivered: BTreeSet<&String> = expected
        .deliveries
        .iter()
        .filter(|d| ended.delivered.contains_key(*d))
        .collect();
    let dead_only: Vec<&String> = expected
        .deliveries
        .iter()
        .filter(|d| !ended.delivered.contains_key(*d) && ended.dead.contains_key(*d))
        .collect();
    let mut by_reason: BTreeMap<&str, usize> = BTreeMap::new();
    for d in &dead_only {
        *by_reason.entry(ended.dead[*d].as_str()).or_default() += 1;
    }
    let filtered_disabled = ended.filtered_disabled.len();
    let lost = expected.deliveries.len() - delivered.len() - dead_only.len() - filtered_disabled;
    let posts: usize = ended.delivered.values().sum();
    println!("\nchaos: {} instance(s) per group", plan.instances);
    println!("chaos: {inputs} input records ({} clicks, {} profile changes, {} filtered, {} hostile), seed {}, {:.0} s",
        expected.clicks, expected.changes, expected.filtered, expected.hostile, plan.seed, took.as_secs_f64());
    println!("| outcome | count |\n|---|---|");
    println!("| deliveries expected | {} |", expected.deliveries.len());
    println!(
        "| delivered (≥ 1 POST answered 2xx) | {} |",
        delivered.len()
    );
    for (reason, n) in &by_reason {
        println!("| dead-lettered: {reason} | {n} |");
    }
    println!("| filtered (no subscription) | {} |", expected.filtered);
    println!("| filtered (subscription disabled by its 410) | {filtered_disabled} |");
    println!("| quarantined | {} |", ended.quarantined);
    println!("| **lost** | **{lost}** |");
    println!(
        "| repeated POSTs (answered 2xx more than once) | {} |",
        posts - ended.delivered.len()
    );
    println!("| healthy endpoint POSTs | {} |", ended.healthy_posts);
    println!("\n| fault injected | times |\n|---|---|");
    for (kind, n) in faults {
        println!("| {kind} | {n} |");
    }
    println!("\n| stage | peak RSS (MiB) |\n|---|---|");
    for (kind, kib) in &fleet.peak_rss_kib {
        println!("| {kind} | {:.1} |", *kib as f64 / 1024.0);
    }
}
