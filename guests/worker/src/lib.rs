//! The far end of the test chain: plain functions, a resource, and ways to fail.

use std::cell::Cell;
use std::sync::atomic::{AtomicU64, Ordering};

wit_bindgen::generate!({ path: "../../wit/chain", world: "worker" });

use exports::membrane_test::chain::work::{Counter, CounterBorrow, Guest, GuestCounter};

static LIVE: AtomicU64 = AtomicU64::new(0);

struct Worker;

struct MyCounter(Cell<u64>);

impl GuestCounter for MyCounter {
    fn new(start: u64) -> Self {
        LIVE.fetch_add(1, Ordering::SeqCst);
        MyCounter(Cell::new(start))
    }
    fn incr(&self) -> u64 {
        self.0.set(self.0.get() + 1);
        self.0.get()
    }
    fn get(&self) -> u64 {
        self.0.get()
    }
}

impl Drop for MyCounter {
    fn drop(&mut self) {
        LIVE.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Guest for Worker {
    type Counter = MyCounter;

    fn live_counters() -> u64 {
        LIVE.load(Ordering::SeqCst)
    }
    fn consume(c: Counter) -> u64 {
        c.get::<MyCounter>().get()
    }
    fn peek(c: CounterBorrow<'_>) -> u64 {
        c.get::<MyCounter>().get()
    }
    fn echo(s: String) -> String {
        format!("worker:{s}")
    }
    fn add(a: u64, b: u64) -> u64 {
        a.wrapping_add(b)
    }
    fn spin() {
        let mut x = 0u64;
        loop {
            x = std::hint::black_box(x.wrapping_add(1));
        }
    }
    fn fail(message: String) {
        panic!("{message}");
    }
    fn exit(code: u32) {
        std::process::exit(code as i32);
    }
}

export!(Worker);
