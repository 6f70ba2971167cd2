//! Uses wasi:keyvalue 0.2.0-draft2, as Spin's guests do: each function opens the bucket it
//! names.

wit_bindgen::generate!({ path: "../../wit/kv-probe2", world: "kv-probe2", generate_all });

use exports::membrane_test::kv2::probe::Guest;
use wasi::keyvalue::{atomics, batch, store};

struct Probe;

fn text(e: store::Error) -> String {
    match e {
        store::Error::NoSuchStore => "no-such-store".into(),
        store::Error::AccessDenied => "access-denied".into(),
        store::Error::Other(m) => format!("other: {m}"),
    }
}

fn cas_text(e: atomics::CasError) -> String {
    match e {
        atomics::CasError::StoreError(e) => text(e),
        atomics::CasError::CasFailed(_) => "cas-failed".into(),
    }
}

fn open(bucket: &str) -> Result<store::Bucket, String> {
    store::open(bucket).map_err(text)
}

fn string(v: Vec<u8>) -> String {
    String::from_utf8_lossy(&v).into_owned()
}

impl Guest for Probe {
    fn set(bucket: String, key: String, value: String) -> Result<(), String> {
        open(&bucket)?.set(&key, value.as_bytes()).map_err(text)
    }

    fn get(bucket: String, key: String) -> Result<Option<String>, String> {
        Ok(open(&bucket)?.get(&key).map_err(text)?.map(string))
    }

    fn delete(bucket: String, key: String) -> Result<(), String> {
        open(&bucket)?.delete(&key).map_err(text)
    }

    fn keys(
        bucket: String,
        cursor: Option<String>,
    ) -> Result<(Vec<String>, Option<String>), String> {
        let r = open(&bucket)?.list_keys(cursor.as_deref()).map_err(text)?;
        Ok((r.keys, r.cursor))
    }

    fn increment(bucket: String, key: String, delta: i64) -> Result<i64, String> {
        atomics::increment(&open(&bucket)?, &key, delta).map_err(text)
    }

    fn get_many(
        bucket: String,
        keys: Vec<String>,
    ) -> Result<Vec<(String, Option<String>)>, String> {
        let got = batch::get_many(&open(&bucket)?, &keys).map_err(text)?;
        Ok(got.into_iter().map(|(k, v)| (k, v.map(string))).collect())
    }

    fn cas_append(bucket: String, key: String, suffix: String) -> Result<u32, String> {
        let b = open(&bucket)?;
        let mut cas = atomics::Cas::new(&b, &key).map_err(text)?;
        for tries in 1.. {
            let mut value = cas.current().map_err(text)?.unwrap_or_default();
            value.extend_from_slice(suffix.as_bytes());
            match atomics::swap(cas, &value) {
                Ok(()) => return Ok(tries),
                Err(atomics::CasError::CasFailed(fresh)) => cas = fresh,
                Err(e) => return Err(cas_text(e)),
            }
        }
        unreachable!()
    }

    fn cas_race(
        bucket: String,
        key: String,
        interleave: String,
        value: String,
    ) -> Result<Option<String>, String> {
        let b = open(&bucket)?;
        let cas = atomics::Cas::new(&b, &key).map_err(text)?;
        b.set(&key, interleave.as_bytes()).map_err(text)?;
        let fresh = match atomics::swap(cas, value.as_bytes()) {
            Ok(()) => return Err("the stale swap succeeded".into()),
            Err(atomics::CasError::CasFailed(fresh)) => fresh,
            Err(e) => return Err(cas_text(e)),
        };
        let seen = fresh.current().map_err(text)?.map(string);
        atomics::swap(fresh, value.as_bytes()).map_err(cas_text)?;
        Ok(seen)
    }
}

export!(Probe);
