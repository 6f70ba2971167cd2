//! How a module is upgraded while the app runs (`[modules.X.upgrade]`).

use std::time::Duration;

/// How a new generation of a module replaces the current one.
///
/// | key | default | meaning |
/// |---|---|---|
/// | `drain` | 30 s | how long calls and resource sessions of the old generation may go on after the switch; what still runs then is ended with `Unavailable` |
/// | `probation` | 30 s | how long the previous generation stays ready for a rollback; the new one rolls back by itself if its circuit opens or too many of its calls fail |
/// | `rollback_ratio` | 0.5 | share of failed calls (of at least [`UpgradePolicy::MIN_CALLS`]) during probation that rolls the module back |
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub struct UpgradePolicy {
    /// How long the old generation may finish its work after a switch.
    pub drain: Duration,
    /// How long the new generation is watched, the previous one kept ready.
    pub probation: Duration,
    /// Share of failed calls during probation, above which the module rolls back.
    pub rollback_ratio: f64,
}

impl UpgradePolicy {
    /// Calls a generation in probation must have ended before its failure share counts.
    pub const MIN_CALLS: u64 = 20;

    /// The defaults with another drain time.
    pub fn drain(mut self, drain: Duration) -> Self {
        self.drain = drain;
        self
    }

    /// The defaults with another probation time.
    pub fn probation(mut self, probation: Duration) -> Self {
        self.probation = probation;
        self
    }

    /// The defaults with another rollback ratio.
    pub fn rollback_ratio(mut self, ratio: f64) -> Self {
        self.rollback_ratio = ratio;
        self
    }
}

impl Default for UpgradePolicy {
    /// Drain 30 s, probation 30 s, roll back when more than half the calls fail.
    fn default() -> Self {
        UpgradePolicy {
            drain: Duration::from_secs(30),
            probation: Duration::from_secs(30),
            rollback_ratio: 0.5,
        }
    }
}
