//! A counter kept in a static, version 1: `incr` adds 1, `version` is "v1"; it exports
//! membrane:lifecycle/snapshot (the count as 8 little-endian bytes), so its count moves across
//! an upgrade. Its `common.rs` is shared by the other counter_* guests.

wit_bindgen::generate!({
    path: ["../../wit/membrane-lifecycle", "../../wit/acme-counter"],
    world: "acme:counter/counter",
});

mod common;

use exports::acme::counter::api::Guest;

const VERSION: &str = "v1";

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
