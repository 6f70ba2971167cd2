//! `wasi:keyvalue@0.2.0-draft2`, the version Spin's guests import, on the same grants,
//! store and bucket handles as `0.2.0-draft` ([`super::keyvalue`]): a guest built for
//! either runs unchanged, and both see the same data.
//!
//! What this version adds: `list-keys` pages by a key (the last one of the page before),
//! `increment` takes and returns a signed number, and compare-and-swap: `cas.new` reads a
//! key's value and revision, `swap` writes only if the revision is still the same, and a
//! lost race answers `cas-failed` with a fresh handle (on NATS the revision is the stream
//! sequence the server checks, so a swap is exact across hosts).

use wasmtime::component::{Linker, Resource};

use super::keyvalue::{Bucket, Failed, HasKv, Op, View, view};
use crate::instance::HostState;
use crate::keyvalue::backend::{Entry, KvError, MAX_PAGE, Write, Written};

mod bindings {
    wasmtime::component::bindgen!({
        path: "../../wit/wasi-keyvalue-draft2",
        world: "wasi:keyvalue/imports@0.2.0-draft2",
        with: {
            "wasi:keyvalue/store.bucket": crate::capability::keyvalue::Bucket,
            "wasi:keyvalue/atomics.cas": super::Cas,
        },
        imports: { default: trappable },
    });
}

use bindings::wasi::keyvalue::{atomics, batch, store};

/// A compare-and-swap in progress: the key's entry as it was read.
pub struct Cas {
    bucket: String,
    key: String,
    /// Whether the bucket was granted read-write (a swap writes).
    writable: bool,
    read: Option<Entry>,
}

/// Links the interfaces into `linker`.
pub fn add_to_linker(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    bindings::Imports::add_to_linker::<HostState, HasKv>(linker, view)
}

type Answer<T> = wasmtime::Result<Result<T, store::Error>>;

fn other(e: KvError) -> store::Error {
    match e {
        KvError::NoSuchBucket(_) => store::Error::NoSuchStore,
        e => store::Error::Other(e.to_string()),
    }
}

/// A shared operation's answer in this version's error.
fn answer<T>(op: Op<T>) -> Answer<T> {
    Ok(op?.map_err(|f| match f {
        Failed::Denied => store::Error::AccessDenied,
        Failed::Store(e) => other(e),
    }))
}

impl store::Host for View<'_> {
    fn open(&mut self, identifier: String) -> Answer<Resource<Bucket>> {
        Ok(self
            .open_granted(identifier)?
            .ok_or(store::Error::AccessDenied))
    }
}

impl store::HostBucket for View<'_> {
    fn get(&mut self, this: Resource<Bucket>, key: String) -> Answer<Option<Vec<u8>>> {
        answer(self.get_value(&this, &key))
    }

    fn set(&mut self, this: Resource<Bucket>, key: String, value: Vec<u8>) -> Answer<()> {
        answer(self.write_each(&this, [Write::Set { key, value }]))
    }

    fn delete(&mut self, this: Resource<Bucket>, key: String) -> Answer<()> {
        answer(self.write_each(&this, [Write::Delete { key }]))
    }

    fn exists(&mut self, this: Resource<Bucket>, key: String) -> Answer<bool> {
        Ok(answer(self.get_value(&this, &key))?.map(|v| v.is_some()))
    }

    fn list_keys(
        &mut self,
        this: Resource<Bucket>,
        cursor: Option<String>,
    ) -> Answer<store::KeyResponse> {
        // This version's cursor is the last key of the page before.
        Ok(
            answer(self.page(&this, cursor.as_deref(), MAX_PAGE))?.map(|(keys, more)| {
                let cursor = if more { keys.last().cloned() } else { None };
                store::KeyResponse { keys, cursor }
            }),
        )
    }

    fn drop(&mut self, this: Resource<Bucket>) -> wasmtime::Result<()> {
        self.table.delete(this)?;
        Ok(())
    }
}

impl atomics::Host for View<'_> {
    fn increment(&mut self, bucket: Resource<Bucket>, key: String, delta: i64) -> Answer<i64> {
        answer(self.count(&bucket, key, delta))
    }

    fn swap(
        &mut self,
        cas: Resource<Cas>,
        value: Vec<u8>,
    ) -> wasmtime::Result<Result<(), atomics::CasError>> {
        let c = self.table.delete(cas)?;
        if !c.writable {
            self.denied(format!(
                "a swap in bucket {:?}, granted read-only",
                c.bucket
            ));
            return Ok(Err(atomics::CasError::StoreError(
                store::Error::AccessDenied,
            )));
        }
        let Some(grant) = self.grant.cloned() else {
            return Ok(Err(atomics::CasError::StoreError(
                store::Error::AccessDenied,
            )));
        };
        let write = Write::Swap {
            key: c.key.clone(),
            value,
            revision: c.read.as_ref().map(|e| e.revision),
        };
        match self.wait(grant.store.write(&c.bucket, write)) {
            Ok(Written::Conflict(now)) => {
                // Lost the race: a handle on the entry as it is now, for the retry.
                let fresh = self.table.push(Cas { read: now, ..c })?;
                Ok(Err(atomics::CasError::CasFailed(fresh)))
            }
            Ok(_) => Ok(Ok(())),
            Err(e) => Ok(Err(atomics::CasError::StoreError(other(e)))),
        }
    }
}

impl atomics::HostCas for View<'_> {
    fn new(&mut self, bucket: Resource<Bucket>, key: String) -> Answer<Resource<Cas>> {
        let read = match answer(self.get_entry(&bucket, &key))? {
            Ok(read) => read,
            Err(e) => return Ok(Err(e)),
        };
        let handle = self.table.push(Cas {
            bucket: self.table.get(&bucket)?.name().to_string(),
            key,
            writable: self.writable(&bucket)?,
            read,
        })?;
        Ok(Ok(handle))
    }

    fn current(&mut self, this: Resource<Cas>) -> Answer<Option<Vec<u8>>> {
        let c = self.table.get(&this)?;
        Ok(Ok(c.read.as_ref().map(|e| e.value.clone())))
    }

    fn drop(&mut self, this: Resource<Cas>) -> wasmtime::Result<()> {
        self.table.delete(this)?;
        Ok(())
    }
}

impl batch::Host for View<'_> {
    fn get_many(
        &mut self,
        bucket: Resource<Bucket>,
        keys: Vec<String>,
    ) -> Answer<Vec<(String, Option<Vec<u8>>)>> {
        answer(self.get_each(&bucket, keys))
    }

    fn set_many(
        &mut self,
        bucket: Resource<Bucket>,
        key_values: Vec<(String, Vec<u8>)>,
    ) -> Answer<()> {
        let writes = key_values
            .into_iter()
            .map(|(key, value)| Write::Set { key, value });
        answer(self.write_each(&bucket, writes))
    }

    fn delete_many(&mut self, bucket: Resource<Bucket>, keys: Vec<String>) -> Answer<()> {
        let writes = keys.into_iter().map(|key| Write::Delete { key });
        answer(self.write_each(&bucket, writes))
    }
}
