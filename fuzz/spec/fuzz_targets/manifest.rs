//! The manifest parser on arbitrary text: it must return a value or an error, never panic.

#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = membrane_spec::Manifest::parse(text, Path::new("fuzz.toml"), Path::new("/nonexistent"));
    }
});
