//! A key-value store kept as files in the directory granted at /data.

wit_bindgen::generate!({ path: "../../wit/acme-kv", world: "kv-provider" });

use exports::acme::kv::store::Guest;

const DIR: &str = "/data";

/// Keys become file names; hex keeps any key a valid, flat name.
fn file_of(key: &str) -> String {
    let hex: String = key.bytes().map(|b| format!("{b:02x}")).collect();
    format!("{DIR}/{hex}.val")
}

fn key_of(file: &str) -> Option<String> {
    let hex = file.strip_suffix(".val")?;
    let bytes: Option<Vec<u8>> = (0..hex.len())
        .step_by(2)
        .map(|i| {
            hex.get(i..i + 2)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        })
        .collect();
    String::from_utf8(bytes?).ok()
}

struct Store;

impl Guest for Store {
    fn get(key: String) -> Option<String> {
        std::fs::read_to_string(file_of(&key)).ok()
    }
    fn set(key: String, value: String) -> Result<(), String> {
        std::fs::write(file_of(&key), value).map_err(|e| format!("cannot store {key:?}: {e}"))
    }
    fn keys() -> Vec<String> {
        let mut keys: Vec<String> = std::fs::read_dir(DIR)
            .map(|entries| {
                entries
                    .filter_map(|e| e.ok())
                    .filter_map(|e| key_of(&e.file_name().to_string_lossy()))
                    .collect()
            })
            .unwrap_or_default();
        keys.sort();
        keys
    }
}

export!(Store);
