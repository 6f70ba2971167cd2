//! The admin listener, for operators: `GET /metrics` (OpenMetrics text, which Prometheus
//! scrapes), `GET /status` (JSON: each module's instances, queue, circuit, recent
//! failures, generation and upgrades, as [`App::status`] knows them), and the changes
//! of `super::control`: `POST /reload`, `POST /rollback/<module>`.

use http::{HeaderValue, Method, StatusCode};
use hyper::body::Incoming;

use crate::access::Access;
use crate::app::App;
use crate::service::{Response, text};
use crate::upgrade::report::GenerationState;

/// The content type of the metrics.
const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Answers one admin request.
pub(crate) async fn handle(app: &App, access: &Access, req: hyper::Request<Incoming>) -> Response {
    if let Some(refused) = access.refuse_host(&req) {
        return refused;
    }
    if let Some(resp) = super::control::handle(app, access, &req).await {
        return resp;
    }
    let (body, content_type) = match req.uri().path() {
        "/" => return super::page::handle(app, req.method(), access.token()),
        "/metrics" => {
            // The bucket gauges are set as the store answers.
            app.buckets().await;
            (app.metrics_text(), OPENMETRICS)
        }
        "/status" => (status_json(app, &app.buckets().await), "application/json"),
        _ => {
            return text(
                StatusCode::NOT_FOUND,
                "admin endpoints: GET / (a page for operators), GET /metrics, GET /status, POST /reload, POST /rollback/<module>\n",
            );
        }
    };
    if req.method() != Method::GET && req.method() != Method::HEAD {
        let mut resp = text(StatusCode::METHOD_NOT_ALLOWED, "use GET\n");
        resp.headers_mut()
            .insert(http::header::ALLOW, HeaderValue::from_static("GET, HEAD"));
        return resp;
    }
    let mut resp = text(StatusCode::OK, body);
    resp.headers_mut().insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static(content_type),
    );
    resp
}

/// The app's status as JSON, `{"modules": {"NAME": {...}}, "buckets": {"NAME": {...}}}`:
/// per module its busy, idle and waiting instances, circuit (`healthy`, `circuit-open`,
/// `trial`), recent failures and limits; per key-value bucket ([`App::buckets`]) what it
/// holds and its limits. What `GET /status` answers.
pub fn status_json(app: &App, buckets: &[membrane_core::keyvalue::BucketStatus]) -> String {
    let modules: serde_json::Map<String, serde_json::Value> = app
        .status()
        .into_iter()
        .map(|(name, s)| {
            let health = s.health.as_str();
            let retry_in_ms = s.health.retry_in().map(|d| d.as_millis() as u64);
            let limits = app.spec(&name).map(|spec| spec.limits);
            let limits = limits.as_ref();
            let probation_left_ms = match s.state {
                GenerationState::Probation { left } => Some(left.as_millis() as u64),
                _ => None,
            };
            let last_upgrade = s.last_upgrade.as_ref().map(|u| {
                serde_json::json!({
                    "ok": u.ok,
                    "from": u.from,
                    "to": u.to,
                    "message": u.message,
                    "at_unix_ms": u.at.duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64),
                })
            });
            let value = serde_json::json!({
                "generation": s.generation,
                "hash": format!("sha256:{}", s.hash),
                "placement": s.placement.as_str(),
                "worker_pid": s.worker_pid,
                "worker_log_dropped": s.worker_log_dropped,
                "remote_hosts": s.remote_hosts,
                "hosted": s.hosted,
                "state": s.state.as_str(),
                "probation_left_ms": probation_left_ms,
                "draining": s.draining,
                "ended": s.ended,
                "calls": s.calls,
                "last_upgrade": last_upgrade,
                "busy": s.busy,
                "running": s.running,
                "idle": s.idle,
                "waiting": s.waiting,
                "circuit": health,
                "retry_in_ms": retry_in_ms,
                "recent_failures": s.recent_failures,
                "instances_limit": limits.map(|l| l.instances),
                "queue_limit": limits.map(|l| l.queue),
                "failing": s.failing(),
                "entry": s.entry,
                "routes": s.routes,
                "last_minute": {
                    "calls": s.recent.calls,
                    "failures": s.recent.failures.iter().map(|(k, n)| (k.to_string(), serde_json::json!(n))).collect::<serde_json::Map<_, _>>(),
                    "p50_ms": s.recent.p50.map(|d| d.as_secs_f64() * 1000.0),
                    "p99_ms": s.recent.p99.map(|d| d.as_secs_f64() * 1000.0),
                },
                "quotas": s.quotas.iter().map(|q| serde_json::json!({
                    "guest": q.guest,
                    "max_bytes": q.max_bytes,
                    "max_files": q.max_files,
                    "used_bytes": q.used.map(|u| u.0),
                    "used_files": q.used.map(|u| u.1),
                })).collect::<Vec<_>>(),
            });
            (name, value)
        })
        .collect();
    let buckets: serde_json::Map<String, serde_json::Value> = buckets
        .iter()
        .map(|b| {
            let (bytes, keys, error) = match &b.usage {
                Ok(u) => (Some(u.bytes), Some(u.keys), None),
                Err(e) => (None, None, Some(e.to_string())),
            };
            let value = serde_json::json!({
                "bytes": bytes,
                "keys": keys,
                "quota": b.spec.quota,
                "keys_limit": b.spec.keys,
                "value_limit": b.spec.value_limit(),
                "error": error,
            });
            (b.name.clone(), value)
        })
        .collect();
    let mut out = serde_json::json!({ "modules": modules, "buckets": buckets }).to_string();
    out.push('\n');
    out
}
