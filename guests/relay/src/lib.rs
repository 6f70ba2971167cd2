//! The middle of the test chain: forwards to `work`, which another module provides.

wit_bindgen::generate!({ path: "../../wit/chain", world: "relay-world" });

use exports::membrane_test::chain::relay::Guest;
use membrane_test::chain::work;

struct Relay;

impl Guest for Relay {
    fn echo(s: String) -> String {
        format!("relay:{}", work::echo(&s))
    }
    fn add(a: u64, b: u64) -> u64 {
        work::add(a, b)
    }
    fn spin() {
        work::spin()
    }
    fn fail(message: String) {
        work::fail(&message)
    }
    fn exit(code: u32) {
        work::exit(code)
    }
    fn counters(n: u32) -> u64 {
        let counters: Vec<work::Counter> = (0..n).map(|i| work::Counter::new(i as u64)).collect();
        counters.iter().map(|c| c.incr()).sum()
    }
    fn leak_counter(start: u64) {
        std::mem::forget(work::Counter::new(start));
    }
    fn hand_over(start: u64) -> (u64, u64) {
        let c = work::Counter::new(start);
        c.incr();
        let borrowed = work::peek(&c);
        let owned = work::consume(c);
        (borrowed, owned)
    }
    fn live_counters() -> u64 {
        work::live_counters()
    }
}

export!(Relay);
