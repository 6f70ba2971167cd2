//! Small functions to measure call costs, and a markdown renderer to measure compute.

wit_bindgen::generate!({ path: "../../wit/bench", world: "provider" });

use std::cell::Cell;

use exports::membrane_bench::calls::api::Guest;
use exports::membrane_bench::calls::res::{Guest as ResGuest, GuestCounter};

struct Provider;

impl Guest for Provider {
    fn inc(x: u64) -> u64 {
        x.wrapping_add(1)
    }
    fn echo(s: String) -> String {
        s
    }
    fn markdown(src: String) -> String {
        let mut html = String::with_capacity(src.len() * 2);
        pulldown_cmark::html::push_html(&mut html, pulldown_cmark::Parser::new(&src));
        html
    }
}

struct Counter(Cell<u64>);

impl GuestCounter for Counter {
    fn new(start: u64) -> Self {
        Counter(Cell::new(start))
    }
    fn bump(&self) -> u64 {
        self.0.set(self.0.get().wrapping_add(1));
        self.0.get()
    }
}

impl ResGuest for Provider {
    type Counter = Counter;
}

export!(Provider);
