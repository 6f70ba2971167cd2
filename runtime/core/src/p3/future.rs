//! A `future` across a link between two WASI 0.3 instances (the ticket scheme and streams
//! are in `pipe.rs`).
//!
//! The host takes the future out of the Store that holds it ([`take`]: a consumer that its
//! event loop hands the value to once the writer writes it) into a one-value channel, and
//! gives the other Store a new future of its own fed from that channel ([`give`]). The
//! value crosses as a [`Val`]: one of the simple types of [`Payload`], never a handle.
//!
//! A future whose writer's instance ended before writing never resolves on the other side
//! (the component model has no way to say so to a reader): the call that waits for it ends
//! at its deadline.

use std::future::Future as _;
use std::marker::PhantomData;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::sync::oneshot;
use wasmtime::component::{
    ComponentType, FutureAny, FutureConsumer, FutureProducer, FutureReader, Lift, Lower, Source,
    Val,
};
use wasmtime::{AsContextMut, StoreContextMut};

use super::Payload;
use crate::instance::HostState;

/// The value of a future on its way from one Store to another.
pub type Pending = oneshot::Receiver<Val>;

/// A value type a future carries across a link, as the host holds it.
trait Simple: ComponentType + Lift + Lower + Send + Sync + Unpin + 'static {
    fn into_val(self) -> Val;
    fn from_val(v: Val) -> Option<Self>;
}

macro_rules! simple {
    ($($t:ty => $v:ident),* $(,)?) => {$(
        impl Simple for $t {
            fn into_val(self) -> Val {
                Val::$v(self)
            }
            fn from_val(v: Val) -> Option<Self> {
                match v {
                    Val::$v(x) => Some(x),
                    _ => None,
                }
            }
        }
    )*};
}

simple!(
    bool => Bool, u8 => U8, u16 => U16, u32 => U32, u64 => U64, i8 => S8, i16 => S16,
    i32 => S32, i64 => S64, f32 => Float32, f64 => Float64, char => Char, String => String,
);

impl Simple for () {
    fn into_val(self) -> Val {
        Val::Tuple(Vec::new())
    }
    fn from_val(_: Val) -> Option<Self> {
        Some(())
    }
}

impl Simple for Vec<u8> {
    fn into_val(self) -> Val {
        Val::List(self.into_iter().map(Val::U8).collect())
    }
    fn from_val(v: Val) -> Option<Self> {
        let Val::List(items) = v else { return None };
        items
            .into_iter()
            .map(|x| match x {
                Val::U8(b) => Some(b),
                _ => None,
            })
            .collect()
    }
}

/// Runs `$f::<T>($args)` for the Rust type `T` of `$payload`.
macro_rules! by_payload {
    ($payload:expr, $f:ident($($arg:expr),*)) => {
        match $payload {
            Payload::Unit => $f::<()>($($arg),*),
            Payload::Bool => $f::<bool>($($arg),*),
            Payload::U8 => $f::<u8>($($arg),*),
            Payload::U16 => $f::<u16>($($arg),*),
            Payload::U32 => $f::<u32>($($arg),*),
            Payload::U64 => $f::<u64>($($arg),*),
            Payload::S8 => $f::<i8>($($arg),*),
            Payload::S16 => $f::<i16>($($arg),*),
            Payload::S32 => $f::<i32>($($arg),*),
            Payload::S64 => $f::<i64>($($arg),*),
            Payload::F32 => $f::<f32>($($arg),*),
            Payload::F64 => $f::<f64>($($arg),*),
            Payload::Char => $f::<char>($($arg),*),
            Payload::String => $f::<String>($($arg),*),
            Payload::Bytes => $f::<Vec<u8>>($($arg),*),
        }
    };
}

/// Takes the future `val` (of `payload`, in the Store `store`) out of it: its value goes
/// into the returned channel when the writer writes it.
pub fn take(
    store: impl AsContextMut<Data = HostState>,
    val: Val,
    payload: Payload,
) -> wasmtime::Result<Pending> {
    let Val::Future(any) = val else {
        wasmtime::bail!("a future was expected");
    };
    by_payload!(payload, take_as(store, any))
}

fn take_as<T: Simple>(
    mut store: impl AsContextMut<Data = HostState>,
    any: FutureAny,
) -> wasmtime::Result<Pending> {
    let reader = FutureReader::<T>::try_from_future_any(any)?;
    let (tx, rx) = oneshot::channel();
    reader.pipe(&mut store, Settle::new(tx, T::into_val))?;
    Ok(rx)
}

/// Gives the Store `store` a new future of `payload` resolved by `pending`.
pub fn give(
    store: impl AsContextMut<Data = HostState>,
    pending: Pending,
    payload: Payload,
) -> wasmtime::Result<Val> {
    by_payload!(payload, give_as(store, pending))
}

fn give_as<T: Simple>(
    mut store: impl AsContextMut<Data = HostState>,
    pending: Pending,
) -> wasmtime::Result<Val> {
    let reader = FutureReader::<T>::new(
        &mut store,
        Resolve::<T> {
            rx: Some(pending),
            _t: PhantomData,
        },
    )?;
    Ok(Val::Future(reader.try_into_future_any(&mut store)?))
}

/// Hands the value a writer writes to a channel, through `map`.
pub struct Settle<V, W> {
    tx: Option<oneshot::Sender<W>>,
    map: fn(V) -> W,
}

impl<V, W> Settle<V, W> {
    /// A consumer that sends `map` of the future's value to `tx`.
    pub fn new(tx: oneshot::Sender<W>, map: fn(V) -> W) -> Self {
        Settle { tx: Some(tx), map }
    }
}

impl<D, V, W> FutureConsumer<D> for Settle<V, W>
where
    V: Lift + Send + Sync + 'static,
    W: Send + 'static,
{
    type Item = V;

    fn poll_consume(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
        mut store: StoreContextMut<D>,
        mut source: Source<'_, V>,
        _finish: bool,
    ) -> Poll<wasmtime::Result<()>> {
        let mut value = None;
        source.read(&mut store, &mut value)?;
        if let (Some(v), Some(tx)) = (value, self.tx.take()) {
            // A reader on the other side that is gone no longer needs it.
            let _ = tx.send((self.map)(v));
        }
        Poll::Ready(Ok(()))
    }
}

/// Produces the value that arrives on a channel.
struct Resolve<T> {
    rx: Option<Pending>,
    _t: PhantomData<fn() -> T>,
}

impl<T: Simple> FutureProducer<HostState> for Resolve<T> {
    type Item = T;

    fn poll_produce(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        _: StoreContextMut<HostState>,
        finish: bool,
    ) -> Poll<wasmtime::Result<Option<T>>> {
        let got = match self.rx.as_mut() {
            Some(rx) => Pin::new(rx).poll(cx),
            None => Poll::Pending,
        };
        match got {
            Poll::Ready(Ok(v)) => {
                self.rx = None;
                match T::from_val(v) {
                    Some(x) => Poll::Ready(Ok(Some(x))),
                    None => Poll::Ready(Err(wasmtime::format_err!(
                        "a future's value changed type crossing a link"
                    ))),
                }
            }
            // The writer's side ended without a value: this future never resolves.
            Poll::Ready(Err(_)) => {
                self.rx = None;
                if finish {
                    Poll::Ready(Ok(None))
                } else {
                    Poll::Pending
                }
            }
            Poll::Pending if finish => Poll::Ready(Ok(None)),
            Poll::Pending => Poll::Pending,
        }
    }
}
