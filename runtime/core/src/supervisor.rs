//! Supervision: a circuit breaker per module.
//!
//! Failures of a module's instances (traps, timeouts, limit hits) are counted in a sliding
//! window. Past `max` failures within `within`, the module is marked unavailable and calls
//! fail fast with `Unavailable` (the circuit is open). After a back-off, one trial call is
//! let through: if it succeeds the circuit closes, if it fails it opens again with twice the
//! back-off (up to a minute). Bad arguments, unknown functions and overload are the
//! caller's business and do not count; a guest's exit from an export call counts (its
//! instance is gone).

use std::collections::VecDeque;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::error::{Error, ErrorKind, Result};
use crate::spec::RestartPolicy;

/// A module's health as the supervisor sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Health {
    /// Calls go through.
    Healthy,
    /// Too many failures: calls fail with `Unavailable` until the back-off has passed.
    Unavailable {
        /// Time left before a trial call is let through.
        retry_in: Duration,
    },
    /// The back-off has passed; the next call is a trial.
    Trial,
}

impl Health {
    /// The circuit's state as `/status` names it: `healthy`, `circuit-open` or `trial`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Health::Healthy => "healthy",
            Health::Unavailable { .. } => "circuit-open",
            Health::Trial => "trial",
        }
    }

    /// Time left before a trial call is let through, while the circuit is open.
    pub fn retry_in(&self) -> Option<Duration> {
        match self {
            Health::Unavailable { retry_in } => Some(*retry_in),
            _ => None,
        }
    }
}

#[derive(Debug)]
struct State {
    failures: VecDeque<Instant>,
    open_until: Option<Instant>,
    backoff: Duration,
    trial_running: bool,
}

#[derive(Debug)]
pub struct Supervisor {
    policy: RestartPolicy,
    /// Whether the circuit is open (`State::open_until` is set), readable without the lock.
    open: AtomicBool,
    state: Mutex<State>,
}

/// Whether an admitted call is the trial of an open circuit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    Normal,
    Trial,
}

/// Whether a failure says something about the module's health.
pub fn counts(kind: ErrorKind) -> bool {
    matches!(
        kind,
        ErrorKind::Timeout
            | ErrorKind::OutOfFuel
            | ErrorKind::MemoryLimit
            | ErrorKind::StackOverflow
            | ErrorKind::Trap
            | ErrorKind::HostcallLimit
            | ErrorKind::TableLimit
            | ErrorKind::FilesLimit
            | ErrorKind::DiskQuota
            | ErrorKind::Crashed
            // An exit inside an export call ends the instance like a trap; `run`'s exit is
            // the command's status and never reaches the supervisor as an error.
            | ErrorKind::Exit
    )
}

impl Supervisor {
    pub fn new(policy: RestartPolicy) -> Self {
        Supervisor {
            policy,
            open: AtomicBool::new(false),
            state: Mutex::new(State {
                failures: VecDeque::new(),
                open_until: None,
                backoff: policy.backoff,
                trial_running: false,
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Lets a call through, or refuses it while the circuit is open.
    pub fn admit(&self, module: &str) -> Result<Admission> {
        // The common case, a closed circuit, takes no lock.
        if !self.open.load(Ordering::Acquire) {
            return Ok(Admission::Normal);
        }
        let mut s = self.lock();
        let Some(until) = s.open_until else {
            return Ok(Admission::Normal);
        };
        let now = Instant::now();
        if now < until || s.trial_running {
            let retry = until.saturating_duration_since(now);
            return Err(Error::new(
                ErrorKind::Unavailable,
                format!(
                    "module `{module}` is unavailable after repeated failures (more than {} within {}); next trial in {}",
                    self.policy.max,
                    humantime::format_duration(self.policy.within),
                    humantime::format_duration(Duration::from_millis(retry.as_millis() as u64))
                ),
            )
            .with_module(module));
        }
        s.trial_running = true;
        Ok(Admission::Trial)
    }

    /// Records how an admitted call ended.
    /// `Err(Some(kind))` is a failure of this module; `Err(None)` one that says nothing about
    /// its health (a linked provider's failure).
    pub fn record(
        &self,
        module: &str,
        admission: Admission,
        outcome: Result<(), Option<ErrorKind>>,
    ) {
        let failed = matches!(outcome, Err(Some(kind)) if counts(kind));
        if admission == Admission::Normal && !failed {
            // Nothing to count: the common case takes no lock.
            return;
        }
        let mut s = self.lock();
        let inconclusive = outcome.is_err() && !failed;
        if admission == Admission::Trial {
            s.trial_running = false;
            if inconclusive {
                // Neither proof of health nor of failure: the next call is another trial.
                return;
            }
            if failed {
                s.backoff = (s.backoff * 2).min(RestartPolicy::MAX_BACKOFF);
                self.open.store(true, Ordering::Release);
                s.open_until = Some(Instant::now() + s.backoff);
                tracing::warn!(target: "membrane::supervisor", module, backoff = ?s.backoff, "trial call failed; module stays unavailable");
            } else {
                s.open_until = None;
                self.open.store(false, Ordering::Release);
                s.failures.clear();
                s.backoff = self.policy.backoff;
                tracing::info!(target: "membrane::supervisor", module, "trial call succeeded; module is available again");
            }
            return;
        }
        if !failed {
            return;
        }
        let now = Instant::now();
        s.failures.push_back(now);
        while s
            .failures
            .front()
            .is_some_and(|t| now.duration_since(*t) > self.policy.within)
        {
            s.failures.pop_front();
        }
        if s.open_until.is_none() && s.failures.len() > self.policy.max as usize {
            self.open.store(true, Ordering::Release);
            s.open_until = Some(now + s.backoff);
            tracing::warn!(
                target: "membrane::supervisor",
                module,
                failures = s.failures.len(),
                backoff = ?s.backoff,
                "too many failures; module marked unavailable"
            );
        }
    }

    /// Whether the circuit is open now (calls fail fast), without the lock.
    pub fn is_open(&self) -> bool {
        self.open.load(Ordering::Acquire)
    }

    pub fn health(&self) -> (Health, usize) {
        let s = self.lock();
        let health = match s.open_until {
            None => Health::Healthy,
            Some(until) => {
                let now = Instant::now();
                if now >= until && !s.trial_running {
                    Health::Trial
                } else {
                    Health::Unavailable {
                        retry_in: until.saturating_duration_since(now),
                    }
                }
            }
        };
        (health, s.failures.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(backoff_ms: u64) -> RestartPolicy {
        let mut p = RestartPolicy::default();
        p.max = 2;
        p.within = Duration::from_secs(60);
        p.backoff = Duration::from_millis(backoff_ms);
        p
    }

    #[test]
    fn opens_after_max_failures_and_closes_after_a_good_trial() {
        let s = Supervisor::new(policy(20));
        for _ in 0..3 {
            let a = s.admit("m").unwrap();
            s.record("m", a, Err(Some(ErrorKind::Trap)));
        }
        assert_eq!(s.admit("m").unwrap_err().kind(), ErrorKind::Unavailable);
        std::thread::sleep(Duration::from_millis(30));
        assert_eq!(s.health().0, Health::Trial);
        let a = s.admit("m").unwrap();
        assert_eq!(a, Admission::Trial);
        // Only one trial at a time.
        assert_eq!(s.admit("m").unwrap_err().kind(), ErrorKind::Unavailable);
        s.record("m", a, Ok(()));
        assert_eq!(s.health(), (Health::Healthy, 0));
    }

    #[test]
    fn an_inconclusive_trial_leaves_the_circuit_open_for_another_trial() {
        let s = Supervisor::new(policy(10));
        for _ in 0..3 {
            let a = s.admit("m").unwrap();
            s.record("m", a, Err(Some(ErrorKind::Trap)));
        }
        std::thread::sleep(Duration::from_millis(20));
        let a = s.admit("m").unwrap();
        s.record("m", a, Err(Some(ErrorKind::Overloaded)));
        assert_eq!(s.health().0, Health::Trial);
        let a = s.admit("m").unwrap();
        s.record("m", a, Err(None));
        assert_eq!(s.health().0, Health::Trial);
    }

    #[test]
    fn caller_errors_do_not_count_and_failed_trials_back_off() {
        let s = Supervisor::new(policy(20));
        for _ in 0..10 {
            let a = s.admit("m").unwrap();
            s.record("m", a, Err(Some(ErrorKind::InvalidArgs)));
        }
        assert_eq!(s.health(), (Health::Healthy, 0));
        for _ in 0..3 {
            let a = s.admit("m").unwrap();
            s.record("m", a, Err(Some(ErrorKind::Timeout)));
        }
        std::thread::sleep(Duration::from_millis(30));
        let a = s.admit("m").unwrap();
        s.record("m", a, Err(Some(ErrorKind::Trap)));
        match s.health().0 {
            Health::Unavailable { retry_in } => {
                assert!(retry_in > Duration::from_millis(25), "{retry_in:?}")
            }
            other => panic!("{other:?}"),
        }
    }
}
