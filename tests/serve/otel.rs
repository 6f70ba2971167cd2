//! OpenTelemetry export from real `membrane serve` and `membrane host` processes to a real
//! OTLP receiver (`otlp.rs`): one trace per request across an isolated link, a process
//! worker and a NATS host, with the right parents; metrics and guest log records arrive;
//! gRPC from `[app.telemetry]`; a dead collector changes nothing for calls.

use super::cli::start_with;
use super::otlp::{Got, Receiver, attr, hex};
use super::{get, request, sample, send};
use crate::common::{guests, write_manifest};

/// A client's runtime (the tests are plain threads: the receiver owns a runtime).
fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}
use crate::remote::nats::Nats;

/// What every exporting process of these tests gets: batches sent at once, metrics every
/// 200 ms.
fn otel_env(url: &str) -> Vec<(&'static str, String)> {
    vec![
        ("OTEL_EXPORTER_OTLP_ENDPOINT", url.to_string()),
        ("OTEL_BSP_SCHEDULE_DELAY", "20".into()),
        ("OTEL_METRIC_EXPORT_INTERVAL", "200".into()),
    ]
}

fn pairs<'a>(env: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
    env.iter().map(|(k, v)| (*k, v.as_str())).collect()
}

const TRACE_P: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const TRACE_R: &str = "5ce0a3b6e1d24c0f9a7b8c6d5e4f3a21";
const CALLER: &str = "00f067aa0ba902b7";

/// The one span of `trace` that `pick` selects.
fn one<'a>(spans: &'a [Got], what: &str, pick: impl Fn(&Got) -> bool) -> &'a Got {
    let found: Vec<&Got> = spans.iter().filter(|g| pick(g)).collect();
    assert_eq!(found.len(), 1, "{what}: {found:#?}");
    found[0]
}

#[test]
fn one_trace_crosses_a_link_a_worker_and_a_nats_host() {
    let receiver = Receiver::start();
    let nats = Nats::start();
    let dir = tempfile::tempdir().unwrap();
    let name = crate::remote::app_name();
    let manifest = write_manifest(
        dir.path(),
        &format!(
            "[app]\nname = {name:?}\nnats = {:?}\n\
             [app.http]\nroutes = {{ \"/p\" = \"web_p\", \"/r\" = \"web_r\" }}\n\
             [app.admin]\nlisten = \"127.0.0.1:0\"\n\
             [modules.web_p]\ncomponent = {:?}\nlinks = {{ \"acme:greet/api\" = \"greet_p\" }}\n\
             [modules.greet_p]\ncomponent = {:?}\nplacement = \"process\"\n\
             [modules.web_r]\ncomponent = {:?}\nlinks = {{ \"acme:greet/api\" = \"greet_r\" }}\n\
             [modules.greet_r]\ncomponent = {:?}\nplacement = \"remote\"\n",
            nats.url,
            guests::GREET_HTTP,
            guests::GREET_V1,
            guests::GREET_HTTP,
            guests::GREET_V1,
        ),
    );
    let env = otel_env(&receiver.url());
    let mut host = crate::common::membrane_command();
    host.args(["host", manifest.to_str().unwrap(), "--modules", "greet_r"])
        .env("OTEL_SERVICE_NAME", "the-nats-host");
    for (k, v) in &env {
        host.env(k, v);
    }
    let _host = crate::remote::hostproc::HostProc::spawn(host);
    let server = start_with(&manifest, &[], &pairs(&env));
    let rt = runtime();
    for (path, trace) in [("/p/log-one", TRACE_P), ("/r/two", TRACE_R)] {
        let mut req = request("GET", path, "");
        req.headers_mut().insert(
            "traceparent",
            format!("00-{trace}-{CALLER}-01").parse().unwrap(),
        );
        let reply = rt.block_on(send(server.addr, req)).unwrap();
        assert_eq!(reply.status, 200, "{path}: {}", reply.body);
        // The response names the request's span in the caller's trace.
        let back = reply.headers["traceparent"].to_str().unwrap().to_string();
        assert!(back.starts_with(&format!("00-{trace}-")), "{back}");
    }
    // Seven spans: two requests, two fronts, two client spans, the worker's and the host's.
    let of = |t: &str| -> Vec<Got> {
        receiver
            .spans()
            .into_iter()
            .filter(|g| g.trace() == t)
            .collect()
    };
    receiver.wait("both traces whole", |_| {
        of(TRACE_P).len() >= 4 && of(TRACE_R).len() >= 4
    });

    // Through a worker process: request -> web_p -> greet_p (client) -> the worker's span.
    let spans = of(TRACE_P);
    let http = one(&spans, "the request", |g| g.attr("http.route").is_some());
    assert_eq!(http.span.name, "GET /p");
    assert_eq!(http.parent(), CALLER);
    assert_eq!(http.span.kind, 2, "server");
    assert_eq!(
        http.attr("http.response.status_code").as_deref(),
        Some("200")
    );
    let web = one(&spans, "web_p's call", |g| {
        g.attr("membrane.module").as_deref() == Some("web_p") && g.attr("http.route").is_none()
    });
    assert_eq!(web.parent(), http.id());
    assert_eq!(web.attr("membrane.placement").as_deref(), Some("isolated"));
    assert_eq!(web.attr("membrane.outcome").as_deref(), Some("ok"));
    let client = one(&spans, "greet_p's call", |g| {
        g.attr("membrane.module").as_deref() == Some("greet_p") && g.attr("membrane.side").is_none()
    });
    assert_eq!(client.parent(), web.id());
    assert_eq!(client.span.kind, 3, "client");
    assert_eq!(
        client.attr("membrane.placement").as_deref(),
        Some("process")
    );
    assert_eq!(
        client.attr("rpc.method").as_deref(),
        Some("greet_p/acme:greet/api@1.0.0#hello")
    );
    let worker = one(&spans, "the worker's span", |g| {
        g.attr("membrane.side").as_deref() == Some("worker")
    });
    assert_eq!(worker.parent(), client.id());
    assert_eq!(worker.span.kind, 2, "server");
    assert!(worker.span.start_time_unix_nano >= client.span.start_time_unix_nano);
    assert!(worker.span.end_time_unix_nano <= client.span.end_time_unix_nano);

    // Over NATS: request -> web_r -> greet_r (client) -> the host's span, which the host
    // process exported itself.
    let spans = of(TRACE_R);
    let http = one(&spans, "the request", |g| g.attr("http.route").is_some());
    let web = one(&spans, "web_r's call", |g| {
        g.attr("membrane.module").as_deref() == Some("web_r") && g.attr("http.route").is_none()
    });
    assert_eq!(web.parent(), http.id());
    let client = one(&spans, "greet_r's call", |g| {
        g.attr("membrane.module").as_deref() == Some("greet_r") && g.span.kind == 3
    });
    assert_eq!(client.parent(), web.id());
    assert_eq!(client.attr("membrane.placement").as_deref(), Some("remote"));
    let hosted = one(&spans, "the host's span", |g| {
        g.attr("membrane.module").as_deref() == Some("greet_r") && g.span.kind == 2
    });
    assert_eq!(hosted.parent(), client.id());
    assert_eq!(hosted.service, "the-nats-host");
    assert_eq!(client.service, name);

    // The guest's stderr line, as a log record in the call's trace.
    receiver.wait("the guest's log record", |r| {
        r.logs().iter().any(|l| {
            l.body
                .as_ref()
                .is_some_and(|b| super::otlp::text(b).contains("greeting p/log-one"))
        })
    });
    let logs = receiver.logs();
    let line = logs
        .iter()
        .find(|l| {
            l.body
                .as_ref()
                .is_some_and(|b| super::otlp::text(b).contains("greeting p/log-one"))
        })
        .unwrap();
    assert_eq!(hex(&line.trace_id), TRACE_P);
    let ids: Vec<String> = of(TRACE_P).iter().map(Got::id).collect();
    assert!(ids.contains(&hex(&line.span_id)), "{line:?}");
    assert_eq!(attr(&line.attributes, "module").as_deref(), Some("greet_p"));
    assert_eq!(line.severity_text, "INFO");

    // Metrics made from the spans.
    receiver.wait("the duration metrics", |r| {
        let m = r.metrics();
        m.iter().any(|n| n == "http.server.request.duration")
            && m.iter().any(|n| n == "rpc.server.call.duration")
            && m.iter().any(|n| n == "rpc.client.call.duration")
    });
    let (grpc, http) = receiver.transports();
    assert_eq!(grpc, 0);
    assert!(http > 0);
}

#[test]
fn grpc_export_from_the_manifest() {
    let receiver = Receiver::start();
    let dir = tempfile::tempdir().unwrap();
    let manifest = write_manifest(
        dir.path(),
        &format!(
            "[app]\nname = \"grpc-app\"\n\
             [app.telemetry]\nendpoint = {:?}\nprotocol = \"grpc\"\nservice_name = \"from-manifest\"\n\
             [app.http]\nroutes = {{ \"/\" = \"web\" }}\n\
             [modules.web]\ncomponent = {:?}\nlinks = {{ \"acme:greet/api\" = \"greet\" }}\n\
             [modules.greet]\ncomponent = {:?}\n",
            receiver.url(),
            guests::GREET_HTTP,
            guests::GREET_V1,
        ),
    );
    let server = start_with(&manifest, &[], &[("OTEL_BSP_SCHEDULE_DELAY", "20")]);
    let reply = runtime().block_on(get(server.addr, "/x"));
    assert_eq!(reply.status, 200);
    let back = reply.headers["traceparent"].to_str().unwrap().to_string();
    let trace = back.split('-').nth(1).unwrap().to_string();
    receiver.wait("three spans over gRPC", |r| {
        r.spans().iter().filter(|g| g.trace() == trace).count() >= 3
    });
    let spans = receiver.spans();
    assert!(spans.iter().all(|g| g.service == "from-manifest"));
    let (grpc, http) = receiver.transports();
    assert!(grpc > 0);
    assert_eq!(http, 0);
}

#[test]
fn a_dead_collector_changes_nothing_for_calls() {
    // A port nothing listens on: bound, then closed.
    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", dead.local_addr().unwrap());
    drop(dead);
    let dir = tempfile::tempdir().unwrap();
    let manifest = write_manifest(
        dir.path(),
        &format!(
            "[app.http]\nroutes = {{ \"/\" = \"web\" }}\n\
             [app.admin]\nlisten = \"127.0.0.1:0\"\n\
             [modules.web]\ncomponent = {:?}\nlinks = {{ \"acme:greet/api\" = \"greet\" }}\n\
             [modules.greet]\ncomponent = {:?}\n",
            guests::GREET_HTTP,
            guests::GREET_V1,
        ),
    );
    let env = otel_env(&url);
    let server = start_with(&manifest, &[], &pairs(&env));
    let rt = runtime();
    for i in 0..50 {
        let reply = rt.block_on(get(server.addr, &format!("/n{i}")));
        assert_eq!(reply.status, 200);
        assert_eq!(reply.body, format!("v1 hello n{i}"));
    }
    // What could not be sent is counted, not kept.
    let admin = server.admin.unwrap();
    let end = std::time::Instant::now() + std::time::Duration::from_secs(120);
    loop {
        let metrics = rt.block_on(get(admin, "/metrics")).body;
        let dropped = sample(
            &metrics,
            "membrane_telemetry_dropped_total{signal=\"spans\"}",
        );
        if dropped.is_some_and(|n| n >= 1.0) {
            break;
        }
        assert!(
            std::time::Instant::now() < end,
            "no dropped spans counted:\n{metrics}"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}
