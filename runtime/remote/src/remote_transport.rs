//! A `remote` module as a [`Transport`]: plain calls go to the module's queue subject
//! (`client.rs`), calls with resources to a session (`session.rs`). Apart from both, so
//! that neither file needs the other's.

use std::sync::Arc;
use std::time::Instant;

use wasmtime::component::Val;

use super::client::RemoteModule;
use super::session::NatsSession;
use crate::error::Result;
use crate::transport::{BoxFuture, PinnedSession, Transport, TransportStatus};
use crate::value::Function;
use crate::wire::value::NoHandles;

impl Transport for RemoteModule {
    fn call(
        &self,
        func: &Function,
        args: &[Val],
        results: &mut [Val],
        deadline: Instant,
    ) -> Result<()> {
        let body = Self::encode(func, args, &mut NoHandles)?;
        let headers = self.headers(Some(&func.name), deadline);
        let msg =
            self.block_on(self.request(self.subject().clone(), headers, body, deadline, false))?;
        self.answer(&msg, &func.results, results, &mut NoHandles)
    }

    fn call_async<'a>(
        &'a self,
        func: &'a Function,
        args: &'a [Val],
        results: &'a mut [Val],
        deadline: Instant,
    ) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            let body = Self::encode(func, args, &mut NoHandles)?;
            let headers = self.headers(Some(&func.name), deadline);
            let msg = self
                .request(self.subject().clone(), headers, body, deadline, false)
                .await?;
            self.answer(&msg, &func.results, results, &mut NoHandles)
        })
    }

    fn session(self: Arc<Self>) -> Result<Box<dyn PinnedSession>> {
        Ok(Box::new(NatsSession::new(self)))
    }

    fn governed_here(&self) -> bool {
        false
    }

    fn status(&self) -> TransportStatus {
        TransportStatus {
            hosts_answering: Some(self.hosts_recent()),
            ..TransportStatus::default()
        }
    }

    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}
