//! Calls the `math` provider through a link.

wit_bindgen::generate!({ path: "../../wit/placement", world: "calc-world" });

use exports::membrane_test::placement::calc::Guest;
use membrane_test::placement::math;

struct Calc;

impl Guest for Calc {
    fn add(a: u32, b: u32) -> u32 {
        math::add(a, b)
    }
    fn echo(bytes: Vec<u8>) -> Vec<u8> {
        math::echo(&bytes)
    }
    fn fail(message: String) {
        math::fail(&message);
    }
    fn loop_add(n: u32) -> u64 {
        (0..n).map(|i| u64::from(math::add(i, 1))).sum()
    }
    fn nap(ms: u64) -> u64 {
        math::nap(ms)
    }
}

export!(Calc);
