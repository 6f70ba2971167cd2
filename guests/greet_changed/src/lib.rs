//! A greet provider of acme:greet@1.0.0 whose `api.hello` takes a u32, not a string: the
//! upgrade gate refuses it (a changed type).

wit_bindgen::generate!({ path: "../../wit/acme-greet-variants/changed", world: "provider" });

#[path = "../../greet_v1/src/common.rs"]
mod common;

use common::Provider;
use exports::acme::greet::api::Guest;

const VERSION: &str = "v1-changed";

impl Guest for Provider {
    fn hello(name: u32) -> String {
        common::hello(VERSION, &name.to_string())
    }
    fn version() -> String {
        VERSION.into()
    }
}

export!(Provider);
