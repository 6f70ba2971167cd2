//! The wrappers of [`super`] for the WASI 0.3 filesystem: the same checks (the `files`
//! limit, disk quotas) before wasmtime-wasi's 0.3 implementations do the work.
//!
//! 0.3 writes a file through a `stream<u8>` the guest writes (`write-via-stream`,
//! `append-via-stream`); under a quota the guest's stream is piped through the host
//! ([`gate`]), which charges each chunk before it reaches wasmtime-wasi's writer. Past the
//! quota the guest's writer sees its reader gone, nothing more is written, and the write's
//! result future says `insufficient-space`.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio::sync::{mpsc, oneshot};
use wasmtime::AsContextMut;
use wasmtime::component::{Access, Accessor, FutureReader, Linker, Resource, StreamReader};
use wasmtime_wasi::filesystem::{Descriptor, WasiFilesystem, WasiFilesystemView};
use wasmtime_wasi::p3::bindings::filesystem::preopens;
use wasmtime_wasi::p3::bindings::filesystem::types::{
    self as fs, DescriptorFlags, ErrorCode, Filesize, HostDescriptorWithStore, OpenFlags, PathFlags,
};
use wasmtime_wasi::p3::filesystem::FilesystemResult;

use super::super::quota::Quota;
use super::{Guarded, Refusal, Store, after_open, before_open, charge, note_preopens};
use crate::p3::future::Settle;
use crate::p3::pipe::{Drain, Feed};

/// The version of the WASI 0.3 interfaces wasmtime-wasi defines.
pub const WASI: &str = "0.3.0";

/// Chunks in flight between the guest's stream and wasmtime-wasi's writer.
const DEPTH: usize = 2;

fn code(r: Refusal) -> ErrorCode {
    match r {
        Refusal::NoRoom => ErrorCode::InsufficientMemory,
        Refusal::NoSpace => ErrorCode::InsufficientSpace,
    }
}

/// Shadows wasmtime-wasi's 0.3 definitions of the functions listed in [`super`].
pub fn add_to_linker<T: Guarded + Send>(linker: &mut Linker<T>) -> wasmtime::Result<()> {
    super::shadowing(linker, define)
}

/// Turns wasmtime-wasi's result into the guest's `result<_, error-code>`, or a trap.
fn lower<T: Guarded, R>(
    acc: &Accessor<T>,
    r: FilesystemResult<R>,
) -> wasmtime::Result<Result<R, ErrorCode>> {
    match r {
        Ok(v) => Ok(Ok(v)),
        Err(e) => acc.with(|mut s| {
            let mut view = s.get().filesystem();
            Ok(Err(fs::Host::convert_error_code(&mut view, e)?))
        }),
    }
}

/// wasmtime-wasi's 0.3 filesystem, seen from an accessor of the Store.
fn files<T: Guarded>(acc: &Accessor<T>) -> Accessor<T, WasiFilesystem> {
    acc.with_getter::<WasiFilesystem>(<T as WasiFilesystemView>::filesystem)
}

/// Runs `check` on the Store.
fn check<T: Guarded, R>(acc: &Accessor<T>, check: impl FnOnce(&mut Store<'_, T>) -> R) -> R {
    acc.with(|mut s| check(&mut s.as_context_mut()))
}

fn define<T: Guarded + Send>(linker: &mut Linker<T>) -> wasmtime::Result<()> {
    let mut pre = linker.instance(&format!("wasi:filesystem/preopens@{WASI}"))?;
    pre.func_wrap("get-directories", |mut store: Store<'_, T>, (): ()| {
        let dirs = preopens::Host::get_directories(&mut store.data_mut().filesystem())?;
        note_preopens(&mut store, &dirs);
        Ok((dirs,))
    })?;

    let mut types = linker.instance(&format!("wasi:filesystem/types@{WASI}"))?;
    types.func_wrap_concurrent(
        "[method]descriptor.open-at",
        |acc: &Accessor<T>,
         (fd, path_flags, path, oflags, flags): (
            Resource<Descriptor>,
            PathFlags,
            String,
            OpenFlags,
            DescriptorFlags,
        )| {
            Box::pin(async move {
                let creates = oflags.contains(OpenFlags::CREATE);
                let quota = match check(acc, |s| before_open(s, &fd, creates)) {
                    Ok(q) => q,
                    Err(r) => return Ok((Err(code(r)),)),
                };
                let r =
                    WasiFilesystem::open_at(&files(acc), fd, path_flags, path, oflags, flags).await;
                if let Ok(child) = &r {
                    check(acc, |s| after_open(s, child, quota));
                }
                Ok((lower(acc, r)?,))
            })
        },
    )?;
    types.func_wrap_concurrent(
        "[method]descriptor.create-directory-at",
        |acc: &Accessor<T>, (fd, path): (Resource<Descriptor>, String)| {
            Box::pin(async move {
                if let Err(r) = check(acc, |s| charge(s, &fd, 0, 1)) {
                    return Ok((Err(code(r)),));
                }
                let r = WasiFilesystem::create_directory_at(&files(acc), fd, path).await;
                Ok((lower(acc, r)?,))
            })
        },
    )?;
    types.func_wrap_concurrent(
        "[method]descriptor.symlink-at",
        |acc: &Accessor<T>, (fd, src, dest): (Resource<Descriptor>, String, String)| {
            Box::pin(async move {
                if let Err(r) = check(acc, |s| charge(s, &fd, 0, 1)) {
                    return Ok((Err(code(r)),));
                }
                let r = WasiFilesystem::symlink_at(&files(acc), fd, src, dest).await;
                Ok((lower(acc, r)?,))
            })
        },
    )?;
    types.func_wrap_concurrent(
        "[method]descriptor.link-at",
        |acc: &Accessor<T>,
         (fd, old_flags, old_path, new_fd, new_path): (
            Resource<Descriptor>,
            PathFlags,
            String,
            Resource<Descriptor>,
            String,
        )| {
            Box::pin(async move {
                if let Err(r) = check(acc, |s| charge(s, &new_fd, 0, 1)) {
                    return Ok((Err(code(r)),));
                }
                let r =
                    WasiFilesystem::link_at(&files(acc), fd, old_flags, old_path, new_fd, new_path)
                        .await;
                Ok((lower(acc, r)?,))
            })
        },
    )?;
    types.func_wrap(
        "[method]descriptor.write-via-stream",
        |mut store: Store<'_, T>,
         (fd, data, offset): (Resource<Descriptor>, StreamReader<u8>, Filesize)| {
            let (data, refused) = gate(&mut store, &fd, data)?;
            let access = access(&mut store);
            let result = WasiFilesystem::write_via_stream(access, fd, data, offset)?;
            Ok((refine(&mut store, result, refused)?,))
        },
    )?;
    types.func_wrap(
        "[method]descriptor.append-via-stream",
        |mut store: Store<'_, T>, (fd, data): (Resource<Descriptor>, StreamReader<u8>)| {
            let (data, refused) = gate(&mut store, &fd, data)?;
            let access = access(&mut store);
            let result = WasiFilesystem::append_via_stream(access, fd, data)?;
            Ok((refine(&mut store, result, refused)?,))
        },
    )?;
    Ok(())
}

/// wasmtime-wasi's 0.3 filesystem, seen from the Store.
fn access<'a, T: Guarded>(store: &'a mut Store<'_, T>) -> Access<'a, T, WasiFilesystem> {
    fn view<T: Guarded>(t: &mut T) -> wasmtime_wasi::filesystem::WasiFilesystemCtxView<'_> {
        t.filesystem()
    }
    Access::<T, WasiFilesystem>::new(store.as_context_mut(), view::<T>)
}

/// The quota of the descriptor `fd` and the instance's denial flag, if it has one.
fn quota_of<T: Guarded>(
    store: &mut Store<'_, T>,
    fd: &Resource<Descriptor>,
) -> Option<(Arc<Quota>, Arc<AtomicBool>)> {
    let (_, quotas, table) = store.data_mut().guards();
    let map = quotas?;
    let d = table
        .get(&Resource::<Descriptor>::new_borrow(fd.rep()))
        .ok()?;
    Some((map.quota_of(d)?, map.denied.clone()))
}

/// `data` as it may reach the file of `fd`: as it is without a quota, else through a pipe
/// that charges each chunk first. The flag is set when the quota refused a chunk.
fn gate<T: Guarded>(
    store: &mut Store<'_, T>,
    fd: &Resource<Descriptor>,
    data: StreamReader<u8>,
) -> wasmtime::Result<(StreamReader<u8>, Option<Arc<AtomicBool>>)> {
    let Some((quota, denied)) = quota_of(store, fd) else {
        return Ok((data, None));
    };
    let refused = Arc::new(AtomicBool::new(false));
    let (tx, rx) = mpsc::channel(DEPTH);
    let flag = refused.clone();
    let admit = move |n: usize| {
        if quota.charge(n as u64, 0) {
            return true;
        }
        flag.store(true, Ordering::Release);
        denied.store(true, Ordering::Relaxed);
        false
    };
    data.pipe(&mut *store, Feed::new(tx, Some(Box::new(admit))))?;
    let gated = StreamReader::new(&mut *store, Drain::new(rx))?;
    Ok((gated, Some(refused)))
}

/// The write's result, made `insufficient-space` when the quota refused part of it.
fn refine<T: Guarded>(
    store: &mut Store<'_, T>,
    result: FutureReader<Result<(), ErrorCode>>,
    refused: Option<Arc<AtomicBool>>,
) -> wasmtime::Result<FutureReader<Result<(), ErrorCode>>> {
    let Some(refused) = refused else {
        return Ok(result);
    };
    let (tx, rx) = oneshot::channel();
    result.pipe(&mut *store, Settle::new(tx, std::convert::identity))?;
    FutureReader::new(&mut *store, async move {
        let written = rx.await.unwrap_or(Err(ErrorCode::Io));
        wasmtime::error::Ok(if refused.load(Ordering::Acquire) {
            Err(ErrorCode::InsufficientSpace)
        } else {
            written
        })
    })
}
