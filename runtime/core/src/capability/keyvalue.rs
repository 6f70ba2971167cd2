//! `grants.keyvalue`: the app's buckets a module may open through `wasi:keyvalue`
//! (`0.2.0-draft`: store, atomics, batch, the version of wasmtime's and wasmCloud's guests;
//! Spin's `0.2.0-draft2` is [`super::keyvalue_draft2`], on the same grants and handles).
//!
//! `open` of a bucket the module is not granted is `access-denied` (whether or not the app
//! has it), and so is a write to a bucket granted read-only; each denial is an event on
//! `membrane::audit` and one more in `membrane_denials_total{capability="keyvalue"}`. A write
//! past a bucket's quota fails inside the guest with `other` saying which limit, and the
//! module goes on. The data lives in the app's store (`crate::keyvalue`), so it outlives
//! instances, generations and upgrades.
//!
//! These host functions are synchronous: a write waits for its group commit on the calling
//! thread (on the async path too, where it holds the executor's thread for that long).

use std::any::Any;
use std::collections::BTreeMap;
use std::sync::Arc;

use wasmtime::component::{HasData, Linker, Resource, ResourceTable};

use crate::error::{Error, Problems};
use crate::instance::HostState;
use crate::keyvalue::backend::{
    Backend, Entry, KvError, MAX_PAGE, Pending, Write, Written, wait_until,
};
use crate::metrics::{Capability, ModuleMetrics};
use crate::spec::BucketAccess;
use crate::unit::{ModuleCx, Slots, Unit, UnitDef};

mod bindings {
    wasmtime::component::bindgen!({
        path: "../../wit/wasi-keyvalue-draft",
        world: "wasi:keyvalue/imports",
        with: { "wasi:keyvalue/store.bucket": super::Bucket },
        imports: { default: trappable },
    });
}

use bindings::wasi::keyvalue::{atomics, batch, store};

pub const DEF: UnitDef = UnitDef { validate, prepare };

fn validate(_: &ModuleCx<'_>, _: &mut Problems) {
    // The buckets named are checked against the app's (`crate::keyvalue::check`).
}

fn prepare(cx: &ModuleCx<'_>, problems: &mut Problems) -> Option<Box<dyn Unit>> {
    let grants = &cx.spec.grants.keyvalue;
    if grants.is_empty() {
        return None;
    }
    let Some(store) = cx.keyvalue.clone() else {
        problems.push(
            Error::manifest(format!(
                "module `{}` is granted buckets, but the app's store is not open here; declare them under [app.keyvalue.buckets] with a path",
                cx.name
            ))
            .with_key(cx.key("grants.keyvalue")),
        );
        return None;
    };
    Some(Box::new(KeyValue {
        grant: Arc::new(Grant {
            store,
            buckets: grants.clone(),
        }),
    }))
}

/// What one module may open, and where.
pub struct Grant {
    pub(super) store: Arc<dyn Backend>,
    buckets: BTreeMap<String, BucketAccess>,
}

#[derive(Debug)]
struct KeyValue {
    grant: Arc<Grant>,
}

impl std::fmt::Debug for Grant {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_map().entries(self.buckets.iter()).finish()
    }
}

impl Unit for KeyValue {
    fn new_state(&self) -> Option<Box<dyn Any + Send>> {
        Some(Box::new(self.grant.clone()))
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}

/// An open bucket, behind a guest's handle.
pub struct Bucket {
    name: String,
    access: BucketAccess,
}

impl Bucket {
    /// The bucket's name.
    pub fn name(&self) -> &str {
        &self.name
    }
}

/// The host side of the interfaces for one call: the instance's table and its grant.
pub struct View<'a> {
    pub(super) table: &'a mut ResourceTable,
    pub(super) grant: Option<&'a Arc<Grant>>,
    /// The running call's deadline: no wait for the store outlasts it.
    deadline: std::time::Instant,
    metrics: &'a Arc<ModuleMetrics>,
}

pub(super) struct HasKv;

impl HasData for HasKv {
    type Data<'a> = View<'a>;
}

pub(super) fn view(state: &mut HostState) -> View<'_> {
    let deadline = state.deadline;
    let (table, slots, metrics): (&mut ResourceTable, &Slots, _) = state.table_and_slots();
    View {
        table,
        grant: slots.get::<Arc<Grant>>(),
        metrics,
        deadline,
    }
}

/// Links this version's interfaces into `linker` (`0.2.0-draft2` links its own, on the
/// same state).
pub fn add_to_linker(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    bindings::Imports::add_to_linker::<HostState, HasKv>(linker, view)
}

fn other(e: KvError) -> store::Error {
    match e {
        KvError::NoSuchBucket(_) => store::Error::NoSuchStore,
        e => store::Error::Other(e.to_string()),
    }
}

impl View<'_> {
    /// Waits for the store's answer, no longer than the call may run.
    pub(super) fn wait<T>(&self, f: Pending<'_, T>) -> Result<T, KvError> {
        wait_until(f, Some(self.deadline))
    }

    /// Counts and audits a denial.
    pub(super) fn denied(&self, what: String) {
        self.metrics.denied(Capability::KeyValue, &what);
    }

    /// Opens bucket `identifier` for the guest if it was granted; `None` (counted,
    /// audited) otherwise. Both interface versions open buckets this way.
    pub(super) fn open_granted(
        &mut self,
        identifier: String,
    ) -> wasmtime::Result<Option<Resource<Bucket>>> {
        let access = self.grant.and_then(|g| g.buckets.get(&identifier).copied());
        let Some(access) = access else {
            self.denied(format!("bucket {identifier:?}, not granted"));
            return Ok(None);
        };
        Ok(Some(self.table.push(Bucket {
            name: identifier,
            access,
        })?))
    }

    /// The store and bucket name behind a handle, for an operation that writes when
    /// `write`; `None` (counted, audited) when its grant does not allow it.
    pub(super) fn granted(
        &self,
        handle: &Resource<Bucket>,
        write: bool,
    ) -> wasmtime::Result<Option<(Arc<Grant>, String)>> {
        let b = self.table.get(handle)?;
        let Some(grant) = self.grant else {
            return Ok(None);
        };
        if write && b.access == BucketAccess::ReadOnly {
            self.denied(format!("a write to bucket {:?}, granted read-only", b.name));
            return Ok(None);
        }
        Ok(Some((grant.clone(), b.name.clone())))
    }

    /// Whether the bucket behind a handle was granted read-write (nothing counted).
    pub(super) fn writable(&self, handle: &Resource<Bucket>) -> wasmtime::Result<bool> {
        Ok(self.table.get(handle)?.access == BucketAccess::ReadWrite)
    }

    /// Runs `op` on the bucket behind `handle` if its grant allows (a write when `write`).
    fn on<T>(
        &self,
        handle: &Resource<Bucket>,
        write: bool,
        op: impl FnOnce(&Self, &Grant, &str) -> Result<T, KvError>,
    ) -> Op<T> {
        let Some((g, name)) = self.granted(handle, write)? else {
            return Ok(Err(Failed::Denied));
        };
        Ok(op(self, &g, &name).map_err(Failed::Store))
    }

    // The operations both interface versions make, each version answering in its own types.

    /// The key's entry (its value and revision).
    pub(super) fn get_entry(&self, handle: &Resource<Bucket>, key: &str) -> Op<Option<Entry>> {
        self.on(handle, false, |v, g, name| v.wait(g.store.get(name, key)))
    }

    /// The key's value.
    pub(super) fn get_value(&self, handle: &Resource<Bucket>, key: &str) -> Op<Option<Vec<u8>>> {
        Ok(self.get_entry(handle, key)?.map(|e| e.map(|e| e.value)))
    }

    /// Each key with its value, in order.
    pub(super) fn get_each(
        &self,
        handle: &Resource<Bucket>,
        keys: Vec<String>,
    ) -> Op<Vec<(String, Option<Vec<u8>>)>> {
        self.on(handle, false, |v, g, name| {
            keys.into_iter()
                .map(|key| {
                    let value = v.wait(g.store.get(name, &key))?.map(|e| e.value);
                    Ok((key, value))
                })
                .collect()
        })
    }

    /// Up to `limit` keys after `after`, and whether more follow.
    pub(super) fn page(
        &self,
        handle: &Resource<Bucket>,
        after: Option<&str>,
        limit: usize,
    ) -> Op<(Vec<String>, bool)> {
        self.on(handle, false, |v, g, name| {
            v.wait(g.store.list(name, after, limit))
        })
    }

    /// Makes the writes one after another (the interfaces' batches are not atomic); the
    /// first failure ends them.
    pub(super) fn write_each(
        &self,
        handle: &Resource<Bucket>,
        writes: impl IntoIterator<Item = Write>,
    ) -> Op<()> {
        self.on(handle, true, |v, g, name| {
            writes
                .into_iter()
                .try_for_each(|w| v.wait(g.store.write(name, w)).map(|_| ()))
        })
    }

    /// Adds `delta` to the key's number; the sum.
    pub(super) fn count(&self, handle: &Resource<Bucket>, key: String, delta: i64) -> Op<i64> {
        self.on(handle, true, |v, g, name| {
            match v.wait(g.store.write(name, Write::Increment { key, delta }))? {
                Written::Number(n) => Ok(n),
                _ => Err(KvError::Unavailable("the store did not count".into())),
            }
        })
    }
}

/// Why a shared operation failed, before a version words it.
pub(super) enum Failed {
    /// The grant does not allow it (counted and audited already).
    Denied,
    /// The store refused or failed.
    Store(KvError),
}

/// What a shared operation answers.
pub(super) type Op<T> = wasmtime::Result<Result<T, Failed>>;

/// `op`'s answer in this version's error.
fn answer<T>(op: Op<T>) -> Answer<T> {
    Ok(op?.map_err(|f| match f {
        Failed::Denied => store::Error::AccessDenied,
        Failed::Store(e) => other(e),
    }))
}

type Answer<T> = wasmtime::Result<Result<T, store::Error>>;

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
        cursor: Option<u64>,
    ) -> Answer<store::KeyResponse> {
        // This version's cursor is a position: the keys before it are skipped page by page.
        let skip = cursor.unwrap_or(0);
        let mut after: Option<String> = None;
        let mut skipped = 0u64;
        loop {
            let want = if skipped < skip {
                (skip - skipped).min(MAX_PAGE as u64) as usize
            } else {
                MAX_PAGE
            };
            let (keys, more) = match answer(self.page(&this, after.as_deref(), want))? {
                Ok(page) => page,
                Err(e) => return Ok(Err(e)),
            };
            if skipped < skip {
                skipped += keys.len() as u64;
                after = keys.last().cloned();
                if !more {
                    return Ok(Ok(store::KeyResponse {
                        keys: Vec::new(),
                        cursor: None,
                    }));
                }
                continue;
            }
            let next = more.then(|| skip + keys.len() as u64);
            return Ok(Ok(store::KeyResponse { keys, cursor: next }));
        }
    }

    fn drop(&mut self, this: Resource<Bucket>) -> wasmtime::Result<()> {
        self.table.delete(this)?;
        Ok(())
    }
}

impl atomics::Host for View<'_> {
    fn increment(&mut self, bucket: Resource<Bucket>, key: String, delta: u64) -> Answer<u64> {
        let Ok(delta) = i64::try_from(delta) else {
            return Ok(Err(store::Error::Other(format!(
                "a delta of {delta} is past the range of a 64-bit integer"
            ))));
        };
        Ok(answer(self.count(&bucket, key, delta))?.and_then(|n| {
            u64::try_from(n).map_err(|_| {
                store::Error::Other(format!(
                    "the value is {n}, which this version's unsigned counter cannot return"
                ))
            })
        }))
    }
}

impl batch::Host for View<'_> {
    fn get_many(
        &mut self,
        bucket: Resource<Bucket>,
        keys: Vec<String>,
    ) -> Answer<Vec<Option<(String, Vec<u8>)>>> {
        // This version answers a pair per key found, nothing for one absent.
        Ok(answer(self.get_each(&bucket, keys))?
            .map(|found| found.into_iter().map(|(k, v)| v.map(|v| (k, v))).collect()))
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
