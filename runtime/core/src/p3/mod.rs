//! WASI 0.3 modules (component-model async): told apart from 0.2 ones by their bytes
//! ([`detect`]), compiled on a second engine with concurrency support ([`engine`]), and run
//! many calls per instance ([`executor`], [`driver`]), each call with its own deadline
//! ([`deadlines`]).
//!
//! What holds for 0.3 modules as for 0.2 ones: the same grants (directories, environment,
//! network, outbound HTTP, stdio) on the 0.3 interfaces of WASI, the same limits on each
//! instance (memory, time), admission, supervision and metrics per call, live upgrade.
//! What differs, because calls share an instance (docs/decisions/0013-wasi-p3.md):
//! - `limits.concurrency` calls run at once in one instance (default 16);
//! - a call's caller gets `Timeout` at its deadline while the others go on; the instance
//!   then takes no new calls and is dropped when the rest are answered;
//! - a failure of the Store (a trap, or a call's code running past its deadline) fails
//!   every call in it: the others get `Unavailable`;
//! - the budgets armed per call on 0.2 (fuel, output, open files) cover a busy period of
//!   the instance (from idle to idle), which is one call when `concurrency = 1`.

//!
//! Without the `p3` feature only [`detect`] is here: a 0.3 component is refused at load.

#[cfg(feature = "p3")]
pub mod call;
#[cfg(feature = "p3")]
pub mod deadlines;
pub mod detect;
#[cfg(feature = "p3")]
pub mod driver;
#[cfg(feature = "p3")]
pub mod engine;
#[cfg(feature = "p3")]
pub mod executor;
#[cfg(feature = "p3")]
pub mod future;
#[cfg(feature = "p3")]
pub mod http;
#[cfg(feature = "p3")]
pub mod link;
#[cfg(feature = "p3")]
pub mod pipe;

pub use detect::Wasi;

use wasmtime::component::types::Type;

/// A value a link carries from one instance's Store into another's as a pipe
/// (`pipe.rs`): a `stream<u8>`, or a `future` of a [`Payload`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Crossing {
    /// `stream<u8>`.
    Bytes,
    /// `future<T>` (or `future` without a value).
    Future(Payload),
}

/// The value types a `future` may carry across a link: whole values the host can hold
/// between two Stores (no handles inside).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Payload {
    /// `future` without a value.
    Unit,
    Bool,
    U8,
    U16,
    U32,
    U64,
    S8,
    S16,
    S32,
    S64,
    F32,
    F64,
    Char,
    String,
    /// `list<u8>`.
    Bytes,
}

impl Payload {
    /// The payload of a `future` of `ty` (`None`: no value), if a link carries it.
    pub fn of(ty: Option<Type>) -> Option<Payload> {
        Some(match ty {
            None => Payload::Unit,
            Some(Type::Bool) => Payload::Bool,
            Some(Type::U8) => Payload::U8,
            Some(Type::U16) => Payload::U16,
            Some(Type::U32) => Payload::U32,
            Some(Type::U64) => Payload::U64,
            Some(Type::S8) => Payload::S8,
            Some(Type::S16) => Payload::S16,
            Some(Type::S32) => Payload::S32,
            Some(Type::S64) => Payload::S64,
            Some(Type::Float32) => Payload::F32,
            Some(Type::Float64) => Payload::F64,
            Some(Type::Char) => Payload::Char,
            Some(Type::String) => Payload::String,
            Some(Type::List(l)) if matches!(l.ty(), Type::U8) => Payload::Bytes,
            Some(_) => return None,
        })
    }
}

/// How `ty` crosses a link, when it is a stream or a future a link carries.
pub fn crossing(ty: &Type) -> Option<Crossing> {
    match ty {
        Type::Stream(s) if matches!(s.ty(), Some(Type::U8)) => Some(Crossing::Bytes),
        Type::Future(f) => Payload::of(f.ty()).map(Crossing::Future),
        _ => None,
    }
}

/// The positions among `types` of the values that cross as pipes, with how.
pub fn positions<'a>(types: impl IntoIterator<Item = &'a Type>) -> Vec<(usize, Crossing)> {
    types
        .into_iter()
        .enumerate()
        .filter_map(|(i, t)| crossing(t).map(|c| (i, c)))
        .collect()
}

/// Host handles one call of a WASI 0.3 instance may hold besides its files (requests,
/// responses, fields, streams, sockets, descriptors).
pub const HANDLES_PER_CALL: usize = 64;

/// The host handles one WASI 0.3 instance may hold at once: `limits.files` plus
/// [`HANDLES_PER_CALL`] per call it runs at once. Descriptors are counted one by one as on
/// 0.2 (`capability/hooks/p3.rs`); sockets and the other 0.3 handles are bounded only by
/// this cap on the whole handle table, past which the guest's call traps (`FilesLimit`).
pub fn handle_cap(limits: &crate::spec::Limits) -> usize {
    (limits.files as usize).saturating_add(HANDLES_PER_CALL.saturating_mul(limits.concurrency))
}
