//! One HTTP request given to a module that exports `wasi:http/incoming-handler@0.2.x`,
//! under the module's limits, supervision and pool, like any call.
//!
//! The guest runs on a task of its own (it keeps writing the response body after the head
//! has gone out), on a pooled instance of the async flavour: `wasi:http` is driven through
//! its p2 resources (`new_incoming_request`, `new_response_outparam`) and the handler is
//! called like any export, so no component-model-async support is needed. What can end a
//! request before the guest answers, and what it becomes:
//!
//! | cause | [`Failure`] | the server answers |
//! |---|---|---|
//! | the module's circuit is open, its instances and queue are full | [`Failure::Error`] `Unavailable` / `Overloaded` | 503 with `Retry-After` |
//! | `timeout` passes before the response head | [`Failure::Timeout`] | 504 (the guest is stopped by its deadline) |
//! | the body passes `limits.body` (by `Content-Length`, or while it streams) | [`Failure::BodyTooLarge`] | 413 |
//! | a trap, or the guest returned without answering | [`Failure::Error`] | 500, no guest detail |
//! | the guest answered with an error code | [`Failure::Guest`] | 500 |
//!
//! After the head, the deadline still holds: a guest that overruns it while writing the
//! body is stopped, its body ends with an error, and the server aborts the connection.
//!
//! The values of the guest's response headers and trailers go out without the spaces and
//! tabs around them (not part of a field value, RFC 9110 5.5; an HTTP/2 message with them is
//! malformed, RFC 9113 8.2.1); their other bytes, 0x80-0xFF included, go out as the guest
//! wrote them, and wasi:http refused control bytes already
//! (docs/decisions/0009-guest-header-values.md).

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::Instant;

use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::body::{Body, Frame, SizeHint};
use tokio::sync::{Notify, oneshot};
use tracing::Instrument;
use wasmtime::component::Resource;
use wasmtime_wasi_http::WasiHttpView;
use wasmtime_wasi_http::p2::bindings::http::types::{ErrorCode, Scheme};
use wasmtime_wasi_http::p2::body::HyperOutgoingBody;
use wasmtime_wasi_http::p2::types::{HostIncomingRequest, HostResponseOutparam};

use crate::error::{Error, ErrorKind, Result};
use crate::exports::Exports;
use crate::generation::Generation;
use crate::instance::{Budget, LiveInstance, Recipe};
use crate::value::Function;

/// The export a routed WASI 0.2 module must have.
pub const HANDLER: &str = "wasi:http/incoming-handler#handle";

/// The export a routed WASI 0.3 module must have.
pub const HANDLER_P3: &str = "wasi:http/handler#handle";

type HandleParams = (
    Resource<HostIncomingRequest>,
    Resource<HostResponseOutparam>,
);

/// Why a WASI 0.2 component cannot serve HTTP, if it cannot.
pub fn check_handler(exports: &Exports) -> std::result::Result<(), String> {
    let f = exports
        .function(HANDLER)
        .map_err(|_| "it does not export wasi:http/incoming-handler".to_string())?;
    if !f.name.starts_with("wasi:http/incoming-handler@0.2.") {
        return Err(format!(
            "it exports {} and this host serves wasi:http 0.2.x",
            f.name
        ));
    }
    if f.params.len() != 2 || !f.results.is_empty() {
        return Err(format!(
            "its {} does not have the type handle(request, response-out)",
            f.name
        ));
    }
    Ok(())
}

/// Whether a request declares a body larger than `limit` (`Content-Length`): answered 413
/// before any guest runs.
pub fn declared_too_large<B>(req: &hyper::Request<B>, limit: u64) -> bool {
    req.headers()
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
        .is_some_and(|n| n > limit)
}

/// A response head from the guest; its body streams from the guest's task.
pub type Response = hyper::Response<HyperOutgoingBody>;

/// Why a request got no response from the guest.
#[derive(Debug)]
pub enum Failure {
    /// The call failed: refused (circuit, overload), trapped, or ended without answering.
    Error(Error),
    /// `timeout` passed before the response head.
    Timeout(Error),
    /// The request body is larger than `limits.body`.
    BodyTooLarge {
        /// The module's limit.
        limit: u64,
    },
    /// The guest answered with an error code instead of a response (the code, as text).
    Guest(String),
}

/// Gives a request to `module`'s `handler` (in the generation that is current) (its [`HANDLER`] export) and waits for the
/// response head (or a failure) until the module's timeout. The guest keeps running after
/// the head, to write the body.
pub async fn serve(
    module: Arc<Generation>,
    func: Arc<Function>,
    req: hyper::Request<hyper::body::Incoming>,
    scheme: Scheme,
) -> std::result::Result<Response, Failure> {
    let guest_module = module.clone();
    let limits = &module.recipe().limits;
    let limit = limits.body;
    let tripwire = Arc::new(Tripwire::default());
    let req = req.map(|body| LimitedBody::new(body, limit, tripwire.clone()));
    let deadline = Instant::now() + limits.timeout;
    let (tx, mut rx) = oneshot::channel();
    let (ended_tx, ended_rx) = oneshot::channel();
    // The guest's task runs in the request's spans: `tracing`'s and, with telemetry on, the
    // trace its call span takes as parent.
    // Boxed: the guest's future holds the whole call's state (kilobytes); spawning it
    // unboxed copied it into the task (and its output out) on every request.
    let task = tokio::spawn(Box::pin(
        crate::telemetry::scope(crate::telemetry::current(), async move {
            let outcome = run(guest_module, func, req, tx, scheme, deadline).await;
            let _ = ended_tx.send(outcome.is_ok());
            outcome
        })
        .instrument(tracing::Span::current()),
    ));
    // Until the head is out, a client that goes away takes the guest with it.
    let mut task = AbortOnDrop(Some(task));
    let timeout = tokio::time::sleep_until(deadline.into());
    tokio::pin!(timeout);
    let outcome = tokio::select! {
        biased;
        head = &mut rx => match head {
            Ok(Ok(mut resp)) => {
                trim_values(resp.headers_mut());
                Ok(resp.map(|body| {
                    Completed {
                        inner: body,
                        ended: Some(ended_rx),
                    }
                    .boxed_unsync()
                }))
            }
            Ok(Err(code)) => Err(Failure::Guest(format!("{code:?}"))),
            // The guest's task ended without answering: its outcome says why.
            Err(_) => Err(ended(task.join(deadline).await, &module)),
        },
        _ = tripwire.notify.notified() => Err(Failure::BodyTooLarge { limit }),
        _ = &mut timeout => Err(Failure::Timeout(
            Error::new(
                ErrorKind::Timeout,
                format!(
                    "module `{}`: no response within the module's timeout of {:?} (limits.timeout)",
                    module.name, limits.timeout
                ),
            )
            .with_module(&*module.name)
            .with_export(HANDLER),
        )),
    };
    if tripwire.tripped.load(Ordering::Relaxed) {
        return Err(Failure::BodyTooLarge { limit });
    }
    // The head is out (or the request failed): the guest ends by itself, by its deadline at
    // the latest, and is supervised and counted as any call.
    task.detach();
    outcome
}

/// The failure of a guest task that ended without a response head.
fn ended(joined: Option<Result<()>>, module: &Generation) -> Failure {
    match joined {
        Some(Err(e)) if e.kind() == ErrorKind::Timeout => Failure::Timeout(e),
        Some(Err(e)) => Failure::Error(e),
        Some(Ok(())) => Failure::Error(
            Error::new(
                ErrorKind::Trap,
                format!(
                    "module `{}`: the handler returned without setting a response",
                    module.name
                ),
            )
            .with_module(&*module.name)
            .with_export(HANDLER),
        ),
        None => Failure::Error(
            Error::new(
                ErrorKind::HostPanic,
                format!("module `{}`: the request's task failed", module.name),
            )
            .with_module(&*module.name),
        ),
    }
}

/// The guest's side: admitted, on a pooled instance, under the module's limits.
async fn run(
    module: Arc<Generation>,
    func: Arc<Function>,
    req: hyper::Request<LimitedBody>,
    tx: oneshot::Sender<std::result::Result<Response, ErrorCode>>,
    scheme: Scheme,
    deadline: Instant,
) -> Result<()> {
    // The call sequence of every call (generation.rs): admitted, budgeted, on a pooled
    // instance that goes back only when the request succeeded.
    module
        .supervised_async(&func, async {
            let recipe = module.recipe();
            let budget = Budget::new(recipe, Instant::now(), Some(deadline))?;
            module
                .on_instance_async(budget, async |instance, budget| {
                    instance
                        .handle_http(recipe, &func, req, tx, scheme, budget)
                        .await
                })
                .await
        })
        .await
}

impl LiveInstance {
    /// Calls the handler with the request and a response outparam that sends the head to
    /// `tx`. On error the instance must be dropped.
    async fn handle_http(
        &mut self,
        recipe: &Recipe,
        target: &Function,
        req: hyper::Request<LimitedBody>,
        tx: oneshot::Sender<std::result::Result<Response, ErrorCode>>,
        scheme: Scheme,
        budget: Budget,
    ) -> Result<()> {
        self.arm(recipe, budget)?;
        let func = self.func(recipe, target)?;
        let host = |e: wasmtime::Error| {
            Error::new(
                ErrorKind::InvalidArgs,
                format!(
                    "module `{}`: the request cannot be given to the guest",
                    recipe.name
                ),
            )
            .with_module(&*recipe.name)
            .with_export(&target.name)
            .with_source(e)
        };
        let mut view = self.store.data_mut().http();
        let req = view.new_incoming_request(scheme, req).map_err(host)?;
        let out = view.new_response_outparam(tx).map_err(host)?;
        let typed = func.typed::<HandleParams, ()>(&self.store).map_err(host)?;
        let r = typed.call_async(&mut self.store, (req, out)).await;
        self.finished(recipe, target, r)
    }
}

/// A response body that ends cleanly only when the handler returned successfully: a guest
/// that traps or times out after the head has its body end in an error (wasi-http would
/// end it as if complete), so the server aborts the connection rather than pass a
/// truncated body off as whole.
pub(crate) struct Completed {
    inner: HyperOutgoingBody,
    /// Whether the handler's call succeeded; sent when it ends.
    ended: Option<oneshot::Receiver<bool>>,
}

impl Body for Completed {
    type Data = Bytes;
    type Error = wasmtime_wasi_http::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<std::result::Result<Frame<Bytes>, Self::Error>>> {
        let this = &mut *self;
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(None) => {}
            Poll::Ready(Some(Ok(mut frame))) => {
                if let Some(trailers) = frame.trailers_mut() {
                    trim_values(trailers);
                }
                return Poll::Ready(Some(Ok(frame)));
            }
            other => return other,
        }
        let Some(ended) = this.ended.as_mut() else {
            return Poll::Ready(None);
        };
        match Pin::new(ended).poll(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(ok) => {
                this.ended = None;
                if ok.unwrap_or(false) {
                    Poll::Ready(None)
                } else {
                    Poll::Ready(Some(Err(wasmtime_wasi_http::Error::HttpResponseIncomplete)))
                }
            }
        }
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// Removes the spaces and tabs around each value of a guest's fields; keeps the rest.
pub(crate) fn trim_values(fields: &mut http::HeaderMap) {
    let space = |b: &u8| matches!(b, b' ' | b'\t');
    for value in fields.values_mut() {
        let bytes = value.as_bytes();
        let start = bytes.iter().position(|b| !space(b)).unwrap_or(bytes.len());
        let end = bytes
            .iter()
            .rposition(|b| !space(b))
            .map_or(start, |i| i + 1);
        if (start, end) == (0, bytes.len()) {
            continue;
        }
        // Part of a valid value is valid; should it not be, the value goes out empty.
        let mut trimmed = http::HeaderValue::from_bytes(&bytes[start..end])
            .unwrap_or_else(|_| http::HeaderValue::from_static(""));
        trimmed.set_sensitive(value.is_sensitive());
        *value = trimmed;
    }
}

/// Set when a streamed body passes its limit.
#[derive(Default)]
pub(crate) struct Tripwire {
    pub(crate) tripped: AtomicBool,
    pub(crate) notify: Notify,
}

/// A request body that fails, and trips its wire, once it passes `limit` bytes.
pub(crate) struct LimitedBody {
    inner: hyper::body::Incoming,
    left: u64,
    limit: u64,
    tripwire: Arc<Tripwire>,
}

impl LimitedBody {
    /// `inner`, failing once it passes `limit` bytes (and tripping `tripwire`).
    pub(crate) fn new(inner: hyper::body::Incoming, limit: u64, tripwire: Arc<Tripwire>) -> Self {
        LimitedBody {
            inner,
            left: limit,
            limit,
            tripwire,
        }
    }
}

impl Body for LimitedBody {
    type Data = Bytes;
    type Error = wasmtime_wasi_http::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<std::result::Result<Frame<Bytes>, Self::Error>>> {
        let this = &mut *self;
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    let n = data.len() as u64;
                    if n > this.left {
                        this.left = 0;
                        this.tripwire.tripped.store(true, Ordering::Relaxed);
                        this.tripwire.notify.notify_one();
                        return Poll::Ready(Some(Err(
                            wasmtime_wasi_http::Error::HttpRequestBodySize(Some(this.limit)),
                        )));
                    }
                    this.left -= n;
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(e))) => Poll::Ready(Some(Err(e.into()))),
            other => other.map(|o| o.map(|r| r.map_err(Into::into))),
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// A task that is aborted when dropped, unless detached.
struct AbortOnDrop(Option<tokio::task::JoinHandle<Result<()>>>);

impl AbortOnDrop {
    /// Waits for the task to end (until `deadline` and a little more: the guest stops at
    /// its deadline by itself); `None` when it panicked or did not end.
    async fn join(&mut self, deadline: Instant) -> Option<Result<()>> {
        let task = self.0.as_mut()?;
        let grace = deadline + std::time::Duration::from_millis(500);
        match tokio::time::timeout_at(grace.into(), task).await {
            Ok(Ok(r)) => Some(r),
            _ => None,
        }
    }

    fn detach(&mut self) {
        self.0 = None;
    }
}

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        if let Some(t) = self.0.take() {
            t.abort();
        }
    }
}
