//! Per-instance resource limits: memory through a `ResourceLimiter`, time through epochs.
//!
//! The memory cap counts the total of every linear memory of the instance (a component can
//! hold several). A refused growth is reported to the guest as a failed `memory.grow` so a
//! careful guest can recover; if the call then traps, the trap is reported as
//! [`ErrorKind::MemoryLimit`](crate::ErrorKind::MemoryLimit) because the refusal caused it.

pub(crate) mod files;

use std::time::Duration;

use wasmtime::ResourceLimiter;

/// The most table elements one table may hold. Tables of Rust and C guests hold a few
/// hundred function references; this bound keeps a hostile table from costing the host
/// gigabytes.
pub const MAX_TABLE_ELEMENTS: usize = 1 << 20;

/// Memory accounting of one store.
#[derive(Debug)]
pub(crate) struct MemoryLimiter {
    max_memory: u64,
    used: u64,
    /// Set when a memory growth was refused; cleared before every call.
    pub(crate) denied: bool,
    /// Set when a table growth was refused; cleared before every call.
    pub(crate) table_denied: bool,
}

impl MemoryLimiter {
    pub(crate) fn new(max_memory: u64) -> Self {
        MemoryLimiter {
            max_memory,
            used: 0,
            denied: false,
            table_denied: false,
        }
    }
}

impl ResourceLimiter for MemoryLimiter {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let delta = desired.saturating_sub(current) as u64;
        if self.used.saturating_add(delta) > self.max_memory {
            self.denied = true;
            tracing::debug!(target: "membrane::limits", current, desired, max = self.max_memory, "memory growth refused");
            return Ok(false);
        }
        self.used += delta;
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > MAX_TABLE_ELEMENTS {
            self.table_denied = true;
            return Ok(false);
        }
        Ok(true)
    }
}

/// Turns a timeout into an epoch deadline, rounding up so that a call gets at least its budget.
pub(crate) fn deadline_ticks(timeout: Duration, tick: Duration) -> u64 {
    let ticks = timeout.as_nanos().div_ceil(tick.as_nanos().max(1));
    // One extra tick: the current epoch period may be nearly over when the call starts.
    (ticks as u64).saturating_add(1).min(u64::MAX / 2)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_is_counted_across_memories() {
        let mut l = MemoryLimiter::new(100);
        assert!(l.memory_growing(0, 60, None).unwrap());
        assert!(!l.memory_growing(0, 50, None).unwrap());
        assert!(l.denied);
        assert!(l.memory_growing(60, 100, None).unwrap());
    }

    #[test]
    fn deadlines_round_up() {
        let tick = Duration::from_millis(10);
        assert_eq!(deadline_ticks(Duration::from_millis(500), tick), 51);
        assert_eq!(deadline_ticks(Duration::from_millis(1), tick), 2);
    }
}
