//! `membrane serve` of `wasi:http/handler@0.3.0` services: many requests per instance, a
//! deadline per request, streaming bodies, and each failure's status.

use std::time::Duration;

use bytes::Bytes;
use membrane::{AppSpec, HttpSpec, ModuleSpec};

use crate::serve::limits::{Chunks, read_until_closed};
use crate::serve::{Served, get, request, send, serve};

use super::*;

/// The p3 probe service as module `m` routed at `/`, with `f`'s settings.
async fn p3_probe(f: impl FnOnce(ModuleSpec) -> ModuleSpec) -> Served {
    serve(
        AppSpec::new().module("m", f(ModuleSpec::from_file(guests::P3_HTTP_PROBE))),
        HttpSpec::default().route("/", "m"),
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_p3_service_answers_and_a_032_guest_links_to_the_030_host() {
    for component in [guests::P3_HELLO, guests::P3_HELLO_032] {
        let s = serve(
            AppSpec::new().module("m", ModuleSpec::from_file(component)),
            HttpSpec::default().route("/", "m"),
        )
        .await;
        let r = get(s.addr, "/").await;
        assert_eq!((r.status, r.body.as_str()), (200, "hello\n"), "{component}");
        assert_eq!(r.headers["content-type"], "text/plain");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sixteen_overlapping_requests_run_in_one_instance() {
    let s = p3_probe(|m| m.concurrency(1, 64)).await;
    // Each waits 2 s, far longer than it takes to send the 16 requests.
    let reqs = (0..16).map(|_| get(s.addr, "/inflight?ms=2000"));
    let replies = futures_util::future::join_all(reqs).await;
    let most = replies
        .iter()
        .map(|r| {
            assert_eq!(r.status, 200, "{}", r.body);
            r.body.trim().parse::<u32>().unwrap()
        })
        .max()
        .unwrap();
    // Every request waited in the one instance; the last to start saw all 16.
    assert_eq!(most, 16);
    let r = get(s.addr, "/count").await;
    assert_eq!(r.body.trim(), "17", "all on one instance");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_request_gets_504_its_neighbours_200_and_the_instance_is_retired() {
    let s = p3_probe(|m| m.concurrency(1, 64).timeout(Duration::from_millis(600))).await;
    let slow = get(s.addr, "/sleep?ms=5000");
    let quick = async {
        tokio::time::sleep(Duration::from_millis(50)).await;
        futures_util::future::join_all((0..4).map(|_| get(s.addr, "/sleep?ms=100"))).await
    };
    let (slow, quick) = tokio::join!(slow, quick);
    assert_eq!(slow.status, 504);
    for r in quick {
        assert_eq!((r.status, r.body.as_str()), (200, "slept 100\n"));
    }
    // The next request runs in a new instance: its count starts again.
    let r = get(s.addr, "/count").await;
    assert_eq!((r.status, r.body.trim()), (200, "1"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cpu_loop_fails_its_neighbours_typed_and_the_server_stays_up() {
    let s = p3_probe(|m| m.concurrency(1, 64).timeout(Duration::from_millis(400))).await;
    let neighbour = get(s.addr, "/sleep?ms=100");
    let spin = async {
        tokio::time::sleep(Duration::from_millis(20)).await;
        get(s.addr, "/spin").await
    };
    let (neighbour, spin) = tokio::join!(neighbour, spin);
    assert_eq!(spin.status, 504);
    assert!(
        [503, 504].contains(&neighbour.status),
        "{} {}",
        neighbour.status,
        neighbour.body
    );
    let r = get(s.addr, "/").await;
    assert_eq!((r.status, r.body.as_str()), (200, "ok\n"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_streaming_echo_returns_every_byte() {
    let s = p3_probe(|m| m.body(16 << 20)).await;
    let body: Vec<u8> = (0..(8 << 20)).map(|i| b'a' + (i % 26) as u8).collect();
    let r = send(s.addr, request("POST", "/echo", body.clone()))
        .await
        .unwrap();
    assert_eq!(r.status, 200);
    assert_eq!(r.body.len(), body.len());
    assert!(r.body.as_bytes() == &body[..]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_body_limit_is_413_declared_or_mid_stream() {
    let s = p3_probe(|m| m.body(16)).await;
    let ok = send(s.addr, request("POST", "/echo", "small body"))
        .await
        .unwrap();
    assert_eq!((ok.status, ok.body.as_str()), (200, "small body"));
    let r = send(s.addr, request("POST", "/echo", vec![b'x'; 100]))
        .await
        .unwrap();
    assert_eq!(r.status, 413);
    let stream = tokio::net::TcpStream::connect(s.addr).await.unwrap();
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
            .await
            .unwrap();
    tokio::spawn(conn);
    let chunks = Chunks(vec![Bytes::from(vec![b'y'; 10]); 5].into());
    let req = http::Request::builder()
        .method("POST")
        .uri("/echo")
        .header("host", "x")
        .body(chunks)
        .unwrap();
    // The guest may have answered the head before the limit tripped: then the body fails,
    // or, when the limit tripped before hyper wrote the head (it waits for the body's first
    // chunk to send both), nothing comes at all. Never a whole response.
    match sender.send_request(req).await {
        Ok(resp) if resp.status() == 200 => {
            use http_body_util::BodyExt;
            assert!(resp.into_body().collect().await.is_err());
        }
        Ok(resp) => assert_eq!(resp.status(), 413),
        Err(e) => assert!(e.is_incomplete_message(), "{e}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trap_after_the_head_aborts_the_body() {
    let s = p3_probe(|m| m).await;
    let stream = tokio::net::TcpStream::connect(s.addr).await.unwrap();
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
            .await
            .unwrap();
    tokio::spawn(conn);
    let req = http::Request::builder()
        .uri("/trap-after-head")
        .header("host", "x")
        .body(http_body_util::Empty::<Bytes>::new())
        .unwrap();
    // The head then a cut body; or, when the trap came before hyper wrote the head (it waits
    // for the body's first chunk to send both), no response at all: never a whole one.
    match sender.send_request(req).await {
        Ok(resp) => {
            assert_eq!(resp.status(), 200);
            use http_body_util::BodyExt;
            assert!(
                resp.into_body().collect().await.is_err(),
                "a cut body must not look whole"
            );
        }
        Err(e) => assert!(e.is_incomplete_message(), "{e}"),
    }
    let r = get(s.addr, "/").await;
    assert_eq!((r.status, r.body.as_str()), (200, "ok\n"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_goes_away_frees_its_room() {
    let s = p3_probe(|m| m.concurrency(1, 4).timeout(Duration::from_secs(5))).await;
    let gone = tokio::spawn({
        let addr = s.addr;
        async move { get(addr, "/sleep?ms=4000").await }
    });
    crate::common::eventually("the request runs", || s.app.status()["m"].busy == 1).await;
    gone.abort();
    // The abandoned instance takes no more requests and ends once nothing else runs in it:
    // the module's one slot is free again.
    crate::common::eventually("the slot is free", || s.app.status()["m"].busy == 0).await;
    let r = get(s.addr, "/").await;
    assert_eq!((r.status, r.body.as_str()), (200, "ok\n"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_p3_example_serves_sixteen_requests_in_one_instance() {
    let root = crate::common::repo_root();
    let text = std::fs::read_to_string(root.join("examples/p3/membrane.toml")).unwrap();
    let text = text.replace(
        "../../guests/target/wasm32-wasip2/release/p3_http_probe.wasm",
        guests::P3_HTTP_PROBE,
    );
    let dir = tempfile::tempdir().unwrap();
    let manifest = crate::common::write_manifest(dir.path(), &text);
    let m = membrane::Manifest::from_file(&manifest).unwrap();
    assert_eq!(m.app.modules["service"].limits.concurrency, 16);
    let app = runtime().load_spec(m.app).await.unwrap();
    let s = crate::serve::serve_app(app).await;
    let replies =
        futures_util::future::join_all((0..16).map(|_| get(s.addr, "/inflight?ms=300"))).await;
    for r in &replies {
        assert_eq!(r.status, 200, "{}", r.body);
    }
    // One instance made for the burst, with room for all of it (a caller that found no room
    // while the first was being made looks again before making another: executor.rs).
    let st = &s.app.status()["service"];
    assert_eq!((st.busy, st.idle), (0, 1), "{st:?}");
    let r = send(s.addr, request("POST", "/echo", "stream me"))
        .await
        .unwrap();
    assert_eq!((r.status, r.body.as_str()), (200, "stream me"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_does_not_read_frees_its_room() {
    use tokio::io::AsyncWriteExt;
    let mut http = HttpSpec::default().route("/", "m");
    http.write_timeout = Duration::from_millis(300);
    let s = serve(
        AppSpec::new().module(
            "m",
            ModuleSpec::from_file(guests::P3_HTTP_PROBE)
                .timeout(Duration::from_secs(30))
                .concurrency(1, 8),
        ),
        http,
    )
    .await;
    let mut stream = tokio::net::TcpStream::connect(s.addr).await.unwrap();
    stream
        .write_all(b"GET /big?bytes=33554432 HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    // Never read: the socket buffers fill, the guest's writes wait, the server's write
    // times out, the body is dropped, and the instance (abandoned) ends: its slot is free.
    crate::common::eventually("the guest is writing", || s.app.status()["m"].busy == 1).await;
    crate::common::eventually("the slot is freed", || s.app.status()["m"].busy == 0).await;
    let total = read_until_closed(&mut stream).await;
    assert!(
        total < 32 << 20,
        "the response was cut short ({total} bytes)"
    );
    let r = get(s.addr, "/").await;
    assert_eq!((r.status, r.body.as_str()), (200, "ok\n"));
}
