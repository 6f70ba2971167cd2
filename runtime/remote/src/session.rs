//! A resource session with a `remote` module: its first call goes to any host (the queue
//! subject) and opens a session there; every later call and drop goes to that host's own
//! subject, so the resources it created keep living in one instance. When that host is
//! gone, the session's calls fail (`Crashed`), as a session with a dead worker does.
//!
//! The answer that opens a session gives its id and key; every later request of the
//! session carries both, so that the host serves it to this caller only. An opening answer
//! without a well-formed id, key and host is the host breaking the protocol (`Crashed`).

use std::sync::Arc;
use std::time::Instant;

use async_nats::header::HeaderMap;
use async_nats::{Message, Subject};
use wasmtime::component::types::Type;
use wasmtime::component::{ResourceAny, Val};

use super::client::RemoteModule;
use super::protocol::{
    self, CLOSE, DROP, ERROR, HOST, NEW_SESSION, SESSION, SESSION_KEY, SessionId, SessionKey,
};
use crate::error::Result;
use crate::transport::{BoxFuture, PinnedSession};
use crate::value::Function;
use crate::wire::stand::Stand;
use crate::wire::value::Handles;

/// One importer instance's session with a remote provider.
pub(crate) struct NatsSession {
    module: Arc<RemoteModule>,
    /// Where the session lives, once the first call opened it.
    at: Option<At>,
    stand: Stand,
}

/// An open session: the serving host's subject, the session's id and key there.
struct At {
    subject: Subject,
    id: SessionId,
    key: SessionKey,
}

impl At {
    /// Names the session in a request's headers.
    fn mark(&self, headers: &mut HeaderMap) {
        headers.insert(SESSION, self.id.to_string().as_str());
        headers.insert(SESSION_KEY, self.key.text().as_str());
    }
}

/// A request ready to send.
struct Prepared {
    subject: Subject,
    headers: HeaderMap,
    body: Vec<u8>,
    pinned: bool,
}

impl NatsSession {
    pub(crate) fn new(module: Arc<RemoteModule>) -> NatsSession {
        NatsSession {
            module,
            at: None,
            stand: Stand::new(),
        }
    }

    fn prepare(
        &mut self,
        func: Option<&Function>,
        args: &[Val],
        drop: Option<u32>,
        deadline: Instant,
    ) -> Result<Prepared> {
        let body = match func {
            Some(f) => RemoteModule::encode(f, args, &mut self.stand)?,
            None => Vec::new(),
        };
        let mut headers = self.module.headers(func.map(|f| f.name.as_str()), deadline);
        if let Some(handle) = drop {
            headers.insert(DROP, handle.to_string().as_str());
        }
        let (subject, pinned) = match &self.at {
            Some(at) => {
                at.mark(&mut headers);
                (at.subject.clone(), true)
            }
            None => {
                headers.insert(SESSION, NEW_SESSION);
                (self.module.subject().clone(), false)
            }
        };
        Ok(Prepared {
            subject,
            headers,
            body,
            pinned,
        })
    }

    /// Notes where the session lives (from the answer that opened it) and decodes it.
    fn finish(&mut self, msg: &Message, types: &[Type]) -> Result<Vec<Val>> {
        let failed = msg.headers.as_ref().is_some_and(|h| h.get(ERROR).is_some());
        // A failed opening call opened nothing; later answers cannot move the session.
        if self.at.is_none() && !failed {
            self.at = Some(self.opened(msg)?);
        }
        let mut results = vec![Val::Bool(false); types.len()];
        self.module
            .answer(msg, types, &mut results, &mut self.stand)?;
        Ok(results)
    }

    /// Where the answer to an opening call says the session lives.
    fn opened(&self, msg: &Message) -> Result<At> {
        let h = msg.headers.as_ref();
        let get = |name: &str| h.and_then(|h| h.get(name)).map(|v| v.as_str());
        let id = get(SESSION).and_then(SessionId::parse);
        let key = get(SESSION_KEY).and_then(SessionKey::parse);
        let host = get(HOST).filter(|h| protocol::valid_host_id(h));
        let (Some(id), Some(key), Some(host)) = (id, key, host) else {
            return Err(self.module.malformed(
                "the answer that opened a resource session lacks a well-formed session id, \
                 session key or host id",
            ));
        };
        let subject = protocol::host_subject(&self.module.nats.app, &self.module.name, host);
        Ok(At {
            subject: subject.into(),
            id,
            key,
        })
    }

    fn send(
        &self,
        p: Prepared,
        deadline: Instant,
    ) -> impl Future<Output = Result<Message>> + Send + use<> {
        self.module
            .request(p.subject, p.headers, p.body, deadline, p.pinned)
    }

    /// The drop request of `handle`, or `None` when the session never opened (then the
    /// handle cannot be one of its resources).
    fn prepare_drop(&mut self, handle: ResourceAny, deadline: Instant) -> Result<Option<Prepared>> {
        let rep = self.stand.lower(&handle, &Type::Bool)?;
        if self.at.is_none() {
            return Ok(None);
        }
        self.prepare(None, &[], Some(rep), deadline).map(Some)
    }
}

use std::future::Future;

impl PinnedSession for NatsSession {
    fn call(&mut self, func: &Function, args: &[Val], deadline: Instant) -> Result<Vec<Val>> {
        let p = self.prepare(Some(func), args, None, deadline)?;
        let msg = self.module.block_on(self.send(p, deadline))?;
        self.finish(&msg, &func.results)
    }

    fn call_async<'a>(
        &'a mut self,
        func: &'a Function,
        args: &'a [Val],
        deadline: Instant,
    ) -> BoxFuture<'a, Result<Vec<Val>>> {
        Box::pin(async move {
            let p = self.prepare(Some(func), args, None, deadline)?;
            let msg = self.send(p, deadline).await?;
            self.finish(&msg, &func.results)
        })
    }

    fn drop_resource(&mut self, handle: ResourceAny, deadline: Instant) -> Result<()> {
        let Some(p) = self.prepare_drop(handle, deadline)? else {
            return Ok(());
        };
        let msg = self.module.block_on(self.send(p, deadline))?;
        self.finish(&msg, &[]).map(drop)
    }

    fn drop_resource_async(
        &mut self,
        handle: ResourceAny,
        deadline: Instant,
    ) -> BoxFuture<'_, Result<()>> {
        Box::pin(async move {
            let Some(p) = self.prepare_drop(handle, deadline)? else {
                return Ok(());
            };
            let msg = self.send(p, deadline).await?;
            self.finish(&msg, &[]).map(drop)
        })
    }
}

impl Drop for NatsSession {
    fn drop(&mut self) {
        // The host ends the session's instance (its resources' destructors run there).
        let Some(at) = self.at.take() else {
            return;
        };
        let mut headers = HeaderMap::new();
        at.mark(&mut headers);
        headers.insert(CLOSE, "1");
        let subject = at.subject;
        let client = self.module.nats.client.clone();
        self.module.nats.handle().spawn(async move {
            let _ = client
                .publish_with_headers(subject, headers, Default::default())
                .await;
        });
    }
}
