//! Small functions for placement tests and benchmarks.

wit_bindgen::generate!({ path: "../../wit/placement", world: "adder" });

use std::sync::atomic::{AtomicU64, Ordering};

use exports::membrane_test::placement::math::Guest;

static COUNT: AtomicU64 = AtomicU64::new(0);

struct Adder;

impl Guest for Adder {
    fn add(a: u32, b: u32) -> u32 {
        a.wrapping_add(b)
    }
    fn echo(bytes: Vec<u8>) -> Vec<u8> {
        bytes
    }
    fn nap(ms: u64) -> u64 {
        std::thread::sleep(std::time::Duration::from_millis(ms));
        ms
    }
    fn fail(message: String) {
        panic!("{message}");
    }
    fn bump() -> u64 {
        COUNT.fetch_add(1, Ordering::Relaxed) + 1
    }
}

export!(Adder);
