//! A real OTLP receiver on 127.0.0.1 for the telemetry tests: OTLP/HTTP (protobuf) and
//! OTLP/gRPC (HTTP/2 without TLS, as collectors take it) on one port, decoding what
//! arrives with OpenTelemetry's protobuf definitions and keeping it for the test to read.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::{Buf, Bytes};
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper_util::rt::{TokioExecutor, TokioIo};
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use opentelemetry_proto::tonic::logs::v1::LogRecord;
use opentelemetry_proto::tonic::trace::v1::Span;
use prost::Message;

/// A span as received, with the resource's `service.name`.
#[derive(Debug, Clone)]
pub struct Got {
    pub service: String,
    pub span: Span,
}

impl Got {
    pub fn trace(&self) -> String {
        hex(&self.span.trace_id)
    }
    pub fn id(&self) -> String {
        hex(&self.span.span_id)
    }
    pub fn parent(&self) -> String {
        hex(&self.span.parent_span_id)
    }
    pub fn attr(&self, key: &str) -> Option<String> {
        attr(&self.span.attributes, key)
    }
}

pub fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// An attribute's value as text (integers printed).
pub fn attr(attrs: &[KeyValue], key: &str) -> Option<String> {
    attrs
        .iter()
        .find(|kv| kv.key == key)
        .and_then(|kv| kv.value.as_ref())
        .map(text)
}

pub fn text(v: &AnyValue) -> String {
    match &v.value {
        Some(any_value::Value::StringValue(s)) => s.clone(),
        Some(any_value::Value::IntValue(n)) => n.to_string(),
        other => format!("{other:?}"),
    }
}

#[derive(Default)]
struct Seen {
    spans: Vec<Got>,
    logs: Vec<LogRecord>,
    metrics: Vec<String>,
    grpc: usize,
    http: usize,
}

/// The receiver; stops with its runtime when dropped.
pub struct Receiver {
    pub addr: SocketAddr,
    seen: Arc<Mutex<Seen>>,
    _rt: tokio::runtime::Runtime,
}

impl Receiver {
    pub fn start() -> Receiver {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let listener = rt
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .unwrap();
        let addr = listener.local_addr().unwrap();
        let seen = Arc::new(Mutex::new(Seen::default()));
        let s = seen.clone();
        rt.spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let s = s.clone();
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |req| answer(s.clone(), req));
                    let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Receiver {
            addr,
            seen,
            _rt: rt,
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The spans received so far.
    pub fn spans(&self) -> Vec<Got> {
        self.seen.lock().unwrap().spans.clone()
    }

    /// The log records received so far.
    pub fn logs(&self) -> Vec<LogRecord> {
        self.seen.lock().unwrap().logs.clone()
    }

    /// The names of the metrics received so far.
    pub fn metrics(&self) -> Vec<String> {
        self.seen.lock().unwrap().metrics.clone()
    }

    /// Exports received over gRPC and over HTTP.
    pub fn transports(&self) -> (usize, usize) {
        let s = self.seen.lock().unwrap();
        (s.grpc, s.http)
    }

    /// Waits (up to two minutes) until `done` holds of what was received.
    pub fn wait(&self, what: &str, done: impl Fn(&Receiver) -> bool) {
        let end = Instant::now() + Duration::from_secs(120);
        while !done(self) {
            assert!(
                Instant::now() < end,
                "the receiver never got {what}; it has {} spans: {:#?}",
                self.spans().len(),
                self.spans()
                    .iter()
                    .map(|g| (
                        g.service.clone(),
                        g.span.name.clone(),
                        g.trace(),
                        g.id(),
                        g.parent()
                    ))
                    .collect::<Vec<_>>()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

type Body = http_body_util::combinators::BoxBody<Bytes, Infallible>;

async fn answer(
    seen: Arc<Mutex<Seen>>,
    req: hyper::Request<Incoming>,
) -> Result<hyper::Response<Body>, Infallible> {
    let grpc = req
        .headers()
        .get("content-type")
        .is_some_and(|v| v.as_bytes().starts_with(b"application/grpc"));
    let path = req.uri().path().to_string();
    let body = req.into_body().collect().await.map(|b| b.to_bytes());
    let Ok(mut body) = body else {
        return Ok(status(400));
    };
    if grpc {
        // One uncompressed message: a flag byte, a length, the message.
        if body.len() < 5 || body[0] != 0 {
            return Ok(status(400));
        }
        body.advance(5);
    }
    let signal = path.rsplit('/').next().unwrap_or_default().to_string();
    let kind = if path.contains("trace") || path.ends_with("/v1/traces") {
        "traces"
    } else if path.contains("logs") {
        "logs"
    } else if path.contains("metrics") {
        "metrics"
    } else {
        return Ok(status(404));
    };
    let _ = signal;
    let decoded = {
        let mut s = seen.lock().unwrap();
        if grpc {
            s.grpc += 1;
        } else {
            s.http += 1;
        }
        match kind {
            "traces" => ExportTraceServiceRequest::decode(body).map(|r| {
                for rs in r.resource_spans {
                    let service = rs
                        .resource
                        .as_ref()
                        .and_then(|r| attr(&r.attributes, "service.name"))
                        .unwrap_or_default();
                    for ss in rs.scope_spans {
                        for span in ss.spans {
                            s.spans.push(Got {
                                service: service.clone(),
                                span,
                            });
                        }
                    }
                }
            }),
            "logs" => ExportLogsServiceRequest::decode(body).map(|r| {
                for rl in r.resource_logs {
                    for sl in rl.scope_logs {
                        s.logs.extend(sl.log_records);
                    }
                }
            }),
            _ => ExportMetricsServiceRequest::decode(body).map(|r| {
                for rm in r.resource_metrics {
                    for sm in rm.scope_metrics {
                        s.metrics.extend(sm.metrics.into_iter().map(|m| m.name));
                    }
                }
            }),
        }
    };
    if decoded.is_err() {
        return Ok(status(400));
    }
    if grpc {
        // An empty response message, then grpc-status 0 in the trailers.
        let mut trailers = http::HeaderMap::new();
        trailers.insert("grpc-status", http::HeaderValue::from_static("0"));
        let frames = vec![
            Ok::<_, Infallible>(Frame::data(Bytes::from_static(&[0, 0, 0, 0, 0]))),
            Ok(Frame::trailers(trailers)),
        ];
        let body = StreamBody::new(futures_util::stream::iter(frames)).boxed();
        let mut resp = hyper::Response::new(body);
        resp.headers_mut().insert(
            "content-type",
            http::HeaderValue::from_static("application/grpc"),
        );
        return Ok(resp);
    }
    let mut resp = hyper::Response::new(Full::new(Bytes::new()).boxed());
    resp.headers_mut().insert(
        "content-type",
        http::HeaderValue::from_static("application/x-protobuf"),
    );
    Ok(resp)
}

fn status(code: u16) -> hyper::Response<Body> {
    let mut r = hyper::Response::new(Full::new(Bytes::new()).boxed());
    *r.status_mut() = hyper::StatusCode::from_u16(code).unwrap();
    r
}
