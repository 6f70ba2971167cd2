//! The near end of the test chain: what the tests call.

wit_bindgen::generate!({ path: "../../wit/chain", world: "front-world" });

use exports::membrane_test::chain::front::Guest;
use membrane_test::chain::relay;

struct Front;

impl Guest for Front {
    fn echo(s: String) -> String {
        format!("front:{}", relay::echo(&s))
    }
    fn add(a: u64, b: u64) -> u64 {
        relay::add(a, b)
    }
}

export!(Front);
