//! Where a generation is in its life: the calls and resource sessions running on it, whether
//! it still takes new calls (current), whether it was superseded (its instances are not kept)
//! or retired (its drain time is over: what still runs is ended), and, during probation, how
//! its calls went.
//!
//! The counters are read by the upgrade code (`upgrade/mod.rs`) to know when an old
//! generation has drained and when a new one in probation should roll back.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

/// Called once when a generation in probation fails its probation, with the reason.
pub type OnTrip = Box<dyn Fn(String) + Send + Sync>;

/// The life of one generation.
pub struct Life {
    /// Calls admitted and not yet ended.
    pub in_flight: AtomicUsize,
    /// Resource sessions (provider instances pinned to an importer instance) open.
    pub sessions: AtomicUsize,
    /// No longer the module's current generation: instances are dropped, not kept.
    pub superseded: AtomicBool,
    /// The drain time is over: new calls are refused and running ones ended.
    pub retired: Arc<AtomicBool>,
    probation: Probation,
}

/// How calls went while a generation is on probation.
struct Probation {
    watching: AtomicBool,
    ok: AtomicU64,
    failed: AtomicU64,
    /// The rollback ratio, as `f64` bits.
    ratio: AtomicU64,
    /// Failures that end the probation: the circuit's `max` (the circuit itself would
    /// open one failure later).
    max_failures: AtomicU64,
    on_trip: Mutex<Option<OnTrip>>,
}

impl Default for Life {
    fn default() -> Life {
        Life::new()
    }
}

impl Life {
    pub fn new() -> Life {
        Life {
            in_flight: AtomicUsize::new(0),
            sessions: AtomicUsize::new(0),
            superseded: AtomicBool::new(false),
            retired: Arc::new(AtomicBool::new(false)),
            probation: Probation {
                watching: AtomicBool::new(false),
                ok: AtomicU64::new(0),
                failed: AtomicU64::new(0),
                ratio: AtomicU64::new(1f64.to_bits()),
                max_failures: AtomicU64::new(u64::MAX),
                on_trip: Mutex::new(None),
            },
        }
    }

    /// Nothing runs on the generation any more.
    pub fn drained(&self) -> bool {
        self.in_flight.load(Ordering::Acquire) == 0 && self.sessions.load(Ordering::Acquire) == 0
    }

    pub fn is_retired(&self) -> bool {
        self.retired.load(Ordering::Relaxed)
    }

    /// Starts watching calls: at `max_failures` failed calls, past `ratio` failed (of at
    /// least `min_calls`), or when [`Life::observe`] is told the circuit opened, `on_trip`
    /// runs once.
    pub fn watch(&self, ratio: f64, max_failures: u32, on_trip: OnTrip) {
        let p = &self.probation;
        p.max_failures
            .store(u64::from(max_failures.max(1)), Ordering::Relaxed);
        p.ok.store(0, Ordering::Relaxed);
        p.failed.store(0, Ordering::Relaxed);
        p.ratio.store(ratio.to_bits(), Ordering::Relaxed);
        *p.on_trip.lock().unwrap_or_else(|e| e.into_inner()) = Some(on_trip);
        p.watching.store(true, Ordering::Release);
    }

    /// Stops watching (probation passed, or the generation was rolled back).
    pub fn unwatch(&self) {
        self.probation.watching.store(false, Ordering::Release);
        self.probation
            .on_trip
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
    }

    /// Whether calls are being watched (one atomic load on the call path).
    #[inline]
    pub fn watching(&self) -> bool {
        self.probation.watching.load(Ordering::Relaxed)
    }

    /// Counts one ended call of a generation on probation: `failed` when it failed in a way
    /// that counts against the module, `circuit_open` when the supervisor opened its circuit.
    pub fn observe(&self, failed: bool, circuit_open: bool, min_calls: u64) {
        let p = &self.probation;
        let (ok, bad) = if failed {
            (
                p.ok.load(Ordering::Relaxed),
                p.failed.fetch_add(1, Ordering::Relaxed) + 1,
            )
        } else {
            (
                p.ok.fetch_add(1, Ordering::Relaxed) + 1,
                p.failed.load(Ordering::Relaxed),
            )
        };
        let ratio = f64::from_bits(p.ratio.load(Ordering::Relaxed));
        let total = ok + bad;
        let reason = if circuit_open || bad >= p.max_failures.load(Ordering::Relaxed) {
            Some(format!(
                "{bad} of its calls failed on probation, as many as its circuit allows (restart.max)"
            ))
        } else if total >= min_calls && bad as f64 > ratio * total as f64 {
            Some(format!(
                "{bad} of its {total} calls on probation failed, more than rollback_ratio {ratio}"
            ))
        } else {
            None
        };
        if let Some(reason) = reason {
            let trip = p.on_trip.lock().unwrap_or_else(|e| e.into_inner()).take();
            if let Some(trip) = trip {
                p.watching.store(false, Ordering::Release);
                trip(reason);
            }
        }
    }

    /// Calls that ended, and of them failed, during the probation (so far).
    pub fn probation_counts(&self) -> (u64, u64) {
        let p = &self.probation;
        (
            p.ok.load(Ordering::Relaxed) + p.failed.load(Ordering::Relaxed),
            p.failed.load(Ordering::Relaxed),
        )
    }
}
