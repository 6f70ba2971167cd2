//! The greet provider, version 1: `hello` answers "v1 hello <name>", `version` "v1", and each
//! tally counter bumps 1, 2, 3... Its `common.rs` is shared by the other greet_* providers.

wit_bindgen::generate!({ path: "../../wit/acme-greet", world: "provider" });

mod common;

use common::Provider;
use exports::acme::greet::api::Guest;

const VERSION: &str = "v1";

impl Guest for Provider {
    fn hello(name: String) -> String {
        common::hello(VERSION, &name)
    }
    fn version() -> String {
        VERSION.into()
    }
}

export!(Provider);
