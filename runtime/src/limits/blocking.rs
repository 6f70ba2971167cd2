//! The call's deadline inside blocking host calls, on the synchronous path.
//!
//! A call on a fiber (the async path) is cancelled by dropping its future, which unwinds
//! the guest wherever it waits. A synchronous call (`App::call_blocking`, a link from a
//! synchronous caller) runs on its caller's thread, and wasmtime-wasi's blocking functions
//! would keep that thread (and the instance's slot) until they return: a guest sleeping for
//! an hour would hold both for an hour. So on the synchronous linker the WASI functions
//! that block are redefined to wait on the call's deadline as well:
//!
//! `wasi:io/poll.poll`, `[method]pollable.block`, `[method]input-stream.blocking-read`,
//! `blocking-skip`, `[method]output-stream.blocking-write-and-flush`,
//! `blocking-write-zeroes-and-flush`, `blocking-flush`, `blocking-splice`.
//!
//! Sleeps, socket reads and connects, name lookups and stdin reads all wait in one of
//! these. At the deadline the call fails with [`DeadlineInHostCall`], which the time limit
//! reports as `Timeout`; the instance is discarded like after any failure.

use std::future::Future;
use std::time::Instant;

use wasmtime::StoreContextMut;
use wasmtime::component::{Linker, Resource, ResourceTable};
use wasmtime_wasi::p2::bindings::sync::io::streams as sync_streams;
use wasmtime_wasi::p2::{DynInputStream, DynOutputStream, DynPollable, StreamResult};
use wasmtime_wasi_io::bindings::wasi::io::poll::{Host as _, HostPollable as _};
use wasmtime_wasi_io::bindings::wasi::io::streams::{HostInputStream as _, HostOutputStream as _};

use crate::capability::hooks::WASI;

/// A blocking host call reached the call's deadline.
#[derive(Debug)]
pub(crate) struct DeadlineInHostCall;

impl std::fmt::Display for DeadlineInHostCall {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the call's deadline passed while the guest waited in a host call")
    }
}

impl std::error::Error for DeadlineInHostCall {}

/// What the redefined functions need from a Store's data.
pub(crate) trait Deadlined: 'static {
    /// When the call now running must end.
    fn deadline(&self) -> Instant;
    /// The instance's resource table.
    fn table(&mut self) -> &mut ResourceTable;
}

type Store<'a, T> = StoreContextMut<'a, T>;

/// Runs a blocking operation until it completes or the deadline passes.
fn until<F: Future>(deadline: Instant, f: F) -> wasmtime::Result<F::Output> {
    if Instant::now() >= deadline {
        return Err(wasmtime::Error::new(DeadlineInHostCall));
    }
    wasmtime_wasi::runtime::in_tokio(async { tokio::time::timeout_at(deadline.into(), f).await })
        .map_err(|_| wasmtime::Error::new(DeadlineInHostCall))
}

/// The guest's result of a stream operation, or a trap.
fn lower<T: Deadlined, R>(
    store: &mut Store<'_, T>,
    r: StreamResult<R>,
) -> wasmtime::Result<Result<R, sync_streams::StreamError>> {
    match r {
        Ok(v) => Ok(Ok(v)),
        Err(e) => Ok(Err(sync_streams::Host::convert_stream_error(
            store.data_mut().table(),
            e,
        )?)),
    }
}

/// Redefines the blocking WASI functions of a synchronous linker (see the module docs).
pub(crate) fn add_to_linker<T: Deadlined>(linker: &mut Linker<T>) -> wasmtime::Result<()> {
    linker.allow_shadowing(true);
    let result = define(linker);
    linker.allow_shadowing(false);
    result
}

fn define<T: Deadlined>(linker: &mut Linker<T>) -> wasmtime::Result<()> {
    let mut poll = linker.instance(&format!("wasi:io/poll@{WASI}"))?;
    poll.func_wrap(
        "poll",
        |mut store: Store<'_, T>, (pollables,): (Vec<Resource<DynPollable>>,)| {
            let deadline = store.data().deadline();
            let ready = until(deadline, store.data_mut().table().poll(pollables))??;
            Ok((ready,))
        },
    )?;
    poll.func_wrap(
        "[method]pollable.block",
        |mut store: Store<'_, T>, (p,): (Resource<DynPollable>,)| {
            let deadline = store.data().deadline();
            until(deadline, store.data_mut().table().block(p))??;
            Ok(())
        },
    )?;

    let mut streams = linker.instance(&format!("wasi:io/streams@{WASI}"))?;
    streams.func_wrap(
        "[method]input-stream.blocking-read",
        |mut store: Store<'_, T>, (s, len): (Resource<DynInputStream>, u64)| {
            let deadline = store.data().deadline();
            let r = until(deadline, store.data_mut().table().blocking_read(s, len))?;
            Ok((lower(&mut store, r)?,))
        },
    )?;
    streams.func_wrap(
        "[method]input-stream.blocking-skip",
        |mut store: Store<'_, T>, (s, len): (Resource<DynInputStream>, u64)| {
            let deadline = store.data().deadline();
            let r = until(deadline, store.data_mut().table().blocking_skip(s, len))?;
            Ok((lower(&mut store, r)?,))
        },
    )?;
    streams.func_wrap(
        "[method]output-stream.blocking-write-and-flush",
        |mut store: Store<'_, T>, (s, bytes): (Resource<DynOutputStream>, Vec<u8>)| {
            let deadline = store.data().deadline();
            let table = store.data_mut().table();
            let r = until(deadline, table.blocking_write_and_flush(s, bytes))?;
            Ok((lower(&mut store, r)?,))
        },
    )?;
    streams.func_wrap(
        "[method]output-stream.blocking-write-zeroes-and-flush",
        |mut store: Store<'_, T>, (s, len): (Resource<DynOutputStream>, u64)| {
            let deadline = store.data().deadline();
            let table = store.data_mut().table();
            let r = until(deadline, table.blocking_write_zeroes_and_flush(s, len))?;
            Ok((lower(&mut store, r)?,))
        },
    )?;
    streams.func_wrap(
        "[method]output-stream.blocking-flush",
        |mut store: Store<'_, T>, (s,): (Resource<DynOutputStream>,)| {
            let deadline = store.data().deadline();
            let r = until(deadline, store.data_mut().table().blocking_flush(s))?;
            Ok((lower(&mut store, r)?,))
        },
    )?;
    streams.func_wrap(
        "[method]output-stream.blocking-splice",
        |mut store: Store<'_, T>,
         (dst, src, len): (Resource<DynOutputStream>, Resource<DynInputStream>, u64)| {
            let deadline = store.data().deadline();
            let r = until(
                deadline,
                store.data_mut().table().blocking_splice(dst, src, len),
            )?;
            Ok((lower(&mut store, r)?,))
        },
    )?;
    Ok(())
}
