//! The text plugin in Rust: the `membrane-examples:plugin/text` interface of
//! examples/plugins/wit, built for wasm32-wasip2 with the guests.

// The world also imports wasi:cli/environment (for the JavaScript plugin); `generate_all`
// makes bindings for it too, though std::env reaches it on its own.
wit_bindgen::generate!({ path: "../wit", world: "plugin", generate_all });

use exports::membrane_examples::plugin::text::{Guest, TextStats};

struct Text;

impl Guest for Text {
    fn name() -> String {
        "shout (rust)".into()
    }

    fn transform(input: String) -> String {
        let words: Vec<&str> = input.split_whitespace().rev().collect();
        words.join(" ").to_uppercase()
    }

    fn stats(input: String) -> TextStats {
        TextStats {
            chars: count(input.chars().count()),
            words: count(input.split_whitespace().count()),
            bytes: count(input.len()),
        }
    }

    fn env(key: String) -> Option<String> {
        std::env::var(key).ok()
    }

    fn allocate(megabytes: u32) -> u32 {
        let mut block = vec![0u8; megabytes as usize * 1024 * 1024];
        // Touch every page so the memory is really used.
        for i in (0..block.len()).step_by(4096) {
            block[i] = 1;
        }
        let filled = block
            .iter()
            .step_by(1024 * 1024)
            .map(|&b| u32::from(b))
            .sum();
        std::hint::black_box(&block);
        filled
    }

    fn spin() {
        loop {
            std::hint::black_box(());
        }
    }
}

/// Counts fit the WIT's u32 for any input a plugin can be given (at most 4 GiB of memory).
fn count(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

export!(Text);
