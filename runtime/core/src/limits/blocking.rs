//! The call's deadline inside host calls that wait.
//!
//! Wasm code is stopped at the deadline by the epoch deadline (synchronous calls) or the
//! epoch callback (calls on a fiber). A guest waiting in a host call runs no wasm code,
//! though: wasmtime-wasi's blocking functions would keep the caller's thread (synchronous
//! path) or the caller's task (async path), and the instance's slot, until they return, and
//! a guest sleeping for an hour would hold them for an hour. So on both linkers the WASI
//! functions that wait are redefined to wait on the call's deadline as well (on the async
//! path, dropping the call's future stops them too):
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
use wasmtime_wasi_io::bindings::wasi::io::streams::{
    self as async_streams, HostInputStream as _, HostOutputStream as _,
};

use crate::capability::hooks::WASI;

/// A blocking host call reached the call's deadline.
#[derive(Debug)]
pub struct DeadlineInHostCall;

impl std::fmt::Display for DeadlineInHostCall {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the call's deadline passed while the guest waited in a host call")
    }
}

impl std::error::Error for DeadlineInHostCall {}

/// What the redefined functions need from a Store's data.
pub trait Deadlined: 'static {
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
pub fn add_to_linker<T: Deadlined>(linker: &mut Linker<T>) -> wasmtime::Result<()> {
    linker.allow_shadowing(true);
    let result = define(linker);
    linker.allow_shadowing(false);
    result
}

/// Redefines the blocking WASI functions of the async linker (see the module docs).
pub fn add_to_linker_async<T: Deadlined + Send>(linker: &mut Linker<T>) -> wasmtime::Result<()> {
    linker.allow_shadowing(true);
    let result = define_async(linker);
    linker.allow_shadowing(false);
    result
}

/// Awaits a host operation until it completes or the deadline passes.
///
/// Most of these complete at once (a write into a body with room, a read of data that is
/// there): those are polled once and arm no timer; only one that waits gets a timer for
/// the deadline. (Wasm code itself is stopped at the deadline by the epoch callback.)
async fn until_async<F: Future>(deadline: Instant, f: F) -> wasmtime::Result<F::Output> {
    let mut f = std::pin::pin!(f);
    let first = std::future::poll_fn(|cx| std::task::Poll::Ready(f.as_mut().poll(cx))).await;
    if let std::task::Poll::Ready(out) = first {
        return Ok(out);
    }
    tokio::time::timeout_at(deadline.into(), f)
        .await
        .map_err(|_| wasmtime::Error::new(DeadlineInHostCall))
}

/// The guest's result of a stream operation on the async linker, or a trap.
fn lower_async<T: Deadlined, R>(
    store: &mut Store<'_, T>,
    r: StreamResult<R>,
) -> wasmtime::Result<Result<R, async_streams::StreamError>> {
    match r {
        Ok(v) => Ok(Ok(v)),
        Err(e) => Ok(Err(async_streams::Host::convert_stream_error(
            store.data_mut().table(),
            e,
        )?)),
    }
}

fn define_async<T: Deadlined + Send>(linker: &mut Linker<T>) -> wasmtime::Result<()> {
    let mut poll = linker.instance(&format!("wasi:io/poll@{WASI}"))?;
    poll.func_wrap_async(
        "poll",
        |mut store: Store<'_, T>, (pollables,): (Vec<Resource<DynPollable>>,)| {
            Box::new(async move {
                let deadline = store.data().deadline();
                let ready =
                    until_async(deadline, store.data_mut().table().poll(pollables)).await??;
                Ok((ready,))
            })
        },
    )?;
    poll.func_wrap_async(
        "[method]pollable.block",
        |mut store: Store<'_, T>, (p,): (Resource<DynPollable>,)| {
            Box::new(async move {
                let deadline = store.data().deadline();
                until_async(deadline, store.data_mut().table().block(p)).await??;
                Ok(())
            })
        },
    )?;

    let mut streams = linker.instance(&format!("wasi:io/streams@{WASI}"))?;
    streams.func_wrap_async(
        "[method]input-stream.blocking-read",
        |mut store: Store<'_, T>, (s, len): (Resource<DynInputStream>, u64)| {
            Box::new(async move {
                let deadline = store.data().deadline();
                let r =
                    until_async(deadline, store.data_mut().table().blocking_read(s, len)).await?;
                Ok((lower_async(&mut store, r)?,))
            })
        },
    )?;
    streams.func_wrap_async(
        "[method]input-stream.blocking-skip",
        |mut store: Store<'_, T>, (s, len): (Resource<DynInputStream>, u64)| {
            Box::new(async move {
                let deadline = store.data().deadline();
                let r =
                    until_async(deadline, store.data_mut().table().blocking_skip(s, len)).await?;
                Ok((lower_async(&mut store, r)?,))
            })
        },
    )?;
    streams.func_wrap_async(
        "[method]output-stream.blocking-write-and-flush",
        |mut store: Store<'_, T>, (s, bytes): (Resource<DynOutputStream>, Vec<u8>)| {
            Box::new(async move {
                let deadline = store.data().deadline();
                let table = store.data_mut().table();
                let r = until_async(deadline, table.blocking_write_and_flush(s, bytes)).await?;
                Ok((lower_async(&mut store, r)?,))
            })
        },
    )?;
    streams.func_wrap_async(
        "[method]output-stream.blocking-write-zeroes-and-flush",
        |mut store: Store<'_, T>, (s, len): (Resource<DynOutputStream>, u64)| {
            Box::new(async move {
                let deadline = store.data().deadline();
                let table = store.data_mut().table();
                let r =
                    until_async(deadline, table.blocking_write_zeroes_and_flush(s, len)).await?;
                Ok((lower_async(&mut store, r)?,))
            })
        },
    )?;
    streams.func_wrap_async(
        "[method]output-stream.blocking-flush",
        |mut store: Store<'_, T>, (s,): (Resource<DynOutputStream>,)| {
            Box::new(async move {
                let deadline = store.data().deadline();
                let r = until_async(deadline, store.data_mut().table().blocking_flush(s)).await?;
                Ok((lower_async(&mut store, r)?,))
            })
        },
    )?;
    streams.func_wrap_async(
        "[method]output-stream.blocking-splice",
        |mut store: Store<'_, T>,
         (dst, src, len): (Resource<DynOutputStream>, Resource<DynInputStream>, u64)| {
            Box::new(async move {
                let deadline = store.data().deadline();
                let table = store.data_mut().table();
                let r = until_async(deadline, table.blocking_splice(dst, src, len)).await?;
                Ok((lower_async(&mut store, r)?,))
            })
        },
    )?;
    Ok(())
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
