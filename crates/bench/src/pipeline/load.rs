//! The load: clicks over [`PROFILES`] profiles in [`DATABASES`] databases (one subscription
//! each, so a click is one delivery), produced in bursts, one at a time, or open-loop at a
//! fixed rate. Each click carries the time it was *meant* to be produced, so a producer that
//! falls behind its schedule shows as latency instead of hiding it (coordinated omission).

use std::time::{Duration, Instant};

use hookline_kafka::producer::Acks;
use hookline_kafka::Producer;
use serde_json::{json, Value};

use super::receiver::STAMP;
use crate::fixtures;
use crate::timing::unix_nanos;

pub const DATABASES: usize = 4;
pub const PROFILES: usize = 64;

/// Database and profile id of the `n`-th profile.
pub fn profile_of(n: usize) -> (String, String) {
    (
        (12 + n % DATABASES).to_string(),
        (1000 + n % PROFILES).to_string(),
    )
}

/// The subscription of database `d` (0-based), pointing at `url`.
pub fn subscription(d: usize, url: &str) -> (String, Value) {
    let id = format!("sub-bench-{d}");
    let v = json!({"id": id, "account": "1001", "database": (12 + d).to_string(),
        "events": ["click"], "url": url, "format": "json", "status": "active",
        "conditions": {"field": "name", "op": "contains", "value": "Mike"},
        "limits": {"max_in_flight": 64, "per_second": 10000}});
    (id, v)
}

/// The profile change that creates the `n`-th profile.
pub fn profile_create(n: usize) -> (String, Value) {
    let (database, profile) = profile_of(n);
    let v = json!({"id": format!("chg-bench-{n}"), "account": "1001", "database": database,
        "profile": profile, "collection": null, "subprofile": null, "action": "create",
        "trigger": "rest", "timestamp": "2026-11-25T10:00:00Z", "parameters": {},
        "fields": fixtures::profile_fields("Mike Jansen", "Utrecht"),
        "interests": ["vip", "newsletter"]});
    (format!("{database}:{profile}"), v)
}

/// The `n`-th click of the run named `id`, meant to be produced at `stamp_ns`.
fn click(id: &str, n: usize, stamp_ns: u64) -> (String, Value) {
    let (database, profile) = profile_of(n);
    let mut v = fixtures::click(id, &database, &profile);
    v[STAMP] = json!(stamp_ns);
    (format!("{database}:{profile}"), v)
}

/// Produces clicks; ids are `<run>-<n>`.
pub struct Load<'a> {
    pub producer: &'a Producer,
    pub topic: &'a str,
}

impl Load<'_> {
    async fn send(
        &self,
        acks: &mut Acks,
        run: &str,
        n: usize,
        stamp_ns: u64,
    ) -> anyhow::Result<()> {
        let (key, v) = click(&format!("{run}-{n}"), n, stamp_ns);
        self.producer
            .send_json(acks, self.topic, key.as_bytes(), &v)
            .await?;
        Ok(())
    }

    /// `count` clicks as fast as the producer takes them; returns when all are acknowledged.
    pub async fn burst(&self, run: &str, count: usize) -> anyhow::Result<()> {
        let mut acks = Acks::new();
        for n in 0..count {
            self.send(&mut acks, run, n, unix_nanos()).await?;
        }
        acks.wait().await?;
        Ok(())
    }

    /// One click, acknowledged.
    pub async fn one(&self, run: &str, n: usize) -> anyhow::Result<()> {
        let mut acks = Acks::new();
        self.send(&mut acks, run, n, unix_nanos()).await?;
        acks.wait().await?;
        Ok(())
    }

    /// Clicks at `rate` per second for `duration`, on schedule whatever the pipeline does;
    /// returns how many were produced.
    pub async fn open_loop(
        &self,
        run: &str,
        rate: f64,
        duration: Duration,
    ) -> anyhow::Result<usize> {
        let total = (rate * duration.as_secs_f64()).round() as usize;
        let start = Instant::now();
        let start_ns = unix_nanos();
        let mut acks = Acks::new();
        let mut n = 0;
        while n < total {
            // Everything due by now goes out; then sleep to the next one's time.
            let due = ((start.elapsed().as_secs_f64() * rate) as usize + 1).min(total);
            while n < due {
                let at_ns = start_ns + (n as f64 / rate * 1e9) as u64;
                self.send(&mut acks, run, n, at_ns).await?;
                n += 1;
            }
            let next = start + Duration::from_secs_f64(n as f64 / rate);
            tokio::time::sleep_until(next.into()).await;
        }
        acks.wait().await?;
        Ok(total)
    }
}
