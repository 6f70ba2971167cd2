//! A resource session with a `process` module: one worker connection pinned to one
//! importer instance, so that the resources its calls create live in one worker instance
//! and the importer's handles keep meaning them.
//!
//! A resource crosses as a `u32` handle: the worker keeps a table of its instance's
//! resources per connection, the host stands for each with a host resource of a small
//! Store of its own (what the link code's proxies hold, as for an in-process provider).

use std::sync::{Arc, OnceLock};
use std::time::Instant;

use wasmtime::component::types::Type;
use wasmtime::component::{ResourceAny, ResourceDynamic, Val};
use wasmtime::{Engine, Store};

use super::channel::Channel;
use super::host::Worker;
use super::process::Process;
use crate::error::{Error, ErrorKind, Result};
use crate::transport::Transport;
use crate::value::Function;
use crate::wire::message::{DROP, malformed};
use crate::wire::value::Handles;

/// The host's stand-ins for a session's remote resources: a host resource per worker
/// handle, and which handle each stands for (`ResourceAny` has no hash; a session holds
/// few handles at a time).
struct Stand {
    store: Store<()>,
    held: Vec<(ResourceAny, u32)>,
}

/// The engine of the stand-in Stores (they hold handles, never run code).
fn engine() -> &'static Engine {
    static ENGINE: OnceLock<Engine> = OnceLock::new();
    ENGINE.get_or_init(Engine::default)
}

impl Handles for Stand {
    fn lower(&mut self, r: &ResourceAny, ty: &Type) -> Result<u32> {
        let i = self.held.iter().position(|(h, _)| h == r).ok_or_else(|| {
            Error::new(
                ErrorKind::InvalidArgs,
                "a resource handle does not belong to this session",
            )
        })?;
        let rep = self.held[i].1;
        if !matches!(ty, Type::Borrow(_)) {
            // Ownership moves to the worker (or the handle is dropped): forget the stand-in.
            let (h, _) = self.held.swap_remove(i);
            let _ = h.resource_drop(&mut self.store);
        }
        Ok(rep)
    }

    fn lift(&mut self, handle: u32, ty: &Type) -> Result<ResourceAny> {
        if !matches!(ty, Type::Own(_)) {
            return Err(malformed("the worker returned a borrowed resource"));
        }
        let r = ResourceDynamic::new_own(handle, 0)
            .try_into_resource_any(&mut self.store)
            .map_err(|e| malformed(&format!("cannot hold a resource handle: {e}")))?;
        self.held.push((r, handle));
        Ok(r)
    }
}

/// One importer instance's session with a `process` provider.
pub(crate) struct RemoteSession {
    transport: Arc<dyn Transport>,
    process: Arc<Process>,
    ch: Option<Channel>,
    stand: Stand,
}

impl RemoteSession {
    /// Opens a connection of its own to the provider's worker.
    pub(crate) fn open(transport: &Arc<dyn Transport>) -> Result<RemoteSession> {
        let worker = Worker::of(&**transport).expect("a process module's transport is a worker");
        let process = worker.process()?;
        let ch = process.channel()?;
        Ok(RemoteSession {
            transport: transport.clone(),
            process,
            ch: Some(ch),
            stand: Stand {
                store: Store::new(engine(), ()),
                held: Vec::new(),
            },
        })
    }

    fn parts(&mut self) -> Result<(&Worker, &Process, &mut Channel, &mut Stand)> {
        let worker = Worker::of(&*self.transport).expect("a worker");
        let ch = self.ch.as_mut().ok_or_else(|| {
            Error::new(
                ErrorKind::Crashed,
                "the worker of this resource session died; its resources are gone",
            )
        })?;
        Ok((worker, &self.process, ch, &mut self.stand))
    }

    /// Calls `func` in the session's worker instance.
    pub(crate) fn call(
        &mut self,
        func: &Function,
        args: &[Val],
        deadline: Instant,
    ) -> Result<Vec<Val>> {
        let (worker, p, ch, stand) = self.parts()?;
        let mut results = vec![Val::Bool(false); func.results.len()];
        let request = |ch: &mut Channel, h: &mut dyn Handles| {
            worker.send_call(p, ch, func, args, deadline, h)
        };
        worker.exchange(p, ch, request, &func.results, &mut results, deadline, stand)?;
        Ok(results)
    }

    /// [`RemoteSession::call`] on the caller's task.
    pub(crate) async fn call_async(
        &mut self,
        func: &Function,
        args: &[Val],
        deadline: Instant,
    ) -> Result<Vec<Val>> {
        let (worker, p, ch, stand) = self.parts()?;
        let mut results = vec![Val::Bool(false); func.results.len()];
        let request = |ch: &mut Channel, h: &mut dyn Handles| {
            worker.send_call(p, ch, func, args, deadline, h)
        };
        worker
            .exchange_async(p, ch, request, &func.results, &mut results, deadline, stand)
            .await?;
        Ok(results)
    }

    /// Drops a resource of the session in the worker (its destructor runs there).
    pub(crate) fn drop_resource(&mut self, handle: ResourceAny, deadline: Instant) -> Result<()> {
        let (worker, p, ch, stand) = self.parts()?;
        let rep = stand.lower(&handle, &Type::Bool)?;
        let request = |ch: &mut Channel, _: &mut dyn Handles| {
            ch.send(DROP, &rep.to_le_bytes())
                .map_err(|e| p.crashed(&format!("cannot be written to ({e})")))
        };
        worker.exchange(p, ch, request, &[], &mut [], deadline, stand)
    }

    /// [`RemoteSession::drop_resource`] on the caller's task.
    pub(crate) async fn drop_resource_async(
        &mut self,
        handle: ResourceAny,
        deadline: Instant,
    ) -> Result<()> {
        let (worker, p, ch, stand) = self.parts()?;
        let rep = stand.lower(&handle, &Type::Bool)?;
        let request = |ch: &mut Channel, _: &mut dyn Handles| {
            ch.send(DROP, &rep.to_le_bytes())
                .map_err(|e| p.crashed(&format!("cannot be written to ({e})")))
        };
        worker
            .exchange_async(p, ch, request, &[], &mut [], deadline, stand)
            .await
    }
}
