//! One request through the server: routed by the longest path prefix, given to the module,
//! and every failure turned into a status with no guest detail (the detail goes to the log,
//! target `membrane::http`, with the error's kind and cause chain).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use http::{HeaderValue, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use wasmtime_wasi_http::p2::bindings::http::types::Scheme;
use wasmtime_wasi_http::p2::body::HyperOutgoingBody;

use crate::app::App;
use crate::error::{ErrorKind, Result, chain};
use crate::incoming::Failure;
use crate::metrics::RouteMetrics;
use crate::module::Target;
use crate::route;
use crate::spec::HttpSpec;
use crate::supervisor::Health;
use crate::trace::RequestTrace;
use membrane_core::telemetry;

/// What the server answers with.
pub(crate) type Response = hyper::Response<HyperOutgoingBody>;

/// The routes and the app, shared by every connection.
pub(crate) struct Router {
    pub app: App,
    pub http: HttpSpec,
    /// Each route's module, handler and counters, resolved once.
    routes: BTreeMap<String, Route>,
    /// The counters of requests no route matched.
    unrouted: RouteMetrics,
}

/// One route, resolved when the server starts.
struct Route {
    /// The routed module's handler, in whichever generation is current.
    handler: Target,
    metrics: RouteMetrics,
}

/// The size of a request's header fields as `max_header_size` counts it: name, value and
/// 32 bytes per field (HTTP/2's measure), whatever the protocol. hyper's own limits
/// (`max_buf_size` for HTTP/1.1, checked only before it reads more, so one large read can
/// pass it; `max_header_list_size` for HTTP/2) come first; this check holds always.
fn header_size(headers: &http::HeaderMap) -> usize {
    headers
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len() + 32)
        .sum()
}

/// A response with a short plain-text body.
pub(crate) fn text(status: StatusCode, body: impl Into<Bytes>) -> Response {
    let mut resp = hyper::Response::new(
        Full::new(body.into())
            .map_err(|never| match never {})
            .boxed_unsync(),
    );
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    resp
}

impl Router {
    /// Resolves every route's module and handler (checked when the app loaded).
    pub(crate) fn new(app: App, http: HttpSpec) -> Result<Router> {
        let mut routes = BTreeMap::new();
        for (prefix, module) in &http.routes {
            let m = app.module_arc(module)?;
            let handler_name = route::handler_of(&m.current());
            let handler = Target::new(m, handler_name)?;
            let metrics = app.metrics().route(prefix);
            routes.insert(prefix.clone(), Route { handler, metrics });
        }
        let unrouted = app.metrics().route("none");
        Ok(Router {
            app,
            http,
            routes,
            unrouted,
        })
    }

    /// Answers one request.
    pub(crate) async fn handle(self: Arc<Self>, req: hyper::Request<Incoming>) -> Response {
        let started = Instant::now();
        let trace = RequestTrace::from_header(
            req.headers()
                .get("traceparent")
                .and_then(|v| v.to_str().ok()),
        );
        let route = self
            .http
            .route_for(req.uri().path())
            .and_then(|(prefix, _)| self.routes.get_key_value(prefix));
        // At debug: at info, formatting a span's fields for every request cost 8-9 us of
        // CPU (BENCHMARKS.md "Issue 27"); the events written while the request runs (guest
        // lines, denials, failures) carry its `trace_id` instead, formatted only then.
        let span = tracing::debug_span!(
            target: "membrane::http",
            "request",
            method = %req.method(),
            path = %crate::sanitize::escape(req.uri().path()),
            module = route.map_or("", |(_, r)| &*r.handler.module.name),
            trace_id = %trace.context.trace_hex(),
            parent_id = tracing::field::Empty,
            status = tracing::field::Empty,
        );
        if let Some(parent) = &trace.parent
            && !span.is_disabled()
        {
            span.record("parent_id", format_args!("{:016x}", parent.span_id));
        }
        // Kept for the span's end only when telemetry records it.
        let ended = trace
            .scope()
            .map(|_| (req.method().clone(), req.uri().path().to_owned()));
        let header_size = header_size(req.headers());
        let mut resp = match route {
            _ if header_size > self.http.max_header_size => {
                tracing::info!(
                    target: "membrane::http",
                    trace_id = telemetry::trace_field(),
                    size = header_size,
                    limit = self.http.max_header_size,
                    "request header fields larger than app.http.max_header_size: 431"
                );
                text(
                    StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
                    format!(
                        "the request's header fields are larger than {} bytes\n",
                        self.http.max_header_size
                    ),
                )
            }
            None => text(StatusCode::NOT_FOUND, "no route for this path\n"),
            Some((_, route)) => {
                let call = self.dispatch(route, req, &span);
                // The request's context is current while it runs: its calls' parent with
                // telemetry on, and the `trace_id` of its log events either way.
                telemetry::scope(Some(trace.context), call).await
            }
        };
        if let Ok(v) = HeaderValue::from_bytes(&trace.context.traceparent_bytes()) {
            resp.headers_mut().insert("traceparent", v);
        }
        let status = resp.status().as_u16();
        span.record("status", status);
        route
            .map_or(&self.unrouted, |(_, r)| &r.metrics)
            .request(status, started.elapsed());
        if let Some((method, path)) = ended {
            let route = route.map(|(prefix, r)| (prefix.as_str(), &*r.handler.module.name));
            trace.end(&method, &path, route, status);
        }
        resp
    }

    async fn dispatch(
        &self,
        route: &Route,
        req: hyper::Request<Incoming>,
        span: &tracing::Span,
    ) -> Response {
        if req.uri().authority().is_none() && !req.headers().contains_key(http::header::HOST) {
            return text(StatusCode::BAD_REQUEST, "the request has no Host header\n");
        }
        let name = &route.handler.module.name;
        let r = match route.handler.get_full() {
            Ok(r) => r,
            Err(e) => return self.failed(name, Failure::Error(e)),
        };
        let fut = route::serve(r.generation.clone(), r.func.clone(), req, Scheme::Http);
        match tracing::Instrument::instrument(fut, span.clone()).await {
            Ok(resp) => resp,
            Err(failure) => self.failed(name, failure),
        }
    }

    /// The status for a failure, logged with its kind and cause chain.
    fn failed(&self, module: &str, failure: Failure) -> Response {
        match failure {
            Failure::BodyTooLarge { limit } => {
                tracing::info!(
                    target: "membrane::http",
                    module,
                    trace_id = telemetry::trace_field(),
                    limit,
                    "request body larger than the module's limits.body: 413"
                );
                text(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    format!("the request body is larger than {limit} bytes\n"),
                )
            }
            Failure::Guest(code) => {
                tracing::warn!(
                    target: "membrane::http",
                    module,
                    trace_id = telemetry::trace_field(),
                    code = %crate::sanitize::escape(&code),
                    "the handler answered with an error code: 500"
                );
                text(StatusCode::INTERNAL_SERVER_ERROR, "internal error\n")
            }
            Failure::Timeout(e) => {
                tracing::warn!(
                    target: "membrane::http",
                    module,
                    trace_id = telemetry::trace_field(),
                    kind = %e.kind(),
                    error = %chain(&e),
                    "request timed out: 504"
                );
                text(StatusCode::GATEWAY_TIMEOUT, "the request timed out\n")
            }
            Failure::Error(e) => {
                let (status, retry) = match e.kind() {
                    ErrorKind::Overloaded => (StatusCode::SERVICE_UNAVAILABLE, Some(1)),
                    ErrorKind::Unavailable => (
                        StatusCode::SERVICE_UNAVAILABLE,
                        Some(self.retry_after(module)),
                    ),
                    ErrorKind::Timeout => (StatusCode::GATEWAY_TIMEOUT, None),
                    _ => (StatusCode::INTERNAL_SERVER_ERROR, None),
                };
                tracing::warn!(
                    target: "membrane::http",
                    module,
                    trace_id = telemetry::trace_field(),
                    kind = %e.kind(),
                    error = %chain(&e),
                    "request failed: {}",
                    status.as_u16()
                );
                let mut resp = text(
                    status,
                    match status {
                        StatusCode::SERVICE_UNAVAILABLE => {
                            "the service is unavailable, retry later\n"
                        }
                        StatusCode::GATEWAY_TIMEOUT => "the request timed out\n",
                        _ => "internal error\n",
                    },
                );
                if let Some(secs) = retry {
                    resp.headers_mut()
                        .insert(http::header::RETRY_AFTER, HeaderValue::from(secs));
                }
                resp
            }
        }
    }

    /// Seconds until the module's circuit lets a trial call through (at least 1).
    fn retry_after(&self, module: &str) -> u64 {
        match self.app.status().get(module).map(|s| s.health) {
            Some(Health::Unavailable { retry_in }) => {
                retry_in.as_secs() + u64::from(retry_in.subsec_nanos() > 0)
            }
            _ => 1,
        }
        .max(1)
    }
}
