//! Routing, protocols, and what is refused before a guest sees it.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::{TokioExecutor, TokioIo};
use membrane::{AppSpec, ErrorKind, HttpSpec, ModuleSpec};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::{get, one, probe, request, serve, with_host};
use crate::common::{guests, runtime};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_longest_prefix_wins_and_unrouted_paths_are_404() {
    let spec = AppSpec::new()
        .module("web", probe("web"))
        .module("api", probe("api"))
        .module("v2", probe("v2"));
    let http = HttpSpec::default()
        .route("/app/", "web")
        .route("/app/api/", "api")
        .route("/app/api/v2/", "v2");
    let s = serve(spec, http).await;
    let r = get(s.addr, "/app/index.html?x=1").await;
    assert_eq!(
        (r.status, r.body.as_str()),
        (200, "web GET /app/index.html?x=1\n")
    );
    assert_eq!(
        get(s.addr, "/app/api/notes").await.body,
        "api GET /app/api/notes\n"
    );
    assert_eq!(
        get(s.addr, "/app/api/v2/x").await.body,
        "v2 GET /app/api/v2/x\n"
    );
    // A prefix is a prefix of the path, not of a path segment's name.
    assert_eq!(get(s.addr, "/app/api").await.body, "web GET /app/api\n");
    let r = get(s.addr, "/elsewhere").await;
    assert_eq!(r.status, 404);
    assert!(r.headers.contains_key("traceparent"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keep_alive_serves_many_requests_on_one_connection() {
    let s = one(probe("m")).await;
    let stream = TcpStream::connect(s.addr).await.unwrap();
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(conn);
    for i in 0..5 {
        sender.ready().await.unwrap();
        let resp = sender
            .send_request(with_host(request("GET", &format!("/n{i}"), Bytes::new())))
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        let body = resp.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(body, format!("m GET /n{i}\n").as_bytes());
    }
    // An idle connection holds no instance.
    let st = &s.app.status()["m"];
    assert_eq!(st.busy, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http2_with_prior_knowledge() {
    let s = one(probe("m")).await;
    let stream = TcpStream::connect(s.addr).await.unwrap();
    let (mut sender, conn) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
            .await
            .unwrap();
    tokio::spawn(conn);
    let req = http::Request::builder()
        .uri(format!("http://{}/h2", s.addr))
        .body(Full::new(Bytes::new()))
        .unwrap();
    let resp = sender.send_request(req).await.unwrap();
    assert_eq!(resp.status(), 200);
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(body, "m GET /h2\n".as_bytes());
}

async fn raw(addr: std::net::SocketAddr, bytes: &[u8]) -> String {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.write_all(bytes).await.unwrap();
    let mut out = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut out)).await;
    String::from_utf8_lossy(&out).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_http_is_400_and_never_reaches_a_guest() {
    let s = one(probe("m")).await;
    for bad in [
        &b"GARBAGE\r\n\r\n"[..],
        b"GET / HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello",
    ] {
        let out = raw(s.addr, bad).await;
        assert!(out.starts_with("HTTP/1.1 400"), "{bad:?} -> {out:?}");
    }
    // HTTP/1.0 without a Host header: answered by the server.
    let out = raw(s.addr, b"GET / HTTP/1.0\r\n\r\n").await;
    assert!(
        out.starts_with("HTTP/1.0 400") || out.starts_with("HTTP/1.1 400"),
        "{out:?}"
    );
    let m = s.app.metrics_text();
    assert!(!m.contains("outcome=\"ok\""), "no guest was called:\n{m}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_routed_module_must_export_the_handler() {
    let spec = AppSpec::new()
        .module("web", probe("web"))
        .module("lib", ModuleSpec::from_file(guests::PROBE))
        .http(HttpSpec::default().route("/", "web").route("/lib/", "lib"));
    let Err(e) = runtime().load_spec(spec).await else {
        panic!("loads")
    };
    assert_eq!(e.kind(), ErrorKind::Link, "{e}");
    let p = &e.problems()[0];
    assert_eq!(p.module(), Some("lib"));
    assert_eq!(p.key(), Some("app.http.routes./lib/"));
    // And a route to no module at all.
    let spec = AppSpec::new()
        .module("web", probe("web"))
        .http(HttpSpec::default().route("/", "nope").route("api", "web"));
    let Err(e) = runtime().load_spec(spec).await else {
        panic!("loads")
    };
    let keys: Vec<_> = e.problems().iter().filter_map(|p| p.key()).collect();
    assert!(keys.contains(&"app.http.routes./"), "{e}");
    assert!(keys.contains(&"app.http.routes.api"), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stopping_lets_requests_in_flight_finish_and_refuses_new_ones() {
    let s = one(probe("m")).await;
    let addr = s.addr;
    let in_flight = tokio::spawn(async move { get(addr, "/sleep?ms=800").await });
    super::eventually("the request runs", || s.app.status()["m"].busy == 1).await;
    let stopped = tokio::spawn(s.stop());
    super::eventually("the listener is closed", || {
        std::net::TcpStream::connect(addr).is_err()
    })
    .await;
    let r = in_flight.await.unwrap();
    assert_eq!((r.status, r.body.as_str()), (200, "slept 800\n"));
    assert_eq!(stopped.await.unwrap(), 0, "no connection had to be aborted");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_web_example_crosses_three_modules() {
    let root = crate::common::repo_root();
    let text = std::fs::read_to_string(root.join("examples/web/membrane.toml")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("data")).unwrap();
    let text = text
        .replace(
            "../../guests/target/wasm32-wasip2/release/web.wasm",
            guests::WEB,
        )
        .replace(
            "../../guests/target/wasm32-wasip2/release/kv_store.wasm",
            guests::KV_STORE,
        )
        .replace(
            "../../guests/target/wasm32-wasip2/release/render.wasm",
            guests::RENDER,
        );
    let manifest = crate::common::write_manifest(dir.path(), &text);
    let m = membrane::Manifest::from_file(&manifest).unwrap();
    let app = runtime().load_spec(m.app).await.unwrap();
    let s = super::serve_app(app).await;
    let r = super::send(s.addr, request("POST", "/notes", "buy milk"))
        .await
        .unwrap();
    assert_eq!((r.status, r.body.as_str()), (201, "added 1\n"));
    let r = super::send(s.addr, request("POST", "/notes", "call Ada"))
        .await
        .unwrap();
    assert_eq!(r.body, "added 2\n");
    let r = get(s.addr, "/").await;
    assert_eq!(r.status, 200);
    assert!(
        r.body.contains("buy milk") && r.body.contains("call Ada"),
        "{}",
        r.body
    );
    assert_eq!(get(s.addr, "/notes/2").await.body, "call Ada\n");
    assert_eq!(get(s.addr, "/notes/9").await.status, 404);
    assert_eq!(
        super::send(s.addr, request("DELETE", "/", ""))
            .await
            .unwrap()
            .status,
        405
    );
    // The store wrote only its granted directory.
    assert!(std::fs::read_dir(dir.path().join("data")).unwrap().count() >= 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_still_running_when_the_drain_time_ends_are_aborted() {
    let mut http = HttpSpec::default().route("/", "m");
    http.drain = Duration::from_millis(300);
    // The request would run for 30 s, a hundred times the drain time: stopping returns
    // long before it unless it waits for the request (an ordering, not a speed).
    let module = probe("m").timeout(Duration::from_secs(60));
    let s = serve(AppSpec::new().module("m", module), http).await;
    let addr = s.addr;
    let in_flight = tokio::spawn(async move {
        super::send(addr, request("GET", "/sleep?ms=30000", Bytes::new())).await
    });
    super::eventually("the request runs", || s.app.status()["m"].busy == 1).await;
    let started = std::time::Instant::now();
    assert_eq!(s.stop().await, 1, "the one connection left is aborted");
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "stopping waited for the request: {:?}",
        started.elapsed()
    );
    let r = in_flight.await.unwrap();
    assert!(
        r.is_err(),
        "the client sees the connection end, not a response"
    );
}

/// A guest that answers and returns at once is polled by the request itself; one still
/// writing when its head goes out goes on on a task of its own (incoming.rs). Both must
/// deliver the whole body, end the call as a success and give the instance back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_still_streaming_after_the_head_arrives_whole_and_frees_its_instance() {
    let s = one(probe("m")).await;
    // 1 MiB in 4 KiB writes: far more than wasi-http's body channel holds, so the guest is
    // still writing when the head is out.
    let n = 1 << 20;
    let r = get(s.addr, &format!("/big?n={n}")).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body.len(), n);
    assert!(r.body.bytes().all(|b| b == b'x'));
    // A short answer, on the request's own task.
    let r = get(s.addr, "/short").await;
    assert_eq!((r.status, r.body.as_str()), (200, "m GET /short\n"));
    super::eventually("both calls ended and their instance is idle", || {
        let st = &s.app.status()["m"];
        st.calls == 2 && st.busy == 0 && st.idle >= 1
    })
    .await;
    // Counted as successes: a failed call's instance would have been dropped.
    assert_eq!(s.app.status()["m"].recent_failures, 0);
}
