//! Outbound `wasi:http` only to granted origins; denials are audited and counted.

use std::convert::Infallible;
use std::net::SocketAddr;

use bytes::Bytes;
use http_body_util::Full;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

use super::{get, one, probe, sample};

/// A plain upstream HTTP server on 127.0.0.1 answering `upstream <path>`.
async fn upstream() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let svc = service_fn(|req: hyper::Request<hyper::body::Incoming>| async move {
                    Ok::<_, Infallible>(hyper::Response::new(Full::new(Bytes::from(format!(
                        "upstream {}",
                        req.uri().path()
                    )))))
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), svc)
                    .await;
            });
        }
    });
    addr
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_granted_origins_can_be_reached() {
    let up = upstream().await;
    let other = upstream().await;
    let s = one(probe("m").http(format!("http://127.0.0.1:{}", up.port()))).await;
    let r = get(
        s.addr,
        &format!("/fetch?url=http://127.0.0.1:{}/hi", up.port()),
    )
    .await;
    assert_eq!(
        (r.status, r.body.as_str()),
        (200, "status=200\nupstream /hi")
    );
    // Another port, another host name for the same address, another scheme: denied.
    for url in [
        format!("http://127.0.0.1:{}/hi", other.port()),
        format!("http://localhost:{}/hi", up.port()),
        format!("https://127.0.0.1:{}/hi", up.port()),
    ] {
        let r = get(s.addr, &format!("/fetch?url={url}")).await;
        assert_eq!(r.status, 502, "{url}: {}", r.body);
        assert!(r.body.contains("HttpRequestDenied"), "{url}: {}", r.body);
    }
    let m = s.app.metrics_text();
    assert_eq!(
        sample(
            &m,
            "membrane_denials_total{module=\"m\",capability=\"http\"}"
        ),
        Some(3.0),
        "{m}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_grant_means_no_outbound_http_and_no_sockets() {
    let up = upstream().await;
    let s = one(probe("m")).await;
    let r = get(
        s.addr,
        &format!("/fetch?url=http://127.0.0.1:{}/", up.port()),
    )
    .await;
    assert_eq!(r.status, 502);
    assert!(r.body.contains("HttpRequestDenied"), "{}", r.body);
    // Plain sockets stay governed by grants.network.
    let r = get(s.addr, &format!("/connect?addr={up}")).await;
    assert_eq!(r.status, 502, "{}", r.body);
    let m = s.app.metrics_text();
    assert_eq!(
        sample(
            &m,
            "membrane_denials_total{module=\"m\",capability=\"http\"}"
        ),
        Some(1.0),
        "{m}"
    );
    assert_eq!(
        sample(
            &m,
            "membrane_denials_total{module=\"m\",capability=\"network\"}"
        ),
        Some(1.0),
        "{m}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_network_grant_is_not_an_http_grant() {
    let up = upstream().await;
    let s = one(probe("m").network(up.to_string())).await;
    assert_eq!(
        get(s.addr, &format!("/connect?addr={up}")).await.body,
        "connected"
    );
    let r = get(s.addr, &format!("/fetch?url=http://{up}/")).await;
    assert!(r.body.contains("HttpRequestDenied"), "{}", r.body);
}
