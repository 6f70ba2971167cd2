//! The counter, version 2: as counter_v1 (`incr` adds 1, the same 8-byte snapshot) but
//! `version` is "v2".

wit_bindgen::generate!({
    path: ["../../wit/membrane-lifecycle", "../../wit/acme-counter"],
    world: "acme:counter/counter",
});

#[path = "../../counter_v1/src/common.rs"]
mod common;

use exports::acme::counter::api::Guest;

const VERSION: &str = "v2";

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
    fn restore(state: Vec<u8>) {
        common::restore(&state)
    }
}

export!(Counter);
