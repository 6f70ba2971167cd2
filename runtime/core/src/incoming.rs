//! One HTTP request given to a module that exports `wasi:http/incoming-handler@0.2.x`,
//! under the module's limits, supervision and pool, like any call.
//!
//! The guest is polled by the request's future until the response head is out, and moves
//! to a task of its own only if it is still running then (writing the rest of the body),
//! on a pooled instance of the async flavour: `wasi:http` is driven through
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
//! | a panic inside the host during the call (a host function's bug) | [`Failure::Error`] `HostPanic` | 500; the connection goes on |
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
use futures_util::FutureExt as _;
use http_body_util::BodyExt;
use hyper::body::{Body, Frame, SizeHint};
use tokio::sync::{Notify, oneshot};
use tracing::Instrument;
use wasmtime::component::{Resource, TypedFunc};
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

/// A response head from the guest; its body streams from the guest's call.
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

/// The guest's side of a request, boxed: it holds the whole call's state (kilobytes), and
/// it may move to a task of its own after the head (see [`serve`]).
type GuestCall = Pin<Box<dyn Future<Output = Result<()>> + Send>>;

/// The guest's call while the request waits for its head: still running, or ended.
enum Guest {
    Running(GuestCall),
    Ended(Result<()>),
}

/// What ends the wait for a response head.
enum Waited {
    Head(std::result::Result<Response, ErrorCode>),
    /// The guest dropped its outparam without answering.
    NoHead,
    BodyTooLarge,
    Timeout,
}

/// Gives a request to `module`'s `handler` (in the generation that is current) (its [`HANDLER`] export) and waits for the
/// response head (or a failure) until the module's timeout. The guest keeps running after
/// the head, to write the body.
///
/// The guest runs on the request's own task until the head is out: most handlers answer and
/// finish within that first stretch, and then no task is spawned and no other task woken
/// for the request. A guest still running when the head is out (it streams its body, or
/// waits) moves to a task of its own, which its deadline still bounds whether or not
/// anybody reads the body.
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
    // Polled here, the guest runs in the request's spans (`tracing`'s and, with telemetry
    // on, the trace its call span takes as parent); a task of its own takes them along.
    let mut guest = Guest::Running(Box::pin(run(guest_module, func, req, tx, scheme, deadline)));
    // The deadline's timer is armed only if the guest has not answered in its first
    // stretch (most have).
    let timeout = None::<tokio::time::Sleep>;
    let tripped = tripwire.notify.notified();
    tokio::pin!(timeout, tripped);
    // Until the head is out, a client that goes away takes the guest with it (the future
    // is dropped with this one).
    let waited = std::future::poll_fn(|cx| {
        if let Guest::Running(call) = &mut guest
            && let Poll::Ready(r) = call.as_mut().poll(cx)
        {
            guest = Guest::Ended(r);
        }
        match Pin::new(&mut rx).poll(cx) {
            Poll::Ready(Ok(head)) => return Poll::Ready(Waited::Head(head)),
            Poll::Ready(Err(_)) => return Poll::Ready(Waited::NoHead),
            Poll::Pending => {}
        }
        if tripped.as_mut().poll(cx).is_ready() {
            return Poll::Ready(Waited::BodyTooLarge);
        }
        if timeout.is_none() {
            timeout.set(Some(tokio::time::sleep_until(deadline.into())));
        }
        if let Some(sleep) = timeout.as_mut().as_pin_mut()
            && sleep.poll(cx).is_ready()
        {
            return Poll::Ready(Waited::Timeout);
        }
        Poll::Pending
    })
    .await;
    if tripwire.tripped.load(Ordering::Relaxed) {
        detach(guest);
        return Err(Failure::BodyTooLarge { limit });
    }
    match waited {
        Waited::Head(Ok(mut resp)) => {
            trim_values(resp.headers_mut());
            let ended = match guest {
                Guest::Ended(done) => Ended::Known(done.is_ok()),
                // The guest writes the rest of its body on a task of its own, supervised
                // and counted as any call; the body ends cleanly only if it succeeds.
                Guest::Running(call) => {
                    let (ended_tx, ended_rx) = oneshot::channel();
                    spawn(async move {
                        let _ = ended_tx.send(call.await.is_ok());
                    });
                    Ended::Waiting(ended_rx)
                }
            };
            Ok(resp.map(|body| {
                Completed {
                    inner: body,
                    ended: Some(ended),
                }
                .boxed_unsync()
            }))
        }
        Waited::Head(Err(code)) => {
            detach(guest);
            Err(Failure::Guest(format!("{code:?}")))
        }
        // The guest ended without answering (or dropped its outparam and goes on): its
        // outcome says why.
        Waited::NoHead => {
            let joined = match guest {
                Guest::Ended(done) => Some(done),
                Guest::Running(call) => {
                    let grace = deadline + std::time::Duration::from_millis(500);
                    tokio::time::timeout_at(grace.into(), call).await.ok()
                }
            };
            Err(ended(joined, &module))
        }
        Waited::BodyTooLarge => {
            detach(guest);
            Err(Failure::BodyTooLarge { limit })
        }
        // The guest ends by itself, by its deadline, and is supervised and counted as any
        // call.
        Waited::Timeout => {
            detach(guest);
            Err(Failure::Timeout(
                Error::new(
                    ErrorKind::Timeout,
                    format!(
                        "module `{}`: no response within the module's timeout of {:?} (limits.timeout)",
                        module.name, limits.timeout
                    ),
                )
                .with_module(&*module.name)
                .with_export(HANDLER),
            ))
        }
    }
}

/// Lets a guest that is still running after its request failed end by itself (by its
/// deadline at the latest), supervised and counted as any call.
fn detach(guest: Guest) {
    if let Guest::Running(call) = guest {
        spawn(async move {
            let _ = call.await;
        });
    }
}

/// Runs the rest of a guest's call on a task of its own, in the request's spans.
fn spawn(call: impl Future<Output = ()> + Send + 'static) {
    tokio::spawn(
        crate::telemetry::scope(crate::telemetry::current(), call)
            .instrument(tracing::Span::current()),
    );
}

/// The error of a request whose call panicked inside the host.
fn panicked(module: &str) -> Error {
    Error::new(
        ErrorKind::HostPanic,
        format!("module `{module}`: the request's call failed inside the host (a panic)"),
    )
    .with_module(module)
    .with_export(HANDLER)
}

/// The failure of a guest that dropped its response outparam without answering: its call's
/// outcome, or `None` when it had not ended shortly after its deadline.
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
        // (A panic in the call is an outcome: `run` catches it.)
        None => Failure::Timeout(
            Error::new(
                ErrorKind::Timeout,
                format!(
                    "module `{}`: the handler dropped its response without answering and \
                     had not ended 500 ms after its timeout (limits.timeout)",
                    module.name
                ),
            )
            .with_module(&*module.name)
            .with_export(HANDLER),
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
    let call = module.supervised_async(&func, async {
        let recipe = module.recipe();
        let budget = Budget::new(recipe, Instant::now(), Some(deadline))?;
        module
            .on_instance_async(budget, async |instance, budget| {
                instance
                    .handle_http(recipe, &func, req, tx, scheme, budget)
                    .await
            })
            .await
    });
    // A panic in the call (a host function's bug) ends this request as `HostPanic`, as it
    // would end a task of its own; it never reaches the connection.
    match std::panic::AssertUnwindSafe(call).catch_unwind().await {
        Ok(r) => r,
        Err(_) => Err(panicked(&module.name)),
    }
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
        // Type-checked on the instance's first request (`Function::id` tells exports apart).
        let cached = self
            .typed_handler
            .as_ref()
            .and_then(|t| t.downcast_ref::<(usize, TypedFunc<HandleParams, ()>)>())
            .filter(|(id, _)| *id == target.id);
        let typed = match cached {
            Some((_, typed)) => *typed,
            None => {
                let typed = func.typed::<HandleParams, ()>(&self.store).map_err(host)?;
                self.typed_handler = Some(Box::new((target.id, typed)));
                typed
            }
        };
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
    /// Whether the handler's call succeeded; `None` once the body has ended.
    ended: Option<Ended>,
}

/// How a response body learns whether the handler's call succeeded.
pub(crate) enum Ended {
    /// The call had ended when the head went out.
    Known(bool),
    /// The call goes on on its own task, which sends it when it ends.
    Waiting(oneshot::Receiver<bool>),
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
        let ok = match ended {
            Ended::Known(ok) => *ok,
            Ended::Waiting(rx) => match Pin::new(rx).poll(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(ok) => ok.unwrap_or(false),
            },
        };
        this.ended = None;
        if ok {
            Poll::Ready(None)
        } else {
            Poll::Ready(Some(Err(wasmtime_wasi_http::Error::HttpResponseIncomplete)))
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
