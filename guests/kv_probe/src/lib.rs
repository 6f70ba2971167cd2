//! Uses wasi:keyvalue (0.2.0-draft): each function opens the bucket it names.

wit_bindgen::generate!({ path: "../../wit/kv-probe", world: "kv-probe", generate_all });

use exports::membrane_test::kv::probe::Guest;
use wasi::keyvalue::{atomics, batch, store};

struct Probe;

fn text(e: store::Error) -> String {
    match e {
        store::Error::NoSuchStore => "no-such-store".into(),
        store::Error::AccessDenied => "access-denied".into(),
        store::Error::Other(m) => format!("other: {m}"),
    }
}

fn open(bucket: &str) -> Result<store::Bucket, String> {
    store::open(bucket).map_err(text)
}

impl Guest for Probe {
    fn set(bucket: String, key: String, value: String) -> Result<(), String> {
        open(&bucket)?.set(&key, value.as_bytes()).map_err(text)
    }

    fn get(bucket: String, key: String) -> Result<Option<String>, String> {
        let v = open(&bucket)?.get(&key).map_err(text)?;
        Ok(v.map(|b| String::from_utf8_lossy(&b).into_owned()))
    }

    fn delete(bucket: String, key: String) -> Result<(), String> {
        open(&bucket)?.delete(&key).map_err(text)
    }

    fn exists(bucket: String, key: String) -> Result<bool, String> {
        open(&bucket)?.exists(&key).map_err(text)
    }

    fn keys(bucket: String, cursor: Option<u64>) -> Result<(Vec<String>, Option<u64>), String> {
        let r = open(&bucket)?.list_keys(cursor).map_err(text)?;
        Ok((r.keys, r.cursor))
    }

    fn increment(bucket: String, key: String, delta: u64) -> Result<u64, String> {
        let b = open(&bucket)?;
        atomics::increment(&b, &key, delta).map_err(text)
    }

    fn get_many(bucket: String, keys: Vec<String>) -> Result<Vec<Option<String>>, String> {
        let b = open(&bucket)?;
        let got = batch::get_many(&b, &keys).map_err(text)?;
        Ok(got
            .into_iter()
            .map(|o| o.map(|(_, v)| String::from_utf8_lossy(&v).into_owned()))
            .collect())
    }

    fn set_many(bucket: String, pairs: Vec<(String, String)>) -> Result<(), String> {
        let b = open(&bucket)?;
        let pairs: Vec<(String, Vec<u8>)> = pairs
            .into_iter()
            .map(|(k, v)| (k, v.into_bytes()))
            .collect();
        batch::set_many(&b, &pairs).map_err(text)
    }
}

export!(Probe);
