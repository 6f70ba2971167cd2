//! The importer of the live-upgrade tests: calls acme:greet/api and keeps an acme:greet/tally
//! counter (a resource session with the provider) in its instance.

wit_bindgen::generate!({ path: "../../wit/acme-greet", world: "front-world" });

use std::cell::RefCell;
use std::time::Duration;

use acme::greet::api;
use acme::greet::tally::Counter;
use exports::acme::greet::front::Guest;

thread_local! {
    /// The counter `open` made; it lives as long as this instance.
    static KEPT: RefCell<Option<Counter>> = const { RefCell::new(None) };
}

struct Front;

impl Guest for Front {
    fn greet(name: String) -> String {
        api::hello(&name)
    }
    fn twice(name: String, pause_ms: u32) -> Vec<String> {
        let first = api::hello(&name);
        std::thread::sleep(Duration::from_millis(pause_ms.into()));
        vec![first, api::hello(&name)]
    }
    fn open() {
        KEPT.with(|k| *k.borrow_mut() = Some(Counter::new()));
    }
    fn bump() -> String {
        let n = KEPT.with(|k| k.borrow_mut().get_or_insert_with(Counter::new).bump());
        format!("{}:{n}", api::version())
    }
    fn crash() {
        core::arch::wasm32::unreachable()
    }
}

export!(Front);
