//! The one small forwarding interface between a module's callers and a module that runs
//! somewhere else than in this process's Stores: values in, values out, errors typed.
//!
//! [`Transport`] carries calls to such a module (a worker process today, another machine
//! later); [`Links`] carries the calls that module makes through its own links back to
//! the host, which serves them like any linked call. Both sides type every value by the
//! function both know, checked when the app loaded.

use std::future::Future;
use std::pin::Pin;
use std::time::Instant;

use wasmtime::component::Val;
use wasmtime::component::types::Type;

use crate::error::Result;
use crate::value::Function;

/// A boxed future, for the async halves of the traits.
pub(crate) type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Serves calls of a module's exports outside this process's Stores.
pub(crate) trait Transport: Send + Sync {
    /// Calls `func` with `args`, writing `results`; blocks the thread. The far side stops
    /// the call at `deadline`; the transport gives up a little after it.
    fn call(
        &self,
        func: &Function,
        args: &[Val],
        results: &mut [Val],
        deadline: Instant,
    ) -> Result<()>;

    /// [`Transport::call`] on the caller's task.
    fn call_async<'a>(
        &'a self,
        func: &'a Function,
        args: &'a [Val],
        results: &'a mut [Val],
        deadline: Instant,
    ) -> BoxFuture<'a, Result<()>>;

    /// The transport itself, for tests and status that know its type.
    fn as_any(&self) -> &dyn std::any::Any;
}

/// The linked functions a remote module may call, served by this host. Names are
/// `import#func` as the module imports them.
pub(crate) trait Links: Send + Sync {
    /// The importer's parameter and result types of a linked function.
    fn types(&self, name: &str) -> Option<(&[Type], &[Type])>;

    /// Calls a linked function; blocks the thread.
    fn call(&self, name: &str, args: &[Val], results: &mut [Val], deadline: Instant) -> Result<()>;

    /// [`Links::call`] on the caller's task.
    fn call_async<'a>(
        &'a self,
        name: &'a str,
        args: &'a [Val],
        results: &'a mut [Val],
        deadline: Instant,
    ) -> BoxFuture<'a, Result<()>>;
}
