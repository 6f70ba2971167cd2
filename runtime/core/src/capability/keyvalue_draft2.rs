//! `wasi:keyvalue@0.2.0-draft2`, the version Spin's guests import, on the same grants,
//! store and bucket handles as `0.2.0-draft` ([`super::keyvalue`]): a guest built for
//! either runs unchanged, and both see the same data.
//!
//! What this version adds: `list-keys` pages by a key (the last one of the page before),
//! `increment` takes and returns a signed number, and compare-and-swap: `cas.new` reads a
//! key's value and revision, `swap` writes only if the revision is still the same, and a
//! lost race answers `cas-failed` with a fresh handle (on NATS the revision is the stream
//! sequence the server checks, so a swap is exact across hosts).

use std::sync::Arc;

use wasmtime::component::{Linker, Resource};

use super::keyvalue::{Bucket, HasKv, View, view};
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

/// `granted` in this version's error.
fn granted(
    v: &View<'_>,
    handle: &Resource<Bucket>,
    write: bool,
) -> wasmtime::Result<Result<(Arc<super::keyvalue::Grant>, String), store::Error>> {
    Ok(v.granted(handle, write)?.ok_or(store::Error::AccessDenied))
}

macro_rules! bucket {
    ($v:expr, $handle:expr, $write:expr) => {
        match granted($v, $handle, $write)? {
            Ok(b) => b,
            Err(e) => return Ok(Err(e)),
        }
    };
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
        let (g, name) = bucket!(self, &this, false);
        Ok(self
            .wait(g.store.get(&name, &key))
            .map(|e| e.map(|e| e.value))
            .map_err(other))
    }

    fn set(&mut self, this: Resource<Bucket>, key: String, value: Vec<u8>) -> Answer<()> {
        let (g, name) = bucket!(self, &this, true);
        Ok(self
            .wait(g.store.write(&name, Write::Set { key, value }))
            .map(|_| ())
            .map_err(other))
    }

    fn delete(&mut self, this: Resource<Bucket>, key: String) -> Answer<()> {
        let (g, name) = bucket!(self, &this, true);
        Ok(self
            .wait(g.store.write(&name, Write::Delete { key }))
            .map(|_| ())
            .map_err(other))
    }

    fn exists(&mut self, this: Resource<Bucket>, key: String) -> Answer<bool> {
        let (g, name) = bucket!(self, &this, false);
        Ok(self
            .wait(g.store.get(&name, &key))
            .map(|e| e.is_some())
            .map_err(other))
    }

    fn list_keys(
        &mut self,
        this: Resource<Bucket>,
        cursor: Option<String>,
    ) -> Answer<store::KeyResponse> {
        let (g, name) = bucket!(self, &this, false);
        // This version's cursor is the last key of the page before.
        Ok(self
            .wait(g.store.list(&name, cursor.as_deref(), MAX_PAGE))
            .map(|(keys, more)| {
                let cursor = if more { keys.last().cloned() } else { None };
                store::KeyResponse { keys, cursor }
            })
            .map_err(other))
    }

    fn drop(&mut self, this: Resource<Bucket>) -> wasmtime::Result<()> {
        self.table.delete(this)?;
        Ok(())
    }
}

impl atomics::Host for View<'_> {
    fn increment(&mut self, bucket: Resource<Bucket>, key: String, delta: i64) -> Answer<i64> {
        let (g, name) = bucket!(self, &bucket, true);
        Ok(
            match self.wait(g.store.write(&name, Write::Increment { key, delta })) {
                Ok(Written::Number(n)) => Ok(n),
                Ok(_) => Err(store::Error::Other("the store did not count".into())),
                Err(e) => Err(other(e)),
            },
        )
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
        let (g, name) = bucket!(self, &bucket, false);
        let writable = self.writable(&bucket)?;
        let read = match self.wait(g.store.get(&name, &key)) {
            Ok(e) => e,
            Err(e) => return Ok(Err(other(e))),
        };
        let handle = self.table.push(Cas {
            bucket: name,
            key,
            writable,
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
        let (g, name) = bucket!(self, &bucket, false);
        let mut out = Vec::with_capacity(keys.len());
        for key in keys {
            match self.wait(g.store.get(&name, &key)) {
                Ok(e) => out.push((key, e.map(|e| e.value))),
                Err(e) => return Ok(Err(other(e))),
            }
        }
        Ok(Ok(out))
    }

    fn set_many(
        &mut self,
        bucket: Resource<Bucket>,
        key_values: Vec<(String, Vec<u8>)>,
    ) -> Answer<()> {
        let (g, name) = bucket!(self, &bucket, true);
        for (key, value) in key_values {
            if let Err(e) = self.wait(g.store.write(&name, Write::Set { key, value })) {
                return Ok(Err(other(e)));
            }
        }
        Ok(Ok(()))
    }

    fn delete_many(&mut self, bucket: Resource<Bucket>, keys: Vec<String>) -> Answer<()> {
        let (g, name) = bucket!(self, &bucket, true);
        for key in keys {
            if let Err(e) = self.wait(g.store.write(&name, Write::Delete { key })) {
                return Ok(Err(other(e)));
            }
        }
        Ok(Ok(()))
    }
}
