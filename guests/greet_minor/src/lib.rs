//! A greet provider of acme:greet@1.1.0 (a compatible minor upgrade: 1.0.0 plus `api.shout`):
//! `hello` answers "v1.1 hello <name>", `shout` the same in capitals.

wit_bindgen::generate!({ path: "../../wit/acme-greet-variants/minor", world: "provider" });

#[path = "../../greet_v1/src/common.rs"]
mod common;

use common::Provider;
use exports::acme::greet::api::Guest;

const VERSION: &str = "v1.1";

impl Guest for Provider {
    fn hello(name: String) -> String {
        common::hello(VERSION, &name)
    }
    fn version() -> String {
        VERSION.into()
    }
    fn shout(name: String) -> String {
        common::hello(VERSION, &name).to_uppercase()
    }
}

export!(Provider);
