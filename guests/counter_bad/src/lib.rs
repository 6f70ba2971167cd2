//! A counter whose `restore` traps on every call: an upgrade to it is a failed gate and keeps
//! the old state. `save` works.

wit_bindgen::generate!({
    path: ["../../wit/membrane-lifecycle", "../../wit/acme-counter"],
    world: "acme:counter/counter",
});

#[path = "../../counter_v1/src/common.rs"]
mod common;

use exports::acme::counter::api::Guest;

const VERSION: &str = "bad";

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

impl exports::membrane::lifecycle::snapshot::Guest for Counter {
    fn save() -> Vec<u8> {
        common::save()
    }
    fn restore(_state: Vec<u8>) {
        core::arch::wasm32::unreachable()
    }
}

export!(Counter);
