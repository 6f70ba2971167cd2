//! A broken greet provider: `hello` traps on every call; `version` ("broken") and the tally
//! counter work, so a share of calls fails.

wit_bindgen::generate!({ path: "../../wit/acme-greet", world: "provider" });

#[path = "../../greet_v1/src/common.rs"]
mod common;

use common::Provider;
use exports::acme::greet::api::Guest;

const VERSION: &str = "broken";

impl Guest for Provider {
    fn hello(_name: String) -> String {
        // A trap without a panic message, so a load test does not fill the log.
        core::arch::wasm32::unreachable()
    }
    fn version() -> String {
        VERSION.into()
    }
}

export!(Provider);
