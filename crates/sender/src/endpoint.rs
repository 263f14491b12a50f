//! Per-endpoint admission, shared by every loop of an instance (`deliveries` and the retry
//! tiers), so an endpoint's limits hold across them.
//!
//! Each endpoint (one subscription) has a queue of deliveries in hand, bounded in bytes and in
//! records, its `limits.max_in_flight` request slots and its `limits.per_second` token bucket.
//! A delivery offered to an endpoint is either taken — it waits in memory for its rate token
//! and a slot, for at most `max_wait` as far as can be told — or deferred: the queue is full,
//! the next token is not due soon enough, or the endpoint answers so slowly that the queue
//! would take longer than `max_wait` to drain. A deferred delivery goes to the retry path
//! (see [`crate::tiers`]) with the estimated wait, and the partition it came from moves on: one
//! endpoint's backlog never holds up another's deliveries.
//!
//! The queue is bounded first by time and then by memory. A fast endpoint's burst waits in
//! memory (the defaults allow 10,000 records and 8 MiB per endpoint), since moving it to the
//! retry path costs a write and a read per delivery; what the endpoint cannot send within
//! `max_wait` goes there. How fast an endpoint drains is its requests' moving average
//! duration, or, while requests are out and none has answered for longer than that, the time
//! since the last answer: an endpoint that goes quiet stops taking deliveries within
//! `max_wait` instead of collecting its whole memory bound behind requests that time out.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use hookline_model::SubscriptionId;
use hookline_telemetry::metrics::IntGauge;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::rate::RateLimiter;

/// Bounds of every endpoint's queue.
#[derive(Debug, Clone, Copy)]
pub struct QueueBounds {
    /// Bytes of delivery bodies in hand per endpoint.
    pub bytes: usize,
    /// Deliveries in hand per endpoint.
    pub records: usize,
    /// The longest a delivery may be expected to wait in memory before it is sent.
    pub max_wait: Duration,
    /// Most requests per second to one endpoint, whatever its subscription asks for.
    pub rate_cap: Option<f64>,
}

impl Default for QueueBounds {
    fn default() -> Self {
        Self {
            bytes: 8 << 20,
            records: 10_000,
            max_wait: Duration::from_secs(10),
            rate_cap: Some(1000.0),
        }
    }
}

/// The shortest wait of a deferred delivery: a full queue of a fast endpoint has room again
/// soon, but not at once.
const MIN_DEFER: Duration = Duration::from_millis(100);

/// An endpoint's limits as its subscription states them.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Limits {
    pub max_in_flight: u32,
    pub per_second: f64,
}

/// Why a delivery was not taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeferReason {
    QueueFull,
    RateLimited,
    SlowEndpoint,
}

impl DeferReason {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::QueueFull => "queue-full",
            Self::RateLimited => "rate-limited",
            Self::SlowEndpoint => "slow-endpoint",
        }
    }
}

/// The answer to an offer.
#[derive(Debug)]
pub enum Admission {
    /// Taken: wait `ticket.rate_wait`, then take a slot.
    Take(Ticket),
    /// Not taken: try again after about `wait`.
    Defer { wait: Duration, reason: DeferReason },
}

struct Limiters {
    limits: Limits,
    slots: Arc<Semaphore>,
    rate: Arc<RateLimiter>,
}

/// One endpoint's queue and limits.
pub struct Endpoint {
    limiters: Mutex<Limiters>,
    queued: AtomicUsize,
    queued_bytes: AtomicUsize,
    /// Moving average of request durations, in microseconds (0: none seen yet).
    latency_us: AtomicU64,
    /// Requests holding a slot, and since when none of them has answered (the last answer, or
    /// the moment requests went out after none were).
    in_flight: Mutex<(u32, Option<Instant>)>,
    /// When the next deferred delivery is due back: deferrals are spread over the endpoint's
    /// pace, so a backlog comes back as fast as the endpoint can take it, not all at once.
    next_slot: Mutex<Option<Instant>>,
}

impl Endpoint {
    fn new(limits: Limits) -> Self {
        Self {
            limiters: Mutex::new(Limiters::new(limits)),
            queued: AtomicUsize::new(0),
            queued_bytes: AtomicUsize::new(0),
            latency_us: AtomicU64::new(0),
            in_flight: Mutex::new((0, None)),
            next_slot: Mutex::new(None),
        }
    }

    /// A deferred delivery's wait: the endpoint's next free slot after `estimate`, one
    /// `interval` after the previous deferral's.
    fn defer_slot(&self, now: Instant, estimate: Duration, interval: Duration) -> Duration {
        let mut next = self
            .next_slot
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let at = next.map_or(now + estimate, |n| n.max(now + estimate));
        *next = Some(at + interval);
        at - now
    }

    /// Records how long a request took, for estimating how fast the queue drains.
    pub fn observe_latency(&self, d: Duration) {
        let new = d.as_micros().min(u64::MAX as u128) as u64;
        let old = self.latency_us.load(Ordering::Relaxed);
        let avg = if old == 0 { new } else { (old * 7 + new) / 8 };
        self.latency_us.store(avg, Ordering::Relaxed);
        self.in_flight_lock().1 = Some(Instant::now());
    }

    fn in_flight_lock(&self) -> std::sync::MutexGuard<'_, (u32, Option<Instant>)> {
        self.in_flight
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// How long a request takes: the moving average, or longer while requests are out and
    /// nothing has answered for longer than that.
    fn latency(&self, now: Instant) -> Duration {
        let avg = Duration::from_micros(self.latency_us.load(Ordering::Relaxed));
        let quiet = match *self.in_flight_lock() {
            (n, Some(since)) if n > 0 => now.saturating_duration_since(since),
            _ => Duration::ZERO,
        };
        avg.max(quiet)
    }

    fn drain_estimate(&self, now: Instant, queued: usize, max_in_flight: u32) -> Duration {
        self.latency(now)
            .mul_f64(queued as f64 / f64::from(max_in_flight.max(1)))
    }
}

impl Limiters {
    fn new(limits: Limits) -> Self {
        Self {
            limits,
            slots: Arc::new(Semaphore::new(limits.max_in_flight.max(1) as usize)),
            rate: Arc::new(RateLimiter::new(limits.per_second)),
        }
    }
}

/// A taken delivery's place in its endpoint's queue; leaves the queue when dropped.
pub struct Ticket {
    endpoint: Arc<Endpoint>,
    bytes: usize,
    slots: Arc<Semaphore>,
    /// Every endpoint's queued deliveries together (the `queued` gauge).
    total: IntGauge,
    /// How long to wait for the rate token reserved at admission.
    pub rate_wait: Duration,
}

impl std::fmt::Debug for Ticket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Ticket({} bytes, {:?})", self.bytes, self.rate_wait)
    }
}

impl Ticket {
    /// Waits for one of the endpoint's request slots.
    pub async fn slot(&self) -> Option<Slot> {
        let permit = self.slots.clone().acquire_owned().await.ok()?;
        let mut f = self.endpoint.in_flight_lock();
        if f.0 == 0 {
            f.1 = Some(Instant::now());
        }
        f.0 += 1;
        drop(f);
        Some(Slot {
            endpoint: self.endpoint.clone(),
            _permit: permit,
        })
    }

    pub fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        self.endpoint.queued.fetch_sub(1, Ordering::AcqRel);
        self.endpoint
            .queued_bytes
            .fetch_sub(self.bytes, Ordering::AcqRel);
        self.total.dec();
    }
}

/// A request slot of an endpoint, held from before the request until its outcome is written.
pub struct Slot {
    endpoint: Arc<Endpoint>,
    _permit: OwnedSemaphorePermit,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut f = self.endpoint.in_flight_lock();
        f.0 = f.0.saturating_sub(1);
    }
}

/// Every endpoint of an instance.
pub struct Endpoints {
    bounds: QueueBounds,
    map: Mutex<HashMap<SubscriptionId, Arc<Endpoint>>>,
    /// Deliveries taken and not yet finished, over every endpoint.
    total: IntGauge,
}

impl Endpoints {
    pub fn new(bounds: QueueBounds) -> Self {
        Self {
            bounds,
            map: Mutex::new(HashMap::new()),
            total: IntGauge::new("queued", "unexported").expect("valid gauge"),
        }
    }

    /// Counts the deliveries held in every endpoint's queue on `gauge`
    /// (`hookline_sender_queued_deliveries`).
    pub fn counted_on(mut self, gauge: IntGauge) -> Self {
        self.total = gauge;
        self
    }

    pub fn bounds(&self) -> QueueBounds {
        self.bounds
    }

    fn get(&self, id: &SubscriptionId, mut limits: Limits) -> (Arc<Endpoint>, Limits) {
        if let Some(cap) = self.bounds.rate_cap {
            limits.per_second = limits.per_second.min(cap);
        }
        let mut map = self.map.lock().unwrap_or_else(PoisonError::into_inner);
        let ep = map
            .entry(id.clone())
            .or_insert_with(|| Arc::new(Endpoint::new(limits)))
            .clone();
        drop(map);
        let mut l = ep.limiters.lock().unwrap_or_else(PoisonError::into_inner);
        if l.limits != limits {
            // Changed limits take effect for what is admitted from now on.
            *l = Limiters::new(limits);
        }
        (ep.clone(), l.limits)
    }

    /// Whether the endpoint has drained to half its bounds (a held subscription may go on).
    pub fn has_room(&self, id: &SubscriptionId) -> bool {
        let map = self.map.lock().unwrap_or_else(PoisonError::into_inner);
        let Some(ep) = map.get(id).cloned() else {
            return true;
        };
        drop(map);
        let l = ep.limiters.lock().unwrap_or_else(PoisonError::into_inner);
        let queued = ep.queued.load(Ordering::Acquire);
        let now = Instant::now();
        queued < self.bounds.records / 2
            && ep.queued_bytes.load(Ordering::Acquire) < self.bounds.bytes / 2
            && l.rate.peek(now) < self.bounds.max_wait / 2
            && ep.drain_estimate(now, queued, l.limits.max_in_flight) < self.bounds.max_wait / 2
    }

    /// Offers a delivery of `bytes` to the subscription's endpoint.
    pub fn offer(&self, id: &SubscriptionId, limits: Limits, bytes: usize) -> Admission {
        let (ep, limits) = self.get(id, limits);
        let now = Instant::now();
        let l = ep.limiters.lock().unwrap_or_else(PoisonError::into_inner);
        let queued = ep.queued.load(Ordering::Acquire);
        let queued_bytes = ep.queued_bytes.load(Ordering::Acquire);
        let rate_wait = l.rate.peek(now);
        let drain = ep.drain_estimate(now, queued, limits.max_in_flight);
        let estimate = rate_wait.max(drain);
        let full = queued > 0
            && (queued >= self.bounds.records || queued_bytes + bytes > self.bounds.bytes);
        let reason = if full {
            Some(DeferReason::QueueFull)
        } else if rate_wait > self.bounds.max_wait {
            Some(DeferReason::RateLimited)
        } else if drain > self.bounds.max_wait {
            Some(DeferReason::SlowEndpoint)
        } else {
            None
        };
        if let Some(reason) = reason {
            let per_record = Duration::from_secs_f64(1.0 / l.rate.per_second())
                .max(ep.drain_estimate(now, 1, limits.max_in_flight));
            drop(l);
            let wait = ep.defer_slot(now, estimate.max(MIN_DEFER), per_record);
            return Admission::Defer { wait, reason };
        }
        let rate_wait = l.rate.reserve(now);
        ep.queued.fetch_add(1, Ordering::AcqRel);
        ep.queued_bytes.fetch_add(bytes, Ordering::AcqRel);
        let slots = l.slots.clone();
        drop(l);
        self.total.inc();
        Admission::Take(Ticket {
            endpoint: ep,
            bytes,
            slots,
            total: self.total.clone(),
            rate_wait,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(s: &str) -> SubscriptionId {
        SubscriptionId(s.into())
    }

    fn bounds() -> QueueBounds {
        QueueBounds {
            bytes: 1000,
            records: 10,
            max_wait: Duration::from_secs(10),
            rate_cap: None,
        }
    }

    const FAST: Limits = Limits {
        max_in_flight: 4,
        per_second: 1000.0,
    };

    #[test]
    fn the_queued_gauge_counts_taken_deliveries_until_their_tickets_go() {
        let gauge = IntGauge::new("q", "test").unwrap();
        let e = Endpoints::new(bounds()).counted_on(gauge.clone());
        let a = e.offer(&id("a"), FAST, 10);
        let b = e.offer(&id("b"), FAST, 10);
        assert_eq!(gauge.get(), 2);
        drop(a);
        assert_eq!(gauge.get(), 1);
        drop(b);
        assert_eq!(gauge.get(), 0);
    }

    #[test]
    fn a_full_queue_defers_and_frees_its_room_when_tickets_go() {
        let e = Endpoints::new(bounds());
        let a = e.offer(&id("a"), FAST, 600);
        assert!(matches!(a, Admission::Take(_)));
        let b = e.offer(&id("a"), FAST, 600);
        assert!(
            matches!(
                b,
                Admission::Defer {
                    reason: DeferReason::QueueFull,
                    ..
                }
            ),
            "{b:?}"
        );
        // Another endpoint is not affected.
        assert!(matches!(e.offer(&id("b"), FAST, 600), Admission::Take(_)));
        drop(a);
        assert!(matches!(e.offer(&id("a"), FAST, 600), Admission::Take(_)));
    }

    #[test]
    fn the_rate_cap_holds_whatever_the_subscription_asks() {
        let e = Endpoints::new(QueueBounds {
            records: 1000,
            bytes: 1 << 20,
            max_wait: Duration::from_secs(1),
            rate_cap: Some(10.0),
        });
        let asks = Limits {
            max_in_flight: 100,
            per_second: 1e6,
        };
        let taken = (0..100)
            .take_while(|_| matches!(e.offer(&id("a"), asks, 1), Admission::Take(_)))
            .count();
        // A burst of 10, then 10 a second for the one second of allowed wait.
        assert!((19..=21).contains(&taken), "{taken} taken at a cap of 10/s");
    }

    #[test]
    fn a_single_oversized_delivery_is_still_taken_into_an_empty_queue() {
        let e = Endpoints::new(bounds());
        assert!(matches!(e.offer(&id("a"), FAST, 5000), Admission::Take(_)));
    }

    #[test]
    fn a_slow_rate_defers_what_would_wait_longer_than_the_bound() {
        let e = Endpoints::new(QueueBounds {
            records: 100,
            ..bounds()
        });
        let slow = Limits {
            max_in_flight: 1,
            per_second: 1.0,
        };
        let mut taken = Vec::new();
        let mut deferred = None;
        for _ in 0..20 {
            match e.offer(&id("a"), slow, 1) {
                Admission::Take(t) => taken.push(t),
                Admission::Defer { wait, reason } => {
                    deferred = Some((wait, reason));
                    break;
                }
            }
        }
        // A burst of one, then one a second: ten seconds' worth is taken, no more.
        assert!(
            (10..=11).contains(&taken.len()),
            "{} taken before the first deferral",
            taken.len()
        );
        let (wait, reason) = deferred.expect("deferred");
        assert_eq!(reason, DeferReason::RateLimited);
        assert!(wait > Duration::from_secs(9), "{wait:?}");
        let waits: Vec<Duration> = taken.iter().map(|t| t.rate_wait).collect();
        assert!(waits.windows(2).all(|w| w[0] <= w[1]), "{waits:?}");
    }

    #[test]
    fn deferrals_are_spread_over_the_endpoints_pace() {
        let e = Endpoints::new(QueueBounds {
            records: 100,
            ..bounds()
        });
        let slow = Limits {
            max_in_flight: 1,
            per_second: 2.0,
        };
        let mut waits = Vec::new();
        for _ in 0..40 {
            // Taken tickets are dropped at once: only the rate (its reservations stay) defers.
            if let Admission::Defer { wait, .. } = e.offer(&id("a"), slow, 1) {
                waits.push(wait);
            }
        }
        assert!(waits.len() >= 15, "{} deferred", waits.len());
        // One every half second (the rate), after the queue's own ten seconds.
        for w in waits.windows(2) {
            let gap = w[1].saturating_sub(w[0]).as_secs_f64();
            assert!((0.45..=0.55).contains(&gap), "{waits:?}");
        }
        assert!(waits[0] >= Duration::from_secs(9), "{waits:?}");
    }

    #[test]
    fn a_slow_endpoint_defers_by_its_drain_time() {
        let e = Endpoints::new(bounds());
        let one = Limits {
            max_in_flight: 1,
            per_second: 1000.0,
        };
        let first = match e.offer(&id("a"), one, 1) {
            Admission::Take(t) => t,
            other => panic!("{other:?}"),
        };
        first.endpoint().observe_latency(Duration::from_secs(6));
        let second = e.offer(&id("a"), one, 1);
        assert!(
            matches!(second, Admission::Take(_)),
            "6 s of drain is within 10 s"
        );
        let third = e.offer(&id("a"), one, 1);
        assert!(
            matches!(
                third,
                Admission::Defer {
                    reason: DeferReason::SlowEndpoint,
                    ..
                }
            ),
            "{third:?}"
        );
    }

    #[tokio::test]
    async fn an_endpoint_that_stops_answering_stops_taking_deliveries_within_the_bound() {
        let e = Endpoints::new(QueueBounds {
            records: 1000,
            bytes: 1 << 20,
            max_wait: Duration::from_millis(200),
            rate_cap: None,
        });
        let one = Limits {
            max_in_flight: 1,
            per_second: 1e6,
        };
        let Admission::Take(first) = e.offer(&id("a"), one, 1) else {
            panic!("an empty queue takes");
        };
        // It answered fast once: a millisecond per request.
        first.endpoint().observe_latency(Duration::from_millis(1));
        let _out = first.slot().await.expect("a slot");
        let mut queued = Vec::new();
        for _ in 0..10 {
            match e.offer(&id("a"), one, 1) {
                Admission::Take(t) => queued.push(t),
                other => panic!("a fast endpoint takes ten: {other:?}"),
            }
        }
        // Now nothing answers for longer than the bound: what is queued cannot drain in time.
        std::thread::sleep(Duration::from_millis(250));
        let late = e.offer(&id("a"), one, 1);
        assert!(
            matches!(
                late,
                Admission::Defer {
                    reason: DeferReason::SlowEndpoint,
                    ..
                }
            ),
            "{late:?}"
        );
    }

    #[test]
    fn a_fast_endpoints_burst_waits_in_memory_up_to_the_default_bounds() {
        let e = Endpoints::new(QueueBounds {
            rate_cap: None,
            ..QueueBounds::default()
        });
        let fast = Limits {
            max_in_flight: 64,
            per_second: 1e6,
        };
        let mut held = Vec::new();
        let reason = loop {
            match e.offer(&id("a"), fast, 800) {
                Admission::Take(t) => {
                    t.endpoint().observe_latency(Duration::from_millis(2));
                    held.push(t);
                }
                Admission::Defer { reason, .. } => break reason,
            }
        };
        // 10,000 records at 2 ms over 64 slots drain in about 0.3 s: only the record bound
        // ends the burst (8 MiB of 800-byte bodies would be 10,485).
        assert_eq!(held.len(), 10_000);
        assert_eq!(reason, DeferReason::QueueFull);
    }
}
