//! A worker as the [`Transport`] of its module: calls into the worker process, its status,
//! and resource sessions pinned to one of its connections.

use std::sync::Arc;
use std::time::Instant;

use wasmtime::component::Val;

use super::channel::Channel;
use super::host::Worker;
use super::session::WorkerSession;
use crate::error::Result;
use crate::transport::{BoxFuture, PinnedSession, Transport, TransportStatus};
use crate::value::Function;
use crate::wire::value::{Handles, NoHandles};

impl Transport for Worker {
    fn as_any(&self) -> &dyn std::any::Any {
        self
    }

    fn status(&self) -> TransportStatus {
        TransportStatus {
            pid: self.pid(),
            log_dropped: self.log_dropped(),
            hosts_answering: None,
        }
    }

    fn session(self: Arc<Self>) -> Result<Box<dyn PinnedSession>> {
        Ok(Box::new(WorkerSession::open(self)?))
    }

    fn call(
        &self,
        func: &Function,
        args: &[Val],
        results: &mut [Val],
        deadline: Instant,
    ) -> Result<()> {
        let p = self.process()?;
        let mut ch = p.channel()?;
        let request =
            |ch: &mut Channel, h: &mut dyn Handles| self.send_call(&p, ch, func, args, deadline, h);
        let r = self.exchange(
            &p,
            &mut ch,
            &func.name,
            request,
            &func.results,
            results,
            deadline,
            &mut NoHandles,
        );
        // A connection of a process that died or was killed is not kept.
        p.put(ch);
        r
    }

    fn call_async<'a>(
        &'a self,
        func: &'a Function,
        args: &'a [Val],
        results: &'a mut [Val],
        deadline: Instant,
    ) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            let p = self.process()?;
            let mut ch = p.channel()?;
            let request = |ch: &mut Channel, h: &mut dyn Handles| {
                self.send_call(&p, ch, func, args, deadline, h)
            };
            let r = self
                .exchange_async(
                    &p,
                    &mut ch,
                    &func.name,
                    request,
                    &func.results,
                    results,
                    deadline,
                    &mut NoHandles,
                )
                .await;
            p.put(ch);
            r
        })
    }
}
