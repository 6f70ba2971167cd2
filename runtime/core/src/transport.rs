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

use std::sync::Arc;

use wasmtime::component::types::Type;
use wasmtime::component::{ResourceAny, Val};

use crate::error::Result;
use crate::value::Function;

/// A boxed future, for the async halves of the traits.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Serves calls of a module's exports outside this process's Stores.
pub trait Transport: Send + Sync {
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

    /// Opens a resource session: the calls made through it reach one instance of the
    /// module (wherever it runs) until the session is dropped.
    fn session(self: Arc<Self>) -> Result<Box<dyn PinnedSession>>;

    /// Whether this process's pool and circuit breaker govern the module's calls. A
    /// worker's instances are this host's to count and supervise; a remote module's hosts
    /// apply its limits and restart policy themselves, so here calls take no pool slot
    /// and failures do not open this host's circuit (an outage of the hosts would
    /// otherwise keep it open after they are back).
    fn governed_here(&self) -> bool {
        true
    }

    /// Whether each call takes a slot of this process's pool while it runs. A worker's
    /// calls do; a remote module's do not (its hosts count them); a WASI 0.3 module's
    /// instances hold the slots themselves, each serving many calls.
    fn slot_per_call(&self) -> bool {
        self.governed_here()
    }

    /// The generation was replaced: whatever it keeps for later calls (idle instances) can
    /// go once the calls it runs are over.
    fn superseded(&self) {}

    /// What the transport adds to its module's status (worker process, hosts).
    fn status(&self) -> TransportStatus {
        TransportStatus::default()
    }

    /// The transport itself, for tests and status that know its type.
    fn as_any(&self) -> &dyn std::any::Any;
}

/// What a transport says of where its module runs, for [`App::status`](crate::App::status).
#[derive(Debug, Clone, Copy, Default)]
pub struct TransportStatus {
    /// The process id of the worker serving the module now, if one runs.
    pub pid: Option<u32>,
    /// Log events of the module's workers dropped over their budget, so far.
    pub log_dropped: u64,
    /// How many hosts answered calls recently, for a transport with several.
    pub hosts_answering: Option<usize>,
}

/// A resource session with a module served elsewhere: its calls and drops reach one
/// instance there, so the handles it returned keep meaning that instance's resources.
pub trait PinnedSession: Send {
    /// Calls `func` in the session's instance; blocks the thread.
    fn call(&mut self, func: &Function, args: &[Val], deadline: Instant) -> Result<Vec<Val>>;

    /// [`PinnedSession::call`] on the caller's task.
    fn call_async<'a>(
        &'a mut self,
        func: &'a Function,
        args: &'a [Val],
        deadline: Instant,
    ) -> BoxFuture<'a, Result<Vec<Val>>>;

    /// Drops a resource of the session there (its destructor runs there); blocks.
    fn drop_resource(&mut self, handle: ResourceAny, deadline: Instant) -> Result<()>;

    /// [`PinnedSession::drop_resource`] on the caller's task.
    fn drop_resource_async(
        &mut self,
        handle: ResourceAny,
        deadline: Instant,
    ) -> BoxFuture<'_, Result<()>>;
}

/// The linked functions a remote module may call, served by this host. Names are
/// `import#func` as the module imports them.
pub trait Links: Send + Sync {
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
