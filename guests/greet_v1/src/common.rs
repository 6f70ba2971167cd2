//! What every greet provider shares (included by the others with `#[path]`): the tally
//! counter, and the greeting of a version. The including crate generates its bindings at its
//! root, so `crate::exports` is its own `acme:greet` package, whatever the version.

use std::cell::Cell;

use crate::exports::acme::greet::tally::{Guest, GuestCounter};

/// The provider; each crate implements `api` for it and exports it.
pub struct Provider;

impl Guest for Provider {
    type Counter = Counter;
}

/// A tally counter: 1, 2, 3... per resource.
pub struct Counter {
    n: Cell<u32>,
}

impl GuestCounter for Counter {
    fn new() -> Self {
        Counter { n: Cell::new(0) }
    }
    fn bump(&self) -> u32 {
        self.n.set(self.n.get() + 1);
        self.n.get()
    }
}

/// "<version> hello <name>". A name with `log-` in it is also written to stderr (a
/// line for the telemetry tests to find in the guest log).
#[allow(dead_code)] // greet_dropped has no hello, greet_broken traps in it
pub fn hello(version: &str, name: &str) -> String {
    if name.contains("log-") {
        eprintln!("greeting {name}");
    }
    format!("{version} hello {name}")
}
