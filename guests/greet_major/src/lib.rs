//! A greet provider whose package is acme:greet@2.0.0 (a major version bump, same functions):
//! the upgrade gate refuses it for importers of 1.0.0.

wit_bindgen::generate!({ path: "../../wit/acme-greet-variants/major", world: "provider" });

#[path = "../../greet_v1/src/common.rs"]
mod common;

use common::Provider;
use exports::acme::greet::api::Guest;

const VERSION: &str = "v2-major";

impl Guest for Provider {
    fn hello(name: String) -> String {
        common::hello(VERSION, &name)
    }
    fn version() -> String {
        VERSION.into()
    }
}

export!(Provider);
