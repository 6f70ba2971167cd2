//! Waiting for a condition the code under test makes true (a status field, a metric, a
//! file): polled, with a deadline that is only a hang guard, never part of what a test
//! checks.

use std::time::{Duration, Instant};

/// How long a condition may take before the wait fails: far above anything a correct
/// program needs, even on a machine busy with other builds.
pub const HANG_GUARD: Duration = Duration::from_secs(120);

/// How often the condition is checked.
const POLL: Duration = Duration::from_millis(10);

/// Waits until `f` holds.
pub async fn eventually(what: &str, mut f: impl FnMut() -> bool) {
    let end = Instant::now() + HANG_GUARD;
    while !f() {
        assert!(
            Instant::now() < end,
            "{what}: did not happen within {HANG_GUARD:?}"
        );
        tokio::time::sleep(POLL).await;
    }
}

/// [`eventually`] for a thread outside any async runtime.
pub fn eventually_blocking(what: &str, mut f: impl FnMut() -> bool) {
    let end = Instant::now() + HANG_GUARD;
    while !f() {
        assert!(
            Instant::now() < end,
            "{what}: did not happen within {HANG_GUARD:?}"
        );
        std::thread::sleep(POLL);
    }
}
