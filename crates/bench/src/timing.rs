//! Measuring helpers shared by the sections.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Rounds of [`best_of`] in the CPU sections.
pub const ROUNDS: u32 = 4;

/// Calls between two clock reads, so reading the clock does not show in sub-microsecond ops.
const CHUNK: u64 = 8;

/// Runs `op` for about `budget` on the calling thread (after a warm-up of a tenth of it, which
/// fills caches and lets the CPU reach its clock) and returns the calls per second. One thread,
/// so the result is a per-core figure.
pub fn per_second(budget: Duration, mut op: impl FnMut()) -> f64 {
    let warm = Instant::now();
    while warm.elapsed() < budget / 10 {
        op();
    }
    let start = Instant::now();
    let mut calls = 0u64;
    loop {
        for _ in 0..CHUNK {
            op();
        }
        calls += CHUNK;
        if start.elapsed() >= budget {
            break;
        }
    }
    calls as f64 / start.elapsed().as_secs_f64()
}

/// Measures several ops taking turns: `rounds` rounds of `budget / rounds` each, and returns
/// every op's fastest round. On a shared machine other load only ever slows an op down, so the
/// fastest round is the closest estimate of what one core can do; taking turns keeps the
/// ratios between ops fair when the load changes during the run.
pub fn best_of(rounds: u32, budget: Duration, ops: &mut [&mut dyn FnMut()]) -> Vec<f64> {
    let mut best = vec![0.0f64; ops.len()];
    for _ in 0..rounds {
        for (op, best) in ops.iter_mut().zip(best.iter_mut()) {
            *best = best.max(per_second(budget / rounds, op));
        }
    }
    best
}

/// The `q` quantile (0..=1) of sorted values, nearest rank.
pub fn quantile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = (q * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// Wall-clock time in nanoseconds since the Unix epoch: the unit the end-to-end section stamps
/// events with, because the stamp travels inside the event and is read in another task.
pub fn unix_nanos() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_quantiles() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(quantile(&v, 0.5), 50.0);
        assert_eq!(quantile(&v, 0.99), 99.0);
        assert_eq!(quantile(&v, 1.0), 100.0);
        assert_eq!(quantile(&v, 0.0), 1.0);
        assert!(quantile(&[], 0.5).is_nan());
    }
}
