//! One HTTP request given to a module that exports `wasi:http/handler@0.3.x`, under the
//! module's limits, supervision and pool, like any call of a WASI 0.3 module: the request
//! runs as one call in an instance that may run others at once (`executor.rs`).
//!
//! The request goes in as a `wasi:http` 0.3 `request` whose body streams from the client
//! (failing past `limits.body`: 413); the handler's `response` comes back as the head, and
//! its body streams from the guest's task, which keeps running after `handle` returned. The
//! request holds its room in the instance until the body has been sent, so the instance is
//! not dropped under it. What can end a request, and what it becomes, is as for WASI 0.2
//! (`incoming.rs`): 503 when the module is out of instances and queue, 504 at the deadline
//! before the head, 413 past the body limit, 500 for a trap or an error code; after the
//! head, a body that does not end cleanly by the deadline ends in an error (the server then
//! aborts the connection), and the instance takes no more requests.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::task::{Context, Poll};
use std::time::Instant;

use bytes::Bytes;
use http_body_util::BodyExt;
use http_body_util::combinators::UnsyncBoxBody;
use hyper::body::{Body, Frame, SizeHint};
use tokio::sync::oneshot;
use wasmtime::AsContextMut;
use wasmtime::component::{Accessor, ComponentExportIndex, Instance, Resource};
use wasmtime_wasi_http::WasiHttpView;
use wasmtime_wasi_http::p3::bindings::http::types::ErrorCode;

use super::deadlines;
use super::driver::{self, Job};
use super::executor::Room;
use crate::classify::classify;
use crate::error::{Error, ErrorKind, Result};
use crate::exports::Exports;
use crate::generation::Generation;
use crate::incoming::{Failure, HANDLER_P3, LimitedBody, Response, Tripwire, trim_values};
use crate::instance::{HostState, Recipe};
use crate::value::Function;

/// What becomes of the request body's transfer (an error the guest may learn of).
type RequestIo = Pin<
    Box<
        dyn std::future::Future<Output = std::result::Result<(), wasmtime_wasi_http::Error>> + Send,
    >,
>;

type Params = (Resource<wasmtime_wasi_http::p3::Request>,);
type Results = (Result<Resource<wasmtime_wasi_http::p3::Response>, ErrorCode>,);

/// Why a WASI 0.3 component cannot serve HTTP, if it cannot.
pub fn check_handler(exports: &Exports) -> std::result::Result<(), String> {
    let f = exports
        .function(HANDLER_P3)
        .map_err(|_| "it does not export wasi:http/handler".to_string())?;
    if !f.name.starts_with("wasi:http/handler@0.3.") {
        return Err(format!(
            "it exports {} and this host serves wasi:http 0.3.x",
            f.name
        ));
    }
    if f.params.len() != 1 || f.results.len() != 1 {
        return Err(format!(
            "its {} does not have the type handle(request) -> result<response, error-code>",
            f.name
        ));
    }
    Ok(())
}

/// Gives a request to the handler of `module` (a WASI 0.3 generation) and waits for the
/// response head (or a failure) until the module's timeout.
pub async fn serve(
    module: Arc<Generation>,
    func: Arc<Function>,
    req: hyper::Request<hyper::body::Incoming>,
) -> std::result::Result<Response, Failure> {
    let limits = &module.recipe().limits;
    let limit = limits.body;
    let tripwire = Arc::new(Tripwire::default());
    let req = req.map(|body| LimitedBody::new(body, limit, tripwire.clone()));
    let guard = module.admit(&func).map_err(Failure::Error)?;
    let deadline = guard.started() + limits.timeout;
    let outcome =
        crate::generation::in_span(&guard, head(&module, &func, req, deadline, &tripwire)).await;
    guard.record(&as_outcome(&outcome));
    outcome
}

/// How a request counts for the module's supervision and metrics: a body over the limit
/// and an error code the guest chose are the client's and the guest's answers, not failures.
fn as_outcome(outcome: &std::result::Result<Response, Failure>) -> Result<()> {
    match outcome {
        Ok(_) | Err(Failure::BodyTooLarge { .. }) | Err(Failure::Guest(_)) => Ok(()),
        Err(Failure::Timeout(e)) | Err(Failure::Error(e)) => {
            let mut copy = Error::new(e.kind(), e.message());
            if e.upstream() {
                copy.set_upstream();
            }
            Err(copy)
        }
    }
}

async fn head(
    module: &Generation,
    func: &Function,
    req: hyper::Request<LimitedBody>,
    deadline: Instant,
    tripwire: &Tripwire,
) -> std::result::Result<Response, Failure> {
    let name = &module.name;
    let executor = module.executor().ok_or_else(|| {
        Failure::Error(
            Error::new(
                ErrorKind::Unavailable,
                format!("module `{name}`: its WASI 0.3 instances are not set up"),
            )
            .with_module(&**name),
        )
    })?;
    let mut room = executor.admit(deadline).await.map_err(Failure::Error)?;
    let (tx, rx) = oneshot::channel();
    let (done_tx, done_rx) = oneshot::channel();
    let request = Request {
        recipe: executor.recipe().clone(),
        index: func.index,
        name: func.name.clone(),
        req,
        deadline,
    };
    room.driver
        .submit(request.job(room.first, tx, done_rx))
        .map_err(Failure::Error)?;
    // One timer for the head and, handed on, the body.
    let mut timeout = Box::pin(tokio::time::sleep_until(deadline.into()));
    let timed_out = || {
        Failure::Timeout(
            Error::new(
                ErrorKind::Timeout,
                format!(
                    "module `{name}`: no response within the module's timeout of {:?} (limits.timeout)",
                    module.recipe().limits.timeout
                ),
            )
            .with_module(&**name)
            .with_export(HANDLER_P3),
        )
    };
    let outcome = tokio::select! {
        biased;
        head = rx => match head {
            Ok(Ok(mut resp)) => {
                trim_values(resp.headers_mut());
                return Ok(resp.map(|inner| {
                    Tracked {
                        inner,
                        room: Some(room),
                        done: Some(done_tx),
                        deadline: timeout,
                    }
                    .boxed_unsync()
                }));
            }
            Ok(Err(failure)) => {
                room.answered();
                Err(failure)
            }
            Err(_) => {
                room.answered();
                let failure = room.driver.failure(name).await;
                // Past the deadline it is a timeout, whatever ended the instance.
                if Instant::now() >= deadline {
                    return Err(timed_out());
                }
                Err(Failure::Error(failure))
            }
        },
        _ = tripwire.notify.notified() => Err(Failure::BodyTooLarge { limit: module.recipe().limits.body }),
        _ = &mut timeout => Err(timed_out()),
    };
    if tripwire.tripped.load(Ordering::Relaxed) {
        return Err(Failure::BodyTooLarge {
            limit: module.recipe().limits.body,
        });
    }
    outcome
}

/// A request handed to an instance.
struct Request {
    recipe: Arc<Recipe>,
    index: ComponentExportIndex,
    name: String,
    req: hyper::Request<LimitedBody>,
    deadline: Instant,
}

impl Request {
    /// The request as a job for a driver: it answers the head on `tx`, then stays until
    /// `done` (the body was sent or dropped), so its deadline still holds the guest's task.
    fn job(
        self,
        first: bool,
        tx: oneshot::Sender<std::result::Result<Response, Failure>>,
        done: oneshot::Receiver<()>,
    ) -> Job {
        Box::new(move |acc, instance| {
            Box::pin(async move {
                let recipe = self.recipe.clone();
                let deadline = self.deadline;
                let task = match self.start(acc, instance, first) {
                    Ok(started) => started,
                    Err(f) => {
                        let _ = tx.send(Err(f));
                        return;
                    }
                };
                let (typed, call, io) = task;
                let id = call.task();
                acc.with(|mut s| deadlines::register(s.get(), id, deadline));
                let head = match typed.finish_call_concurrent(acc, call).await {
                    Err(e) => Err(failed(acc, &recipe, e)),
                    Ok((Err(code),)) => Err(Failure::Guest(format!("{code:?}"))),
                    Ok((Ok(response),)) => acc
                        .with(|mut s| -> wasmtime::Result<_> {
                            let response = s.get().http().table.delete(response)?;
                            response.into_http_with_getter(
                                &mut s,
                                io,
                                <HostState as WasiHttpView>::http,
                            )
                        })
                        .map_err(|e| failed(acc, &recipe, e)),
                };
                let answered = head.is_ok();
                if tx.send(head).is_ok() && answered {
                    let _ = done.await;
                }
                acc.with(|mut s| deadlines::unregister(s.get(), id));
            })
        })
    }

    /// Arms the instance when the request starts its busy period, puts the request in its
    /// table, and starts the handler.
    #[allow(clippy::type_complexity)]
    fn start(
        self,
        acc: &Accessor<HostState>,
        instance: Instance,
        first: bool,
    ) -> std::result::Result<
        (
            wasmtime::component::TypedFunc<Params, Results>,
            wasmtime::component::TypedFuncCallConcurrent<HostState, Params, Results>,
            RequestIo,
        ),
        Failure,
    > {
        let Request {
            recipe,
            index,
            name,
            req,
            deadline,
        } = self;
        if first {
            let budget = deadline.saturating_duration_since(Instant::now());
            acc.with(|mut s| driver::arm(s.as_context_mut(), &recipe, budget))
                .map_err(Failure::Error)?;
        }
        let started = acc.with(|mut s| -> wasmtime::Result<_> {
            let func = instance
                .get_func(&mut s, index)
                .ok_or_else(|| wasmtime::format_err!("the instance has no function {name}"))?;
            let typed = func.typed::<Params, Results>(&s)?;
            let (request, io) = {
                let view = s.get().http();
                let (request, io) = wasmtime_wasi_http::p3::Request::from_http(view.hooks, req);
                (request, Box::pin(io) as RequestIo)
            };
            let request = s.get().http().table.push(request)?;
            let call = typed.start_call_concurrent(&mut s, (request,))?;
            Ok((typed, call, io))
        });
        started.map_err(|e| failed(acc, &recipe, e))
    }
}

/// A failed handler call as a typed error.
fn failed(acc: &Accessor<HostState>, recipe: &Recipe, e: wasmtime::Error) -> Failure {
    Failure::Error(acc.with(|mut s| {
        classify(
            e,
            &recipe.name,
            &s.get().slots,
            &recipe.policy,
            HANDLER_P3,
            Some(HANDLER_P3),
        )
    }))
}

/// The response body: streams from the guest, holds the request's room in its instance
/// until it ends, and ends in an error (never cleanly) when the instance failed under it
/// or the deadline passed first.
struct Tracked {
    inner: UnsyncBoxBody<Bytes, wasmtime_wasi_http::Error>,
    room: Option<Room>,
    /// Dropped when the body ends or is dropped: the request's job may then end.
    done: Option<oneshot::Sender<()>>,
    deadline: Pin<Box<tokio::time::Sleep>>,
}

impl Tracked {
    /// The body is over: the room goes back, as answered when it ended cleanly.
    fn finish(&mut self, clean: bool) {
        self.done = None;
        if let Some(mut room) = self.room.take()
            && clean
        {
            room.answered();
        }
    }
}

impl Body for Tracked {
    type Data = Bytes;
    type Error = wasmtime_wasi_http::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<std::result::Result<Frame<Bytes>, Self::Error>>> {
        let this = &mut *self;
        let Some(room) = &this.room else {
            return Poll::Ready(None);
        };
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(mut frame))) => {
                if let Some(trailers) = frame.trailers_mut() {
                    trim_values(trailers);
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(None) => {
                // A body cut short by the instance's failure looks ended to the stream.
                let clean = !room.driver.failed();
                this.finish(clean);
                if clean {
                    Poll::Ready(None)
                } else {
                    Poll::Ready(Some(Err(wasmtime_wasi_http::Error::HttpResponseIncomplete)))
                }
            }
            Poll::Ready(Some(Err(e))) => {
                this.finish(false);
                Poll::Ready(Some(Err(e)))
            }
            Poll::Pending => {
                if this.deadline.as_mut().poll(cx).is_ready() {
                    this.finish(false);
                    return Poll::Ready(Some(Err(
                        wasmtime_wasi_http::Error::HttpResponseIncomplete,
                    )));
                }
                Poll::Pending
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.room.is_none()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
