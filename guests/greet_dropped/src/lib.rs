//! A greet provider of acme:greet@1.0.0 without `api.hello`: the upgrade gate refuses it for
//! importers that use hello.

wit_bindgen::generate!({ path: "../../wit/acme-greet-variants/dropped", world: "provider" });

#[path = "../../greet_v1/src/common.rs"]
mod common;

use common::Provider;
use exports::acme::greet::api::Guest;

const VERSION: &str = "v1-dropped";

impl Guest for Provider {
    fn version() -> String {
        VERSION.into()
    }
}

export!(Provider);
