//! `limits.memory` (default 64 MiB) and the table limit, through a `ResourceLimiter`.
//!
//! The memory cap counts the total of every linear memory of the instance (a component can
//! hold several). A refused growth is reported to the guest as a failed `memory.grow` so a
//! careful guest can recover; if the call then traps, the trap is reported as
//! [`ErrorKind::MemoryLimit`] because the refusal caused it. Tables grow to at most
//! [`MAX_TABLE_ELEMENTS`]; past it, [`ErrorKind::TableLimit`]. A component whose memories or
//! tables start larger is refused before it is compiled (`compile.rs`).

use std::any::Any;

use wasmtime::ResourceLimiter;

use crate::error::{Error, ErrorKind, Problems};
use crate::unit::{BlameCx, ModuleCx, Slots, Unit, UnitDef};

/// The most table elements one table may hold. Tables of Rust and C guests hold a few
/// hundred function references; this bound keeps a hostile table from costing the host
/// gigabytes.
pub const MAX_TABLE_ELEMENTS: usize = 1 << 17;

pub const DEF: UnitDef = UnitDef { validate, prepare };

fn validate(cx: &ModuleCx<'_>, problems: &mut Problems) {
    if cx.spec.limits.memory == 0 {
        problems.push(
            Error::manifest(format!(
                "module `{}`: limits.memory must be more than zero",
                cx.name
            ))
            .with_key(cx.key("limits.memory")),
        );
    }
}

fn prepare(cx: &ModuleCx<'_>, _: &mut Problems) -> Option<Box<dyn Unit>> {
    Some(Box::new(Memory {
        max: cx.spec.limits.memory,
    }))
}

#[derive(Debug)]
struct Memory {
    max: u64,
}

impl Unit for Memory {
    fn new_state(&self) -> Option<Box<dyn Any + Send>> {
        Some(Box::new(MemoryLimiter::new(self.max)))
    }

    fn reset_state(&self, state: &mut (dyn Any + Send)) {
        if let Some(l) = state.downcast_mut::<MemoryLimiter>() {
            l.denied = false;
            l.table_denied = false;
        }
    }

    fn blame(&self, slots: &Slots, cx: &BlameCx<'_>) -> Option<(ErrorKind, String)> {
        let l = slots.get::<MemoryLimiter>()?;
        let module = cx.module;
        if l.table_denied {
            return Some((
                ErrorKind::TableLimit,
                format!(
                    "module `{module}`: {} failed after growing a table past {MAX_TABLE_ELEMENTS} elements was refused",
                    cx.what
                ),
            ));
        }
        l.denied.then(|| {
            (
                ErrorKind::MemoryLimit,
                format!(
                    "module `{module}`: {} failed after memory growth past its limit of {} was refused; raise [modules.{module}.limits] memory if it needs more",
                    cx.what,
                    crate::units::format_size(self.max)
                ),
            )
        })
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}

/// Memory and table accounting of one store.
#[derive(Debug)]
pub struct MemoryLimiter {
    max_memory: u64,
    used: u64,
    /// Set when a memory growth was refused; cleared before every call.
    pub denied: bool,
    /// Set when a table growth was refused; cleared before every call.
    pub table_denied: bool,
}

impl MemoryLimiter {
    pub fn new(max_memory: u64) -> Self {
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
}
