//! Small functions to measure call costs, and a markdown renderer to measure compute.

wit_bindgen::generate!({ path: "../../wit/bench", world: "provider" });

use exports::membrane_bench::calls::api::Guest;

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

export!(Provider);
