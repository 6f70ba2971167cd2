//! Calls the provider in a loop through a link.

wit_bindgen::generate!({ path: "../../wit/bench", world: "driver-world" });

use exports::membrane_bench::calls::driver::Guest;
use membrane_bench::calls::api;
use membrane_bench::calls::res::Counter;

struct Driver;

impl Guest for Driver {
    fn loop_inc(n: u32) -> u64 {
        let mut x = 0;
        for _ in 0..n {
            x = api::inc(x);
        }
        x
    }
    fn loop_echo(n: u32, s: String) -> u64 {
        let mut total = 0;
        for _ in 0..n {
            total += api::echo(&s).len() as u64;
        }
        total
    }
    fn loop_bump(n: u32) -> u64 {
        let counter = Counter::new(0);
        let mut last = 0;
        for _ in 0..n {
            last = counter.bump();
        }
        last
    }
}

export!(Driver);
