//! The last minute of a module's calls, for the operator: how many ended how (ok, each
//! error kind, cancelled) and how long they took (p50, p99). A slot per second, counted
//! with atomics (a call never waits on a lock); a slot is reused a minute later, so a count
//! racing its reset may be lost: the figures are for reading, not for billing.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::error::ErrorKind;

const SECONDS: usize = 60;
/// Outcomes: ok, cancelled, then each error kind.
const OUTCOMES: usize = 2 + ErrorKind::ALL.len();
/// Latency buckets: two per power of two of microseconds, from 1 µs to about 70 minutes.
const BUCKETS: usize = 64;

struct Slot {
    second: AtomicU64,
    outcomes: [AtomicU32; OUTCOMES],
    latency: [AtomicU32; BUCKETS],
}

/// A module's last minute of calls.
pub struct Window {
    slots: Box<[Slot]>,
}

impl std::fmt::Debug for Window {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Window")
    }
}

impl Default for Window {
    fn default() -> Window {
        Window {
            slots: (0..SECONDS)
                .map(|_| Slot {
                    second: AtomicU64::new(u64::MAX),
                    outcomes: std::array::from_fn(|_| AtomicU32::new(0)),
                    latency: std::array::from_fn(|_| AtomicU32::new(0)),
                })
                .collect(),
        }
    }
}

/// The second `at` falls in, counted from the process's first use of a window.
fn second(at: Instant) -> u64 {
    static BASE: OnceLock<Instant> = OnceLock::new();
    let base = *BASE.get_or_init(Instant::now);
    at.saturating_duration_since(base).as_secs()
}

fn outcome_index(outcome: Option<Result<(), ErrorKind>>) -> usize {
    match outcome {
        Some(Ok(())) => 0,
        None => 1,
        Some(Err(kind)) => 2 + ErrorKind::ALL.iter().position(|k| *k == kind).unwrap_or(0),
    }
}

fn bucket(took: Duration) -> usize {
    let us = took.as_micros().max(1) as f64;
    ((us.log2() * 2.0) as usize).min(BUCKETS - 1)
}

/// The upper bound of latency bucket `b`.
fn bound(b: usize) -> Duration {
    Duration::from_nanos((2f64.powf((b + 1) as f64 / 2.0) * 1000.0) as u64)
}

/// What the window holds now.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Recent {
    /// Calls that ended in the last minute.
    pub calls: u64,
    /// Those that failed, by kind (`cancelled` for calls whose caller went away).
    pub failures: Vec<(&'static str, u64)>,
    /// The median call's duration, at most (the bound of its bucket: within 41%).
    pub p50: Option<Duration>,
    /// The 99th percentile's, at most.
    pub p99: Option<Duration>,
}

impl Window {
    /// Counts a call that ended at `end` after `took`: `Some(Ok)`, `Some(Err(kind))`, or
    /// `None` when it was cancelled.
    pub fn record(&self, end: Instant, took: Duration, outcome: Option<Result<(), ErrorKind>>) {
        let now = second(end);
        let slot = &self.slots[(now % SECONDS as u64) as usize];
        let seen = slot.second.load(Ordering::Acquire);
        if seen != now
            && slot
                .second
                .compare_exchange(seen, now, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
        {
            for c in slot.outcomes.iter().chain(slot.latency.iter()) {
                c.store(0, Ordering::Relaxed);
            }
        }
        slot.outcomes[outcome_index(outcome)].fetch_add(1, Ordering::Relaxed);
        slot.latency[bucket(took)].fetch_add(1, Ordering::Relaxed);
    }

    /// The last minute, as of now.
    pub fn recent(&self) -> Recent {
        let now = second(Instant::now());
        let mut outcomes = [0u64; OUTCOMES];
        let mut latency = [0u64; BUCKETS];
        for slot in self.slots.iter() {
            let s = slot.second.load(Ordering::Acquire);
            if s == u64::MAX || s > now || now - s >= SECONDS as u64 {
                continue;
            }
            for (sum, c) in outcomes.iter_mut().zip(&slot.outcomes) {
                *sum += u64::from(c.load(Ordering::Relaxed));
            }
            for (sum, c) in latency.iter_mut().zip(&slot.latency) {
                *sum += u64::from(c.load(Ordering::Relaxed));
            }
        }
        let calls: u64 = outcomes.iter().sum();
        let mut failures = Vec::new();
        if outcomes[1] > 0 {
            failures.push(("cancelled", outcomes[1]));
        }
        for (i, kind) in ErrorKind::ALL.iter().enumerate() {
            if outcomes[2 + i] > 0 {
                failures.push((kind.as_str(), outcomes[2 + i]));
            }
        }
        let total: u64 = latency.iter().sum();
        let quantile = |q: f64| -> Option<Duration> {
            if total == 0 {
                return None;
            }
            let rank = ((total as f64) * q).ceil().max(1.0) as u64;
            let mut seen = 0;
            latency.iter().enumerate().find_map(|(b, n)| {
                seen += n;
                (seen >= rank).then(|| bound(b))
            })
        };
        Recent {
            calls,
            failures,
            p50: quantile(0.5),
            p99: quantile(0.99),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_outcomes_and_quantiles_of_the_last_minute() {
        let w = Window::default();
        let now = Instant::now();
        for _ in 0..98 {
            w.record(now, Duration::from_micros(100), Some(Ok(())));
        }
        w.record(now, Duration::from_millis(50), Some(Err(ErrorKind::Trap)));
        w.record(now, Duration::from_millis(900), None);
        let r = w.recent();
        assert_eq!(r.calls, 100);
        assert_eq!(r.failures, vec![("cancelled", 1), ("trap", 1)]);
        let p50 = r.p50.unwrap();
        assert!(
            p50 >= Duration::from_micros(100) && p50 < Duration::from_micros(150),
            "{p50:?}"
        );
        let p99 = r.p99.unwrap();
        assert!(
            p99 >= Duration::from_millis(50) && p99 < Duration::from_millis(71),
            "{p99:?}"
        );
        assert_eq!(Window::default().recent(), Recent::default());
    }
}
