//! `acme:kv/store` over wasi:keyvalue: every key in the app's bucket `notes`, granted in
//! the manifest (`grants.keyvalue = { notes = "rw" }`). The same component runs on the
//! embedded store and on NATS JetStream; the manifest chooses.

wit_bindgen::generate!({ path: "../../wit/bucket-store", world: "bucket-store", generate_all });

use exports::acme::kv::store::Guest;
use wasi::keyvalue::store;

const BUCKET: &str = "notes";

fn text(e: store::Error) -> String {
    match e {
        store::Error::NoSuchStore => {
            format!("no bucket {BUCKET:?}: declare it under [app.keyvalue.buckets]")
        }
        store::Error::AccessDenied => {
            format!("bucket {BUCKET:?} is not granted to this module (grants.keyvalue)")
        }
        store::Error::Other(m) => m,
    }
}

fn bucket() -> Result<store::Bucket, String> {
    store::open(BUCKET).map_err(text)
}

struct Store;

impl Guest for Store {
    fn get(key: String) -> Option<String> {
        let value = bucket().ok()?.get(&key).ok()??;
        Some(String::from_utf8_lossy(&value).into_owned())
    }

    fn set(key: String, value: String) -> Result<(), String> {
        bucket()?.set(&key, value.as_bytes()).map_err(text)
    }

    fn keys() -> Vec<String> {
        let Ok(b) = bucket() else { return Vec::new() };
        let mut keys = Vec::new();
        let mut cursor = None;
        loop {
            let Ok(page) = b.list_keys(cursor) else { break };
            keys.extend(page.keys);
            match page.cursor {
                Some(c) => cursor = Some(c),
                None => break,
            }
        }
        keys.sort();
        keys
    }
}

export!(Store);
