//! What every counter_* guest shares (included by the others with `#[path]`): the count, kept
//! in the instance's memory, and its snapshot format: the count as 8 little-endian bytes.

use std::sync::atomic::{AtomicU64, Ordering};

static COUNT: AtomicU64 = AtomicU64::new(0);

/// Adds 1; the new count.
pub fn incr() -> u32 {
    to_u32(COUNT.fetch_add(1, Ordering::Relaxed) + 1)
}

pub fn get() -> u32 {
    to_u32(COUNT.load(Ordering::Relaxed))
}

/// The snapshot: the count as 8 little-endian bytes.
#[allow(dead_code)] // counter_plain has no snapshot
pub fn save() -> Vec<u8> {
    COUNT.load(Ordering::Relaxed).to_le_bytes().to_vec()
}

/// Takes the count from a snapshot of [`save`]; panics (traps) on any other length.
#[allow(dead_code)]
pub fn restore(state: &[u8]) {
    let Ok(bytes) = <[u8; 8]>::try_from(state) else {
        panic!("a counter snapshot is 8 bytes, not {}", state.len());
    };
    COUNT.store(u64::from_le_bytes(bytes), Ordering::Relaxed);
}

fn to_u32(n: u64) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}
