//! A `stream<u8>` or a `future` across a link between two WASI 0.3 instances (the future's
//! side is in `future.rs`).
//!
//! A stream is a handle in one Store's tables: it cannot be handed to another Store as it
//! is. So the host takes the importer's stream end out of its Store into a bounded channel
//! ([`take`]: a consumer the importer's event loop feeds) and gives the provider a new stream
//! of its own Store fed from that channel ([`give`]: a producer its event loop polls); a
//! stream the provider returns goes back the same way. The channel holds [`DEPTH`] chunks
//! of at most [`CHUNK`] bytes: a reader that stops reading stops the writer, whichever side
//! each is on (backpressure), and the bytes in flight between two instances stay bounded.
//!
//! Both Stores' event loops must run while the stream is open: the provider's instance
//! keeps running between calls (it is kept, idle), and a stream cut by the end of either
//! instance ends for the other side as dropped.

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};

use bytes::Bytes;
use tokio::sync::mpsc;
use tokio_util::sync::PollSender;
use wasmtime::AsContextMut;
use wasmtime::StoreContextMut;
use wasmtime::component::{
    Destination, Source, StreamAny, StreamConsumer, StreamProducer, StreamReader, StreamResult, Val,
};

use crate::instance::HostState;

pub use super::{Crossing, positions};

/// Pipes on their way through the calls of [`crate::generation::Generation`], which carry
/// `Val`s: each stands in a value list as a `u64` ticket ([`park`]) until the other side's
/// Store claims it ([`unpark`]). A ticket is only ever made by the host.
static PARKED: Mutex<Option<HashMap<u64, Pipe>>> = Mutex::new(None);
static TICKETS: AtomicU64 = AtomicU64::new(1);

/// Puts `pipe` aside; the returned value stands for it in a call's values.
pub fn park(pipe: Pipe) -> Val {
    let ticket = TICKETS.fetch_add(1, Ordering::Relaxed);
    PARKED
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .get_or_insert_with(HashMap::new)
        .insert(ticket, pipe);
    Val::U64(ticket)
}

/// The pipe `val` stands for, taken back.
pub fn unpark(val: &Val) -> Option<Pipe> {
    let Val::U64(ticket) = val else {
        return None;
    };
    PARKED
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .as_mut()?
        .remove(ticket)
}

/// Replaces the streams and futures at `at` in `vals` (of the Store `store`) by tickets of
/// pipes.
pub fn take_all(
    mut store: impl AsContextMut<Data = HostState>,
    at: &[(usize, Crossing)],
    vals: &mut [Val],
) -> wasmtime::Result<()> {
    for &(i, how) in at {
        let val = std::mem::replace(&mut vals[i], Val::Bool(false));
        vals[i] = park(take(&mut store, val, how)?);
    }
    Ok(())
}

/// Replaces the tickets at `at` in `vals` by new streams and futures of the Store `store`.
pub fn give_all(
    mut store: impl AsContextMut<Data = HostState>,
    at: &[usize],
    vals: &mut [Val],
) -> wasmtime::Result<()> {
    for &i in at {
        let pipe = unpark(&vals[i])
            .ok_or_else(|| wasmtime::format_err!("a stream or future crossing a link was lost"))?;
        vals[i] = give(&mut store, pipe)?;
    }
    Ok(())
}

/// The positions of `at`.
pub fn indices(at: &[(usize, Crossing)]) -> Vec<usize> {
    at.iter().map(|&(i, _)| i).collect()
}

/// The largest chunk taken from a stream at once.
pub const CHUNK: usize = 64 << 10;

/// Chunks in flight in one pipe.
pub const DEPTH: usize = 2;

/// A stream's bytes or a future's value on their way from one Store to another.
pub enum Pipe {
    /// A `stream<u8>`'s chunks.
    Bytes(mpsc::Receiver<Bytes>),
    /// A `future`'s value.
    Future(super::future::Pending, super::Payload),
}

/// Takes the stream or future `val` (of the Store `store`) out of it: its bytes or value
/// flow into the returned pipe as the Store's event loop runs.
pub fn take(
    mut store: impl AsContextMut<Data = HostState>,
    val: Val,
    how: Crossing,
) -> wasmtime::Result<Pipe> {
    let payload = match how {
        Crossing::Future(p) => p,
        Crossing::Bytes => {
            let Val::Stream(any) = val else {
                wasmtime::bail!("a stream<u8> was expected");
            };
            let reader: StreamReader<u8> = any.try_into_stream_reader()?;
            let (tx, rx) = mpsc::channel(DEPTH);
            reader.pipe(&mut store, Feed::new(tx, None))?;
            return Ok(Pipe::Bytes(rx));
        }
    };
    Ok(Pipe::Future(
        super::future::take(store, val, payload)?,
        payload,
    ))
}

/// Gives the Store `store` a new stream or future fed from `pipe`.
pub fn give(mut store: impl AsContextMut<Data = HostState>, pipe: Pipe) -> wasmtime::Result<Val> {
    match pipe {
        Pipe::Bytes(rx) => {
            let reader = StreamReader::new(&mut store, Drain(rx))?;
            Ok(Val::Stream(StreamAny::try_from_stream_reader(
                &mut store, reader,
            )?))
        }
        Pipe::Future(pending, payload) => super::future::give(store, pending, payload),
    }
}

/// Consumes a stream into a channel, a chunk at a time, when the channel has room; each
/// chunk first passes `admit` when there is one (a quota): refused, the stream ends for its
/// writer as if its reader were gone, and nothing more is taken.
pub struct Feed {
    tx: PollSender<Bytes>,
    admit: Option<Admit>,
}

/// Says whether a chunk of so many bytes may pass.
pub type Admit = Box<dyn FnMut(usize) -> bool + Send>;

impl Feed {
    /// A consumer that sends the stream's chunks to `tx`, each admitted by `admit`.
    pub fn new(tx: mpsc::Sender<Bytes>, admit: Option<Admit>) -> Feed {
        Feed {
            tx: PollSender::new(tx),
            admit,
        }
    }
}

impl<D> StreamConsumer<D> for Feed {
    type Item = u8;

    fn poll_consume(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        store: StoreContextMut<D>,
        source: Source<'_, u8>,
        finish: bool,
    ) -> Poll<wasmtime::Result<StreamResult>> {
        match self.tx.poll_reserve(cx) {
            Poll::Ready(Ok(())) => {
                let mut source = source.as_direct(store);
                let bytes = source.remaining();
                let n = bytes.len().min(CHUNK);
                if let Some(admit) = &mut self.admit
                    && !admit(n)
                {
                    self.tx.close();
                    return Poll::Ready(Ok(StreamResult::Dropped));
                }
                let chunk = Bytes::copy_from_slice(&bytes[..n]);
                match self.tx.send_item(chunk) {
                    Ok(()) => {
                        source.mark_read(n);
                        Poll::Ready(Ok(StreamResult::Completed))
                    }
                    Err(_) => Poll::Ready(Ok(StreamResult::Dropped)),
                }
            }
            // The other side's reader is gone.
            Poll::Ready(Err(_)) => Poll::Ready(Ok(StreamResult::Dropped)),
            Poll::Pending if finish => Poll::Ready(Ok(StreamResult::Cancelled)),
            Poll::Pending => Poll::Pending,
        }
    }
}

/// Produces a stream from a channel's chunks; ends when the channel does.
pub struct Drain(mpsc::Receiver<Bytes>);

impl Drain {
    /// A stream of the chunks `rx` receives.
    pub fn new(rx: mpsc::Receiver<Bytes>) -> Drain {
        Drain(rx)
    }
}

impl<D> StreamProducer<D> for Drain {
    type Item = u8;
    type Buffer = Bytes;

    fn poll_produce<'a>(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        mut store: StoreContextMut<'a, D>,
        mut destination: Destination<'a, u8, Bytes>,
        finish: bool,
    ) -> Poll<wasmtime::Result<StreamResult>> {
        match self.0.poll_recv(cx) {
            Poll::Ready(Some(mut chunk)) => {
                match destination.remaining(&mut store) {
                    Some(room) if room > 0 => {
                        let n = chunk.len().min(room);
                        let rest = chunk.split_off(n);
                        if !rest.is_empty() {
                            destination.set_buffer(rest);
                        }
                        let mut direct = destination.as_direct(store, n);
                        direct.remaining()[..n].copy_from_slice(&chunk);
                        direct.mark_written(n);
                    }
                    // The reader gave no room (or is the host): hand over the whole chunk.
                    _ => destination.set_buffer(chunk),
                }
                Poll::Ready(Ok(StreamResult::Completed))
            }
            Poll::Ready(None) => Poll::Ready(Ok(StreamResult::Dropped)),
            Poll::Pending if finish => Poll::Ready(Ok(StreamResult::Cancelled)),
            Poll::Pending => Poll::Pending,
        }
    }
}

/// Values of a call whose positions `at` may hold tickets: the pipes of tickets never
/// claimed are dropped with them (a call that failed before it started).
pub struct Tickets {
    pub vals: Vec<Val>,
    pub at: Vec<usize>,
}

impl Drop for Tickets {
    fn drop(&mut self) {
        for &i in &self.at {
            if let Some(v) = self.vals.get(i) {
                drop(unpark(v));
            }
        }
    }
}
