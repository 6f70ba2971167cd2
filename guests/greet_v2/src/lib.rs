//! The greet provider, version 2: `hello` answers "v2 hello <name>", `version` "v2".

wit_bindgen::generate!({ path: "../../wit/acme-greet", world: "provider" });

#[path = "../../greet_v1/src/common.rs"]
mod common;

use common::Provider;
use exports::acme::greet::api::Guest;

const VERSION: &str = "v2";

impl Guest for Provider {
    fn hello(name: String) -> String {
        common::hello(VERSION, &name)
    }
    fn version() -> String {
        VERSION.into()
    }
}

export!(Provider);
