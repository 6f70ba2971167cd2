//! The counter without membrane:lifecycle/snapshot (`version` is "plain"): an upgrade to or
//! from it starts at 0, its state not moved.

wit_bindgen::generate!({
    path: ["../../wit/membrane-lifecycle", "../../wit/acme-counter"],
    world: "acme:counter/plain",
});

#[path = "../../counter_v1/src/common.rs"]
mod common;

use exports::acme::counter::api::Guest;

const VERSION: &str = "plain";

struct Counter;

impl Guest for Counter {
    fn incr() -> u32 {
        common::incr()
    }
    fn get() -> u32 {
        common::get()
    }
    fn version() -> String {
        VERSION.into()
    }
}

export!(Counter);
