//! A resource session with a `process` module: one worker connection pinned to one
//! importer instance, so that the resources its calls create live in one worker instance
//! and the importer's handles keep meaning them.
//!
//! A resource crosses as a `u32` handle: the worker keeps a table of its instance's
//! resources per connection, the host stands for each with a host resource of a small
//! Store of its own (what the link code's proxies hold, as for an in-process provider).

use std::sync::Arc;
use std::time::Instant;

use wasmtime::component::types::Type;
use wasmtime::component::{ResourceAny, Val};

use super::channel::Channel;
use super::host::Worker;
use super::process::Process;
use crate::error::{Error, ErrorKind, Result};
use crate::transport::{BoxFuture, PinnedSession, Transport};
use crate::value::Function;
use crate::wire::message::DROP;
use crate::wire::stand::Stand;
use crate::wire::value::Handles;

/// One importer instance's session with a `process` provider.
pub(crate) struct WorkerSession {
    transport: Arc<dyn Transport>,
    process: Arc<Process>,
    ch: Option<Channel>,
    stand: Stand,
}

impl WorkerSession {
    /// Opens a connection of its own to the provider's worker.
    pub(crate) fn open(transport: Arc<dyn Transport>) -> Result<WorkerSession> {
        let worker = Worker::of(&*transport).expect("a process module's transport is a worker");
        let process = worker.process()?;
        let ch = process.channel()?;
        Ok(WorkerSession {
            transport,
            process,
            ch: Some(ch),
            stand: Stand::new(),
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
    fn call_sync(&mut self, func: &Function, args: &[Val], deadline: Instant) -> Result<Vec<Val>> {
        let (worker, p, ch, stand) = self.parts()?;
        let mut results = vec![Val::Bool(false); func.results.len()];
        let request = |ch: &mut Channel, h: &mut dyn Handles| {
            worker.send_call(p, ch, func, args, deadline, h)
        };
        worker.exchange(
            p,
            ch,
            &func.name,
            request,
            &func.results,
            &mut results,
            deadline,
            stand,
        )?;
        Ok(results)
    }

    /// [`WorkerSession::call_sync`] on the caller's task.
    async fn call_on_task(
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
            .exchange_async(
                p,
                ch,
                &func.name,
                request,
                &func.results,
                &mut results,
                deadline,
                stand,
            )
            .await?;
        Ok(results)
    }

    /// Drops a resource of the session in the worker (its destructor runs there).
    fn drop_sync(&mut self, handle: ResourceAny, deadline: Instant) -> Result<()> {
        let (worker, p, ch, stand) = self.parts()?;
        let rep = stand.lower(&handle, &Type::Bool)?;
        let request = |ch: &mut Channel, _: &mut dyn Handles| {
            ch.send(DROP, &rep.to_le_bytes())
                .map_err(|e| p.crashed(&format!("cannot be written to ({e})")))
        };
        worker.exchange(p, ch, "[drop]", request, &[], &mut [], deadline, stand)
    }

    /// [`WorkerSession::drop_sync`] on the caller's task.
    async fn drop_on_task(&mut self, handle: ResourceAny, deadline: Instant) -> Result<()> {
        let (worker, p, ch, stand) = self.parts()?;
        let rep = stand.lower(&handle, &Type::Bool)?;
        let request = |ch: &mut Channel, _: &mut dyn Handles| {
            ch.send(DROP, &rep.to_le_bytes())
                .map_err(|e| p.crashed(&format!("cannot be written to ({e})")))
        };
        worker
            .exchange_async(p, ch, "[drop]", request, &[], &mut [], deadline, stand)
            .await
    }
}

impl PinnedSession for WorkerSession {
    fn call(&mut self, func: &Function, args: &[Val], deadline: Instant) -> Result<Vec<Val>> {
        self.call_sync(func, args, deadline)
    }

    fn call_async<'a>(
        &'a mut self,
        func: &'a Function,
        args: &'a [Val],
        deadline: Instant,
    ) -> BoxFuture<'a, Result<Vec<Val>>> {
        Box::pin(self.call_on_task(func, args, deadline))
    }

    fn drop_resource(&mut self, handle: ResourceAny, deadline: Instant) -> Result<()> {
        self.drop_sync(handle, deadline)
    }

    fn drop_resource_async(
        &mut self,
        handle: ResourceAny,
        deadline: Instant,
    ) -> BoxFuture<'_, Result<()>> {
        Box::pin(self.drop_on_task(handle, deadline))
    }
}
