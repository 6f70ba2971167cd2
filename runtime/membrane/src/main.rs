//! The `membrane` command (see the membrane-cli crate).

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicU8, Ordering};

/// The host runs on mimalloc rather than glibc's malloc: WASI 0.3 calls allocate on one
/// thread and free on another, which contends glibc's arena locks (one futex per request;
/// docs/decisions/0014-allocator.md). A worker process (the same program, started with
/// `MEMBRANE_WORKER_FD`) keeps the system allocator: its seccomp filter and RLIMIT_DATA are
/// made for it, and mimalloc's up-front reservations would count against the limit.
#[global_allocator]
static ALLOCATOR: Chosen = Chosen;

struct Chosen;

/// 0: not chosen yet, 1: the system's, 2: mimalloc.
static CHOICE: AtomicU8 = AtomicU8::new(0);

impl Chosen {
    /// Whether to use mimalloc. Decided at the first allocation, which comes before `main`
    /// on the one thread the process then has, and never changes after: every block is
    /// freed by the allocator that made it.
    #[inline]
    fn mimalloc(&self) -> bool {
        match CHOICE.load(Ordering::Relaxed) {
            2 => true,
            1 => false,
            _ => {
                // SAFETY: getenv reads the environment without allocating; nothing writes
                // it before the first allocation.
                let worker =
                    !unsafe { libc::getenv(membrane::process::WORKER_ENV_C.as_ptr()) }.is_null();
                CHOICE.store(if worker { 1 } else { 2 }, Ordering::Relaxed);
                !worker
            }
        }
    }
}

// SAFETY: each method forwards to one of two allocators, always the same one for the whole
// life of the process (`Chosen::mimalloc`), so a block goes back to the allocator it came
// from.
unsafe impl GlobalAlloc for Chosen {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if self.mimalloc() {
            unsafe { mimalloc::MiMalloc.alloc(layout) }
        } else {
            unsafe { System.alloc(layout) }
        }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if self.mimalloc() {
            unsafe { mimalloc::MiMalloc.alloc_zeroed(layout) }
        } else {
            unsafe { System.alloc_zeroed(layout) }
        }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if self.mimalloc() {
            unsafe { mimalloc::MiMalloc.dealloc(ptr, layout) }
        } else {
            unsafe { System.dealloc(ptr, layout) }
        }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if self.mimalloc() {
            unsafe { mimalloc::MiMalloc.realloc(ptr, layout, new_size) }
        } else {
            unsafe { System.realloc(ptr, layout, new_size) }
        }
    }
}

fn main() -> std::process::ExitCode {
    membrane_cli::main()
}
