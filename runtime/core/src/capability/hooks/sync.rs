//! The wrappers of [`super`] for the synchronous linker: they call wasmtime-wasi's sync
//! implementations.

use wasmtime::component::{Linker, Resource};
use wasmtime_wasi::filesystem::{Descriptor, WasiFilesystemView};
use wasmtime_wasi::p2::bindings::sockets::tcp_create_socket;
use wasmtime_wasi::p2::bindings::sync::filesystem::types::{
    self as fs, DescriptorFlags, ErrorCode, Filesize, HostDescriptor, OpenFlags, PathFlags,
};
use wasmtime_wasi::p2::bindings::{filesystem::preopens, sockets::network};
use wasmtime_wasi::p2::{DynOutputStream, FsResult, ReaddirIterator, TcpSocket};
use wasmtime_wasi::sockets::WasiSocketsView;

use super::{
    Guarded, Refusal, Store, WASI, admit, after_open, before_open, charge, note_preopens,
    wrap_stream,
};

fn code(r: Refusal) -> ErrorCode {
    match r {
        Refusal::NoRoom => ErrorCode::InsufficientMemory,
        Refusal::NoSpace => ErrorCode::InsufficientSpace,
    }
}

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

/// Shadows wasmtime-wasi's sync definitions of the functions listed in [`super`].
pub fn add_to_linker<T: Guarded>(linker: &mut Linker<T>) -> wasmtime::Result<()> {
    super::shadowing(linker, define)
}

fn define<T: Guarded>(linker: &mut Linker<T>) -> wasmtime::Result<()> {
    let mut pre = linker.instance(&format!("wasi:filesystem/preopens@{WASI}"))?;
    pre.func_wrap("get-directories", |mut store: Store<'_, T>, (): ()| {
        let dirs = preopens::Host::get_directories(&mut store.data_mut().filesystem())?;
        note_preopens(&mut store, &dirs);
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
            let quota = match before_open(&mut store, &fd, oflags.contains(OpenFlags::CREATE)) {
                Ok(q) => q,
                Err(r) => return Ok((Err(code(r)),)),
            };
            let fs = &mut store.data_mut().filesystem();
            let r = HostDescriptor::open_at(fs, fd, path_flags, path, oflags, flags);
            if let Ok(child) = &r {
                after_open(&mut store, child, quota);
            }
            Ok((lower(&mut store, r)?,))
        },
    )?;
    types.func_wrap(
        "[method]descriptor.read-directory",
        |mut store: Store<'_, T>, (fd,): (Resource<Descriptor>,)| {
            if let Err(r) = admit(&mut store) {
                return Ok((Err(code(r)),));
            }
            let r: FsResult<Resource<ReaddirIterator>> =
                HostDescriptor::read_directory(&mut store.data_mut().filesystem(), fd);
            Ok((lower(&mut store, r)?,))
        },
    )?;
    types.func_wrap(
        "[method]descriptor.write",
        |mut store: Store<'_, T>, (fd, buf, offset): (Resource<Descriptor>, Vec<u8>, Filesize)| {
            if let Err(r) = charge(&mut store, &fd, buf.len() as u64, 0) {
                return Ok((Err(code(r)),));
            }
            let r = HostDescriptor::write(&mut store.data_mut().filesystem(), fd, buf, offset);
            Ok((lower(&mut store, r)?,))
        },
    )?;
    types.func_wrap(
        "[method]descriptor.write-via-stream",
        |mut store: Store<'_, T>, (fd, offset): (Resource<Descriptor>, Filesize)| {
            let at = Resource::<Descriptor>::new_borrow(fd.rep());
            let r =
                HostDescriptor::write_via_stream(&mut store.data_mut().filesystem(), fd, offset);
            stream_out(&mut store, &at, r)
        },
    )?;
    types.func_wrap(
        "[method]descriptor.append-via-stream",
        |mut store: Store<'_, T>, (fd,): (Resource<Descriptor>,)| {
            let at = Resource::<Descriptor>::new_borrow(fd.rep());
            let r = HostDescriptor::append_via_stream(&mut store.data_mut().filesystem(), fd);
            stream_out(&mut store, &at, r)
        },
    )?;
    types.func_wrap(
        "[method]descriptor.create-directory-at",
        |mut store: Store<'_, T>, (fd, path): (Resource<Descriptor>, String)| {
            if let Err(r) = charge(&mut store, &fd, 0, 1) {
                return Ok((Err(code(r)),));
            }
            let r =
                HostDescriptor::create_directory_at(&mut store.data_mut().filesystem(), fd, path);
            Ok((lower(&mut store, r)?,))
        },
    )?;
    types.func_wrap(
        "[method]descriptor.symlink-at",
        |mut store: Store<'_, T>, (fd, src, dest): (Resource<Descriptor>, String, String)| {
            if let Err(r) = charge(&mut store, &fd, 0, 1) {
                return Ok((Err(code(r)),));
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
            if let Err(r) = charge(&mut store, &new_fd, 0, 1) {
                return Ok((Err(code(r)),));
            }
            let fs = &mut store.data_mut().filesystem();
            let r = HostDescriptor::link_at(fs, fd, old_flags, old_path, new_fd, new_path);
            Ok((lower(&mut store, r)?,))
        },
    )?;

    let mut tcp = linker.instance(&format!("wasi:sockets/tcp-create-socket@{WASI}"))?;
    tcp.func_wrap(
        "create-tcp-socket",
        |mut store: Store<'_, T>, (family,): (network::IpAddressFamily,)| {
            if admit(&mut store).is_err() {
                return Ok((Err(network::ErrorCode::NewSocketLimit),));
            }
            let r: Result<Resource<TcpSocket>, _> =
                tcp_create_socket::Host::create_tcp_socket(&mut store.data_mut().sockets(), family);
            match r {
                Ok(s) => Ok((Ok(s),)),
                Err(e) => {
                    let mut view = store.data_mut().sockets();
                    let code = network::Host::convert_error_code(&mut view, e)?;
                    if code == network::ErrorCode::AccessDenied {
                        store.data_mut().socket_denied();
                    }
                    Ok((Err(code),))
                }
            }
        },
    )?;
    Ok(())
}

/// A new write stream of the descriptor `at`, under its quota if it has one.
#[allow(clippy::type_complexity)]
fn stream_out<T: Guarded>(
    store: &mut Store<'_, T>,
    at: &Resource<Descriptor>,
    r: FsResult<Resource<DynOutputStream>>,
) -> wasmtime::Result<(Result<Resource<DynOutputStream>, ErrorCode>,)> {
    if let Ok(stream) = &r {
        wrap_stream(store, at, stream)?;
    }
    Ok((lower(store, r)?,))
}
