//! The caller's side of a `remote` module: each call is a NATS request to the module's
//! subject, answered by one of the hosts serving it.

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_nats::header::HeaderMap;
use async_nats::{Message, Request, RequestErrorKind, Subject};
use wasmtime::component::Val;
use wasmtime::component::types::Type;

use super::connect::Nats;
use super::protocol::{self, DEADLINE, ERROR, FUNC, HASH, HOST, TRACEPARENT};
use crate::compile::Compiled;
use crate::error::{Error, ErrorKind, Result};
use crate::transport::Transport;
use crate::value::Function;
use crate::wire::message::{malformed, read_error};
use crate::wire::value::{self, Handles};

/// How long after a call's deadline the caller waits for the host's answer (the host
/// stops the call at the deadline and answers `Timeout` itself; this covers the trip).
pub(crate) const GRACE: Duration = Duration::from_millis(100);

/// Calls of one remote module this process may have waiting for answers at once; more
/// are refused (`Overloaded`) rather than queued without bound.
pub(crate) const MAX_IN_FLIGHT: usize = 4096;

/// How recently a host must have answered to count as answering (status).
pub(crate) const RECENT: Duration = Duration::from_secs(60);

/// Hosts of one module a caller remembers (status); answers naming more are not counted,
/// so that a party answering with made-up host ids cannot grow the table.
const MAX_HOSTS: usize = 1024;

/// A `remote` module as its callers see it.
pub(crate) struct RemoteModule {
    pub(crate) nats: Arc<Nats>,
    pub(crate) name: Arc<str>,
    subject: Subject,
    /// This app's [`protocol::module_hash`] of the module, sent with every call.
    hash: String,
    /// The largest answer accepted: the module's `hostcall` limit.
    max_answer: u64,
    in_flight: Arc<AtomicUsize>,
    /// The hosts that answered: when they last did, and how many answers in all.
    hosts: Mutex<HashMap<Arc<str>, (Instant, u64)>>,
}

impl RemoteModule {
    /// The transport of a compiled `remote` module; without a connection (the app was
    /// loaded with [`Config::connect_nats`](crate::Config) off), one that refuses calls.
    pub(crate) fn start(nats: Option<&Arc<Nats>>, c: &Compiled) -> Result<Arc<dyn Transport>> {
        let Some(nats) = nats else {
            return Ok(Arc::new(super::offline::Offline {
                name: c.name.as_str().into(),
            }));
        };
        Ok(Arc::new(RemoteModule {
            nats: nats.clone(),
            name: c.name.as_str().into(),
            subject: protocol::subject(&nats.app, &c.name).into(),
            hash: protocol::module_hash(&c.hash, &c.spec),
            max_answer: c.spec.limits.hostcall,
            in_flight: Arc::new(AtomicUsize::new(0)),
            hosts: Mutex::new(HashMap::new()),
        }))
    }

    /// The headers of a request for `func` (a drop when `None`) due at `deadline`.
    pub(crate) fn headers(&self, func: Option<&str>, deadline: Instant) -> HeaderMap {
        let mut h = HeaderMap::new();
        if let Some(f) = func {
            h.insert(FUNC, f);
        }
        h.insert(
            DEADLINE,
            protocol::deadline_value(deadline.saturating_duration_since(Instant::now())).as_str(),
        );
        h.insert(HASH, self.hash.as_str());
        if let Some(span) = crate::telemetry::propagated() {
            h.insert(TRACEPARENT, span.traceparent().as_str());
        }
        h
    }

    /// Encodes the arguments of a call.
    pub(crate) fn encode(func: &Function, args: &[Val], h: &mut dyn Handles) -> Result<Vec<u8>> {
        let mut body = Vec::with_capacity(64);
        for (v, (_, ty)) in args.iter().zip(&func.params) {
            value::encode(v, ty, &mut body, h)?;
        }
        Ok(body)
    }

    /// Sends a request to `subject` and waits for its answer until `deadline` plus
    /// [`GRACE`]. The future owns what it needs, so that a synchronous caller can run it
    /// on the connection's runtime.
    pub(crate) fn request(
        &self,
        subject: Subject,
        headers: HeaderMap,
        body: Vec<u8>,
        deadline: Instant,
        session: bool,
    ) -> impl Future<Output = Result<Message>> + Send + use<> {
        let client = self.nats.client.clone();
        let mut watch = self.nats.up.clone();
        // Only a drop during this call counts: the state was checked just above, and the
        // event of an earlier reconnection may not have arrived yet.
        watch.mark_unchanged();
        let name = self.name.clone();
        let up = self.nats.connected();
        let down = (!up).then(|| self.nats.down(&name));
        let slot = InFlight::take(self);
        async move {
            if let Some(e) = down {
                return Err(e);
            }
            let _slot = slot?;
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(timeout(&name));
            }
            let request = Request::new()
                .headers(headers)
                .payload(body.into())
                .timeout(Some(left + GRACE));
            // The client does not fail a request whose connection drops: watch for that.
            tokio::select! {
                answer = client.send_request(subject, request) => {
                    answer.map_err(|e| request_error(&name, session, e))
                }
                _ = dropped(&mut watch) => Err(lost(&name)),
            }
        }
    }

    /// What an answer means: results decoded into `results`, or the host's error.
    ///
    /// Whoever answers may be hostile (anyone who may subscribe on the module's subject can):
    /// an error is read within the bounds of `wire/message.rs` (its size, its message, its
    /// causes); results larger than the module's `hostcall` limit are refused before they
    /// are decoded, and are decoded by the hostile-input decoder.
    pub(crate) fn answer(
        &self,
        msg: &Message,
        types: &[Type],
        results: &mut [Val],
        h: &mut dyn Handles,
    ) -> Result<()> {
        let headers = msg.headers.as_ref();
        if let Some(host) = headers.and_then(|h| h.get(HOST)) {
            self.answered(host.as_str());
        }
        if headers.and_then(|h| h.get(ERROR)).is_some() {
            return Err(read_error(&msg.payload).in_module(&self.name));
        }
        let size = msg.payload.len() as u64;
        if size > self.max_answer {
            let m = &self.name;
            return Err(Error::new(
                ErrorKind::HostcallLimit,
                format!(
                    "module `{m}` is remote and its host answered with {size} bytes, more than \
                     its hostcall limit of {} bytes (raise [modules.{m}.limits] hostcall if its \
                     results are that large)",
                    self.max_answer
                ),
            )
            .with_module(&**m)
            .with_key(format!("modules.{m}.limits.hostcall")));
        }
        value::decode_into(&msg.payload, types, results, h, budget(self.max_answer)).map_err(|e| {
            let m = &self.name;
            e.context(format_args!(
                "module `{m}` is remote and its host's answer does not decode as the results"
            ))
            .in_module(m)
        })
    }

    fn answered(&self, host: &str) {
        if !protocol::valid_host_id(host) {
            return;
        }
        let mut hosts = self.hosts.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        match hosts.get_mut(host) {
            Some((t, n)) => {
                *t = now;
                *n += 1;
            }
            None => {
                hosts.retain(|_, (t, _)| now.duration_since(*t) < RECENT);
                if hosts.len() < MAX_HOSTS {
                    hosts.insert(host.into(), (now, 1));
                }
            }
        }
    }

    /// Runs `fut` to completion from a thread that may not be in any async runtime.
    pub(crate) fn block_on<T: Send + 'static>(
        &self,
        fut: impl Future<Output = Result<T>> + Send + 'static,
    ) -> Result<T> {
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        self.nats.handle().spawn(async move {
            let _ = tx.send(fut.await);
        });
        rx.recv()
            .unwrap_or_else(|_| Err(self.nats.down(&self.name)))
    }
}

/// A slot of [`MAX_IN_FLIGHT`], given back when the request ends.
pub(crate) struct InFlight(Arc<AtomicUsize>);

impl InFlight {
    fn take(m: &RemoteModule) -> Result<InFlight> {
        if m.in_flight.fetch_add(1, Ordering::AcqRel) >= MAX_IN_FLIGHT {
            m.in_flight.fetch_sub(1, Ordering::AcqRel);
            return Err(Error::new(
                ErrorKind::Overloaded,
                format!(
                    "module `{}` is remote and this host already waits for {MAX_IN_FLIGHT} \
                     answers from it",
                    m.name
                ),
            )
            .with_module(&*m.name));
        }
        Ok(InFlight(m.in_flight.clone()))
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Resolves when the connection is reported down (or its reporter is gone).
async fn dropped(watch: &mut tokio::sync::watch::Receiver<bool>) {
    while watch.changed().await.is_ok() {
        if !*watch.borrow_and_update() {
            return;
        }
    }
}

/// The error of a call whose connection dropped while it waited for its answer.
fn lost(module: &str) -> Error {
    Error::new(
        ErrorKind::Unavailable,
        format!(
            "module `{module}` is remote and this host lost its NATS connection while the call \
             waited for its answer (the host may or may not have run it); it is reconnecting"
        ),
    )
    .with_module(module)
}

fn timeout(module: &str) -> Error {
    Error::new(
        ErrorKind::Timeout,
        format!(
            "module `{module}` is remote and its host did not answer by the call's deadline \
             (raise [modules.{module}.limits] timeout if calls need longer)"
        ),
    )
    .with_module(module)
}

/// The error of a request that got no answer.
fn request_error(module: &str, session: bool, e: async_nats::RequestError) -> Error {
    match e.kind() {
        RequestErrorKind::NoResponders if session => Error::new(
            ErrorKind::Crashed,
            format!(
                "module `{module}` is remote and the host that held this resource session is \
                 gone; its resources are lost"
            ),
        )
        .with_module(module),
        RequestErrorKind::NoResponders => Error::new(
            ErrorKind::Unavailable,
            format!(
                "module `{module}` is remote and no host serves it now (nobody listens on its \
                 NATS subject); start one: membrane host <manifest> --modules {module}"
            ),
        )
        .with_module(module),
        RequestErrorKind::TimedOut => timeout(module),
        RequestErrorKind::MaxPayloadExceeded => Error::new(
            ErrorKind::InvalidArgs,
            format!(
                "a call of remote module `{module}` is larger than the NATS server accepts \
                 (its max_payload)"
            ),
        )
        .with_module(module)
        .with_source(e),
        _ => Error::new(
            ErrorKind::Unavailable,
            format!("module `{module}` is remote and the request to its host failed"),
        )
        .with_module(module)
        .with_source(e),
    }
}

impl RemoteModule {
    /// How many hosts answered in the last [`RECENT`] (status).
    pub(crate) fn hosts_recent(&self) -> usize {
        let hosts = self.hosts.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        hosts
            .values()
            .filter(|(t, _)| now.duration_since(*t) < RECENT)
            .count()
    }

    /// How many answers each host that answered recently gave (status, tests).
    pub(crate) fn answers(&self) -> std::collections::BTreeMap<String, u64> {
        let hosts = self.hosts.lock().unwrap_or_else(|p| p.into_inner());
        hosts
            .iter()
            .map(|(h, (_, n))| (h.to_string(), *n))
            .collect()
    }

    /// The transport's remote module, if it is one.
    pub(crate) fn of(t: &dyn Transport) -> Option<&RemoteModule> {
        t.as_any().downcast_ref::<RemoteModule>()
    }

    /// The module's queue subject.
    pub(crate) fn subject(&self) -> &Subject {
        &self.subject
    }

    /// A malformed answer of a host.
    pub(crate) fn malformed(&self, what: &str) -> Error {
        malformed(what).with_module(&*self.name)
    }
}

/// A `hostcall` limit as a budget of host memory for decoded values.
fn budget(limit: u64) -> usize {
    usize::try_from(limit).unwrap_or(usize::MAX)
}
