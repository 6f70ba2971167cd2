//! WASI functions that take host resources, wrapped so that the `files` limit and the disk
//! quotas are enforced before wasmtime-wasi does the work.
//!
//! The wrappers replace (shadow) wasmtime-wasi's own definitions in the runtime's linkers
//! (one for synchronous calls, [`sync`], one for calls on a fiber, [`async_`]) and then
//! call wasmtime-wasi's implementation, so the guest sees the same interfaces and the same
//! behaviour, except that an open past the limit or a write past the quota fails with a WASI
//! error code:
//!
//! | function | checked |
//! |---|---|
//! | `preopens.get-directories` | remembers which handles are grants (not counted as files; carry a quota) |
//! | `descriptor.open-at` | `files`; a created file is charged to its grant's quota |
//! | `descriptor.read-directory` | `files` (a listing holds a descriptor) |
//! | `tcp-create-socket.create-tcp-socket` | `files` |
//! | `descriptor.write`, `write-via-stream`, `append-via-stream` | the quota (streams are wrapped) |
//! | `descriptor.create-directory-at`, `symlink-at`, `link-at` | the quota's count of names |
//!
//! The WASI 0.3 functions of the same names are wrapped alike ([`p3`]; 0.3 has no
//! `descriptor.write` and writes through streams only).

pub mod async_;
#[cfg(feature = "p3")]
pub mod p3;
pub mod sync;

use std::sync::Arc;

use wasmtime::StoreContextMut;
use wasmtime::component::{Resource, ResourceTable};
use wasmtime_wasi::WasiView;
use wasmtime_wasi::filesystem::Descriptor;
use wasmtime_wasi::p2::{DynOutputStream, OutputStream, Pollable, StreamError, StreamResult};

use super::quota::{Quota, QuotaMap, QuotaStream};
use crate::limits::files::OpenFiles;

/// The version of the WASI 0.2 interfaces wasmtime-wasi defines; guests importing any
/// 0.2.x version are served by them.
pub const WASI: &str = "0.2.12";

/// What the wrappers need from a Store's data.
pub trait Guarded: WasiView + 'static {
    /// The instance's open-file count and quota map (when its module has them), and its
    /// resource table.
    fn guards(
        &mut self,
    ) -> (
        Option<&mut OpenFiles>,
        Option<&mut QuotaMap>,
        &mut ResourceTable,
    );

    /// Audits a socket refused because the module has no `grants.network`.
    fn socket_denied(&mut self);
}

type Store<'a, T> = StoreContextMut<'a, T>;

/// Runs `define` with shadowing allowed, so that its definitions replace wasmtime-wasi's.
fn shadowing<T>(
    linker: &mut wasmtime::component::Linker<T>,
    define: impl FnOnce(&mut wasmtime::component::Linker<T>) -> wasmtime::Result<()>,
) -> wasmtime::Result<()> {
    linker.allow_shadowing(true);
    let result = define(linker);
    linker.allow_shadowing(false);
    result
}

/// Why a wrapper refused a call.
#[derive(Debug, Clone, Copy)]
pub enum Refusal {
    /// The `files` limit: no room for one more descriptor.
    NoRoom,
    /// The quota: no space for what would be written or created.
    NoSpace,
}

fn descriptor<'a>(table: &'a ResourceTable, fd: &Resource<Descriptor>) -> Option<&'a Descriptor> {
    table.get(fd).ok()
}

/// Remembers the granted directories just handed to the guest.
fn note_preopens<T: Guarded>(store: &mut Store<'_, T>, dirs: &[(Resource<Descriptor>, String)]) {
    let (mut files, mut quotas, table) = store.data_mut().guards();
    for (fd, guest) in dirs {
        let fd = Resource::<Descriptor>::new_borrow(fd.rep());
        if let Some(d) = descriptor(table, &fd) {
            if let Some(f) = files.as_deref_mut() {
                f.note_preopen(d);
            }
            if let Some(q) = quotas.as_deref_mut() {
                q.note_preopen(d, guest);
            }
        }
    }
}

/// Whether the instance may hold one more descriptor.
fn admit<T: Guarded>(store: &mut Store<'_, T>) -> Result<(), Refusal> {
    let (files, _, table) = store.data_mut().guards();
    match files {
        Some(f) => {
            if f.admit(table) {
                Ok(())
            } else {
                Err(Refusal::NoRoom)
            }
        }
        None => Ok(()),
    }
}

/// Checks an `open-at` below `fd`: room for a descriptor, and space for a new name when it
/// creates one. Returns the quota the opened descriptor will be charged to.
fn before_open<T: Guarded>(
    store: &mut Store<'_, T>,
    fd: &Resource<Descriptor>,
    creates: bool,
) -> Result<Option<Arc<Quota>>, Refusal> {
    admit(store)?;
    let (_, quotas, table) = store.data_mut().guards();
    let Some(map) = quotas else {
        return Ok(None);
    };
    let quota = descriptor(table, fd).and_then(|d| map.quota_of(d));
    if let Some(q) = &quota
        && creates
        && !map.charge(q, 0, 1)
    {
        return Err(Refusal::NoSpace);
    }
    Ok(quota)
}

/// Charges the descriptor `child`, just opened, to `quota` for what is written through it.
fn after_open<T: Guarded>(
    store: &mut Store<'_, T>,
    child: &Resource<Descriptor>,
    quota: Option<Arc<Quota>>,
) {
    let Some(q) = quota else {
        return;
    };
    let (_, quotas, table) = store.data_mut().guards();
    if let (Some(map), Some(d)) = (
        quotas,
        descriptor(table, &Resource::new_borrow(child.rep())),
    ) {
        map.track(d, q);
    }
}

/// Charges a change below the descriptor `fd` to its quota, if it has one.
fn charge<T: Guarded>(
    store: &mut Store<'_, T>,
    fd: &Resource<Descriptor>,
    bytes: u64,
    files: u64,
) -> Result<(), Refusal> {
    let (_, quotas, table) = store.data_mut().guards();
    let Some(map) = quotas else {
        return Ok(());
    };
    match descriptor(table, fd).and_then(|d| map.quota_of(d)) {
        Some(q) if !map.charge(&q, bytes, files) => Err(Refusal::NoSpace),
        _ => Ok(()),
    }
}

/// Puts a new output stream of a file under a quota behind the quota's accounting.
fn wrap_stream<T: Guarded>(
    store: &mut Store<'_, T>,
    fd: &Resource<Descriptor>,
    stream: &Resource<DynOutputStream>,
) -> wasmtime::Result<()> {
    let (_, quotas, table) = store.data_mut().guards();
    let Some(map) = quotas else {
        return Ok(());
    };
    let Some(quota) = descriptor(table, fd).and_then(|d| map.quota_of(d)) else {
        return Ok(());
    };
    let denied = map.denied.clone();
    let entry: &mut DynOutputStream = table.get_mut(&Resource::new_borrow(stream.rep()))?;
    let inner = std::mem::replace(entry, Box::new(Closed));
    *entry = Box::new(QuotaStream {
        inner,
        quota,
        denied,
    });
    Ok(())
}

/// Stands in for a stream for the instant it is being wrapped.
struct Closed;

#[wasmtime_wasi::async_trait]
impl Pollable for Closed {
    async fn ready(&mut self) {}
}

impl OutputStream for Closed {
    fn write(&mut self, _: bytes::Bytes) -> StreamResult<()> {
        Err(StreamError::Closed)
    }
    fn flush(&mut self) -> StreamResult<()> {
        Err(StreamError::Closed)
    }
    fn check_write(&mut self) -> StreamResult<usize> {
        Err(StreamError::Closed)
    }
}
