//! `limits.output`: the bytes of stdout and stderr one call may write (default 1 MiB), and
//! the log events it may produce ([`MAX_LOG_LINES`]); the rest is dropped and counted, and
//! the host logs how much after the call. The streams themselves are the stdout/stderr
//! capability's (`capability/stdio.rs`); they draw on this budget.

use std::any::Any;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use crate::error::Problems;
use crate::unit::{ModuleCx, Unit, UnitDef};

pub const DEF: UnitDef = UnitDef {
    validate: |_, _| {},
    prepare,
};

fn prepare(cx: &ModuleCx<'_>, _: &mut Problems) -> Option<Box<dyn Unit>> {
    Some(Box::new(Output {
        bytes: cx.spec.limits.output,
    }))
}

#[derive(Debug)]
struct Output {
    bytes: u64,
}

impl Unit for Output {
    fn new_state(&self) -> Option<Box<dyn Any + Send>> {
        let budget = Arc::new(OutputBudget::default());
        budget.reset(self.bytes);
        Some(Box::new(budget))
    }

    fn reset_state(&self, state: &mut (dyn Any + Send)) {
        if let Some(b) = state.downcast_ref::<Arc<OutputBudget>>() {
            b.reset(self.bytes);
        }
    }

    fn reports(&self) -> bool {
        true
    }

    fn after_call(&self, state: &mut (dyn Any + Send), module: &str) {
        let Some(b) = state.downcast_ref::<Arc<OutputBudget>>() else {
            return;
        };
        let (dropped, dropped_lines) = (b.dropped(), b.lines_dropped());
        if dropped > 0 || dropped_lines > 0 {
            tracing::warn!(
                target: "membrane::limits",
                module,
                dropped,
                dropped_lines,
                limit = self.bytes,
                "output past the module's per-call limits was dropped"
            );
        }
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}

/// The most log events one call may produce on the `log` route; later lines are dropped
/// and counted. Bytes are bounded by `limits.output`, but a guest printing bare newlines
/// would otherwise turn every byte into a host log line of a hundred bytes.
pub const MAX_LOG_LINES: u32 = 10_000;

/// Bytes of output the current call may still write, shared by an instance's streams, and
/// the log lines it may still produce.
#[derive(Debug, Default)]
pub struct OutputBudget {
    left: AtomicU64,
    dropped: AtomicU64,
    lines_left: AtomicU32,
    lines_dropped: AtomicU64,
}

impl OutputBudget {
    /// Starts a call's budget.
    pub fn reset(&self, limit: u64) {
        self.left.store(limit, Ordering::Relaxed);
        self.dropped.store(0, Ordering::Relaxed);
        self.lines_left.store(MAX_LOG_LINES, Ordering::Relaxed);
        self.lines_dropped.store(0, Ordering::Relaxed);
    }

    /// Bytes dropped since the last reset.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// Log lines dropped since the last reset: past [`MAX_LOG_LINES`], or because the log
    /// could not take them.
    pub fn lines_dropped(&self) -> u64 {
        self.lines_dropped.load(Ordering::Relaxed)
    }

    /// How many of `n` bytes may be written.
    pub fn take(&self, n: usize) -> usize {
        let n = n as u64;
        let granted = self
            .left
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |left| {
                Some(left.saturating_sub(n))
            })
            .map_or(0, |left| left.min(n));
        self.dropped.fetch_add(n - granted, Ordering::Relaxed);
        granted as usize
    }

    /// Whether one more log line may be emitted; counts it as dropped when not.
    pub fn take_line(&self) -> bool {
        let ok = self
            .lines_left
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |left| {
                left.checked_sub(1)
            })
            .is_ok();
        if !ok {
            self.drop_line();
        }
        ok
    }

    pub fn drop_line(&self) {
        self.lines_dropped.fetch_add(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_output_budget_drops_and_counts() {
        let b = OutputBudget::default();
        b.reset(10);
        assert_eq!(b.take(4), 4);
        assert_eq!(b.take(10), 6);
        assert_eq!(b.take(3), 0);
        assert_eq!(b.dropped(), 7);
        b.reset(1);
        assert_eq!(b.dropped(), 0);
    }

    #[test]
    fn log_lines_are_budgeted_per_call() {
        let b = OutputBudget::default();
        b.reset(10);
        for _ in 0..MAX_LOG_LINES {
            assert!(b.take_line());
        }
        assert!(!b.take_line());
        assert_eq!(b.lines_dropped(), 1);
        b.reset(10);
        assert!(b.take_line());
    }
}
