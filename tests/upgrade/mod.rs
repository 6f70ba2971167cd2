//! Live upgrade: generations, the gate, sessions, probation and rollback, state moves,
//! reloads, and the CLI triggers. Real guests in several versions (guests/greet_*,
//! guests/counter_*).

mod basics;
mod cli;
mod probation;
mod reload;
mod sessions;
mod snapshot;

use std::time::Duration;

use membrane::{App, AppSpec, ModuleSpec, RestartPolicy, UpgradePolicy, Val};

pub use crate::common::eventually;
use crate::common::{guests, runtime, text_of};

pub const API: &str = "acme:greet/api";
pub const FRONT: &str = "acme:greet/front";

/// The provider in one of its versions.
pub fn greet(component: &str) -> ModuleSpec {
    ModuleSpec::from_file(component)
}

/// An app of `front` (the importer) linked to `greet` (the provider, `provider`).
pub async fn linked(provider: ModuleSpec) -> App {
    let front = ModuleSpec::from_file(guests::GREET_FRONT)
        .link(API, "greet")
        .link("acme:greet/tally", "greet")
        .concurrency(1, 16);
    runtime()
        .load_spec(
            AppSpec::new()
                .module("front", front)
                .module("greet", provider),
        )
        .await
        .expect("the app loads")
}

/// `front`'s greet("x"), which calls greet's hello.
pub async fn hello(app: &App) -> membrane::Result<String> {
    let out = app
        .call(
            "front",
            &format!("{FRONT}#greet"),
            &[Val::String("x".into())],
        )
        .await?;
    Ok(text_of(&out[0]))
}

/// A probation long enough that it does not end during a test.
pub fn on_probation() -> UpgradePolicy {
    UpgradePolicy::default().probation(Duration::from_secs(600))
}

/// A circuit that opens after `max` failures.
pub fn circuit(max: u32) -> RestartPolicy {
    let mut p = RestartPolicy::default();
    p.max = max;
    p
}
