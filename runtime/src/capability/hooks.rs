//! WASI functions that take host resources, wrapped so that the `files` limit and the disk
//! quotas are enforced before wasmtime-wasi does the work.
//!
//! The wrappers replace (shadow) wasmtime-wasi's own definitions in the runtime's linker
//! and then call wasmtime-wasi's implementation, so the guest sees the same interfaces and
//! the same behaviour, except that an open past the limit or a write past the quota fails
//! with a WASI error code:
//!
//! | function | checked |
//! |---|---|
//! | `preopens.get-directories` | remembers which handles are grants (not counted as files; carry a quota) |
//! | `descriptor.open-at` | `files`; a created file is charged to its grant's quota |
//! | `descriptor.read-directory` | `files` (a listing holds a descriptor) |
//! | `tcp-create-socket.create-tcp-socket` | `files` |
//! | `descriptor.write`, `write-via-stream`, `append-via-stream` | the quota (streams are wrapped) |
//! | `descriptor.create-directory-at`, `symlink-at`, `link-at` | the quota's count of names |

use std::sync::Arc;

use wasmtime::StoreContextMut;
use wasmtime::component::{Linker, Resource, ResourceTable};
use wasmtime_wasi::WasiView;
use wasmtime_wasi::filesystem::{Descriptor, WasiFilesystemView};
use wasmtime_wasi::p2::bindings::sockets::tcp_create_socket;
use wasmtime_wasi::p2::bindings::sync::filesystem::types::{
    self as fs, DescriptorFlags, ErrorCode, Filesize, HostDescriptor, OpenFlags, PathFlags,
};
use wasmtime_wasi::p2::bindings::{filesystem::preopens, sockets::network};
use wasmtime_wasi::p2::{DynOutputStream, FsError, FsResult, ReaddirIterator, TcpSocket};
use wasmtime_wasi::sockets::WasiSocketsView;

use super::quota::{QuotaMap, QuotaStream};
use crate::limits::files::OpenFiles;

/// The version of the WASI 0.2 interfaces wasmtime-wasi defines; guests importing any
/// 0.2.x version are served by them.
const WASI: &str = "0.2.12";

/// What the wrappers need from a Store's data.
pub(crate) trait Guarded: WasiView + 'static {
    /// The instance's open-file count and quota map (when its module has them), and its
    /// resource table.
    fn guards(
        &mut self,
    ) -> (
        Option<&mut OpenFiles>,
        Option<&mut QuotaMap>,
        &mut ResourceTable,
    );
}

type Store<'a, T> = StoreContextMut<'a, T>;

/// Turns wasmtime-wasi's result into the guest's `result<_, error-code>`, or a trap.
fn lower<T: Guarded, R>(
    store: &mut Store<'_, T>,
    r: FsResult<R>,
) -> wasmtime::Result<Result<R, ErrorCode>> {
    match r {
        Ok(v) => Ok(Ok(v)),
        Err(e) => {
            let mut view = store.data_mut().filesystem();
            Ok(Err(fs::Host::convert_error_code(&mut view, e)?))
        }
    }
}

fn descriptor<'a>(table: &'a ResourceTable, fd: &Resource<Descriptor>) -> Option<&'a Descriptor> {
    table.get(fd).ok()
}

/// Shadows wasmtime-wasi's definitions of the functions listed in the module docs.
pub(crate) fn add_to_linker<T: Guarded>(linker: &mut Linker<T>) -> wasmtime::Result<()> {
    linker.allow_shadowing(true);
    let result = define(linker);
    linker.allow_shadowing(false);
    result
}

fn define<T: Guarded>(linker: &mut Linker<T>) -> wasmtime::Result<()> {
    let mut pre = linker.instance(&format!("wasi:filesystem/preopens@{WASI}"))?;
    pre.func_wrap("get-directories", |mut store: Store<'_, T>, (): ()| {
        let dirs = preopens::Host::get_directories(&mut store.data_mut().filesystem())?;
        let (mut files, mut quotas, table) = store.data_mut().guards();
        for (fd, guest) in &dirs {
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
        Ok((dirs,))
    })?;

    let mut types = linker.instance(&format!("wasi:filesystem/types@{WASI}"))?;
    types.func_wrap(
        "[method]descriptor.open-at",
        |mut store: Store<'_, T>,
         (fd, path_flags, path, oflags, flags): (
            Resource<Descriptor>,
            PathFlags,
            String,
            OpenFlags,
            DescriptorFlags,
        )| {
            let (files, quotas, table) = store.data_mut().guards();
            if let Some(f) = files
                && !f.admit(table)
            {
                return Ok((Err(ErrorCode::InsufficientMemory),));
            }
            let quota = quotas
                .as_deref()
                .and_then(|q| descriptor(table, &fd).and_then(|d| q.quota_of(d)));
            if let (Some(q), Some(map)) = (&quota, &quotas)
                && oflags.contains(OpenFlags::CREATE)
                && !map.charge(q, 0, 1)
            {
                return Ok((Err(ErrorCode::InsufficientSpace),));
            }
            let r = HostDescriptor::open_at(
                &mut store.data_mut().filesystem(),
                fd,
                path_flags,
                path,
                oflags,
                flags,
            );
            if let (Ok(child), Some(q)) = (&r, quota) {
                let (_, quotas, table) = store.data_mut().guards();
                if let (Some(map), Some(d)) = (
                    quotas,
                    descriptor(table, &Resource::new_borrow(child.rep())),
                ) {
                    map.track(d, q);
                }
            }
            Ok((lower(&mut store, r)?,))
        },
    )?;
    types.func_wrap(
        "[method]descriptor.read-directory",
        |mut store: Store<'_, T>, (fd,): (Resource<Descriptor>,)| {
            let (files, _, table) = store.data_mut().guards();
            if let Some(f) = files
                && !f.admit(table)
            {
                return Ok((Err(ErrorCode::InsufficientMemory),));
            }
            let r: FsResult<Resource<ReaddirIterator>> =
                HostDescriptor::read_directory(&mut store.data_mut().filesystem(), fd);
            Ok((lower(&mut store, r)?,))
        },
    )?;
    types.func_wrap(
        "[method]descriptor.write",
        |mut store: Store<'_, T>, (fd, buf, offset): (Resource<Descriptor>, Vec<u8>, Filesize)| {
            if let Some(refused) = charge(&mut store, &fd, buf.len() as u64, 0) {
                return Ok((Err(refused),));
            }
            let r = HostDescriptor::write(&mut store.data_mut().filesystem(), fd, buf, offset);
            Ok((lower(&mut store, r)?,))
        },
    )?;
    types.func_wrap(
        "[method]descriptor.write-via-stream",
        |mut store: Store<'_, T>, (fd, offset): (Resource<Descriptor>, Filesize)| {
            let fd2 = Resource::<Descriptor>::new_borrow(fd.rep());
            let r =
                HostDescriptor::write_via_stream(&mut store.data_mut().filesystem(), fd, offset);
            let r = wrap_stream(&mut store, &fd2, r);
            Ok((lower(&mut store, r)?,))
        },
    )?;
    types.func_wrap(
        "[method]descriptor.append-via-stream",
        |mut store: Store<'_, T>, (fd,): (Resource<Descriptor>,)| {
            let fd2 = Resource::<Descriptor>::new_borrow(fd.rep());
            let r = HostDescriptor::append_via_stream(&mut store.data_mut().filesystem(), fd);
            let r = wrap_stream(&mut store, &fd2, r);
            Ok((lower(&mut store, r)?,))
        },
    )?;
    types.func_wrap(
        "[method]descriptor.create-directory-at",
        |mut store: Store<'_, T>, (fd, path): (Resource<Descriptor>, String)| {
            if let Some(refused) = charge(&mut store, &fd, 0, 1) {
                return Ok((Err(refused),));
            }
            let r =
                HostDescriptor::create_directory_at(&mut store.data_mut().filesystem(), fd, path);
            Ok((lower(&mut store, r)?,))
        },
    )?;
    types.func_wrap(
        "[method]descriptor.symlink-at",
        |mut store: Store<'_, T>, (fd, src, dest): (Resource<Descriptor>, String, String)| {
            if let Some(refused) = charge(&mut store, &fd, 0, 1) {
                return Ok((Err(refused),));
            }
            let r = HostDescriptor::symlink_at(&mut store.data_mut().filesystem(), fd, src, dest);
            Ok((lower(&mut store, r)?,))
        },
    )?;
    types.func_wrap(
        "[method]descriptor.link-at",
        |mut store: Store<'_, T>,
         (fd, old_flags, old_path, new_fd, new_path): (
            Resource<Descriptor>,
            PathFlags,
            String,
            Resource<Descriptor>,
            String,
        )| {
            if let Some(refused) = charge(&mut store, &new_fd, 0, 1) {
                return Ok((Err(refused),));
            }
            let r = HostDescriptor::link_at(
                &mut store.data_mut().filesystem(),
                fd,
                old_flags,
                old_path,
                new_fd,
                new_path,
            );
            Ok((lower(&mut store, r)?,))
        },
    )?;

    let mut tcp = linker.instance(&format!("wasi:sockets/tcp-create-socket@{WASI}"))?;
    tcp.func_wrap(
        "create-tcp-socket",
        |mut store: Store<'_, T>, (family,): (network::IpAddressFamily,)| {
            let (files, _, table) = store.data_mut().guards();
            if let Some(f) = files
                && !f.admit(table)
            {
                return Ok((Err(network::ErrorCode::NewSocketLimit),));
            }
            let r: Result<Resource<TcpSocket>, _> =
                tcp_create_socket::Host::create_tcp_socket(&mut store.data_mut().sockets(), family);
            match r {
                Ok(s) => Ok((Ok(s),)),
                Err(e) => {
                    let mut view = store.data_mut().sockets();
                    Ok((Err(network::Host::convert_error_code(&mut view, e)?),))
                }
            }
        },
    )?;
    Ok(())
}

/// Charges a change below the descriptor `fd` to its quota, if it has one; the error code
/// to return when the quota refuses it.
fn charge<T: Guarded>(
    store: &mut Store<'_, T>,
    fd: &Resource<Descriptor>,
    bytes: u64,
    files: u64,
) -> Option<ErrorCode> {
    let (_, quotas, table) = store.data_mut().guards();
    let quotas = quotas?;
    let q = descriptor(table, fd).and_then(|d| quotas.quota_of(d))?;
    (!quotas.charge(&q, bytes, files)).then_some(ErrorCode::InsufficientSpace)
}

/// Puts a new output stream of a file under a quota behind the quota's accounting.
fn wrap_stream<T: Guarded>(
    store: &mut Store<'_, T>,
    fd: &Resource<Descriptor>,
    r: FsResult<Resource<DynOutputStream>>,
) -> FsResult<Resource<DynOutputStream>> {
    let stream = r?;
    let (_, quotas, table) = store.data_mut().guards();
    let Some(quotas) = quotas else {
        return Ok(stream);
    };
    let Some(quota) = descriptor(table, fd).and_then(|d| quotas.quota_of(d)) else {
        return Ok(stream);
    };
    let denied = quotas.denied.clone();
    let entry: &mut DynOutputStream = table
        .get_mut(&Resource::new_borrow(stream.rep()))
        .map_err(|e| FsError::trap(wasmtime::Error::new(e)))?;
    let inner = std::mem::replace(entry, Box::new(Closed));
    *entry = Box::new(QuotaStream {
        inner,
        quota: Arc::clone(&quota),
        denied,
    });
    Ok(stream)
}

/// Stands in for a stream for the instant it is being wrapped.
struct Closed;

#[wasmtime_wasi::async_trait]
impl wasmtime_wasi::p2::Pollable for Closed {
    async fn ready(&mut self) {}
}

impl wasmtime_wasi::p2::OutputStream for Closed {
    fn write(&mut self, _: bytes::Bytes) -> wasmtime_wasi::p2::StreamResult<()> {
        Err(wasmtime_wasi::p2::StreamError::Closed)
    }
    fn flush(&mut self) -> wasmtime_wasi::p2::StreamResult<()> {
        Err(wasmtime_wasi::p2::StreamError::Closed)
    }
    fn check_write(&mut self) -> wasmtime_wasi::p2::StreamResult<usize> {
        Err(wasmtime_wasi::p2::StreamError::Closed)
    }
}
