//! A guest's response header and trailer values as a client receives them
//! (docs/decisions/0009-guest-header-values.md): bytes 0x80-0xFF (RFC 9110's obs-text) and
//! inner whitespace pass as the guest wrote them; leading and trailing spaces and tabs,
//! which are not part of a field value (RFC 9110, 5.5) and make an HTTP/2 message malformed
//! (RFC 9113, 8.2.1), are removed; control bytes are refused by wasi:http before anything
//! is sent.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::{one, probe};

/// A bound on waits for what surely comes: only a broken test waits this long.
const GUARD: Duration = Duration::from_secs(30);

/// What the guest sets, and what the client must receive.
const CASES: &[(&[u8], &[u8])] = &[
    (b"plain", b"plain"),
    (b"a\x80\xffb", b"a\x80\xffb"),
    (b"\xa0x\xa0", b"\xa0x\xa0"),
    (b" x", b"x"),
    (b"x \t", b"x"),
    (b"\t a  b \t", b"a  b"),
    (b"  ", b""),
];

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The value of `name` in a raw HTTP/1.1 head, byte for byte (after `name: `).
fn raw_value<'a>(head: &'a [u8], name: &str) -> Option<&'a [u8]> {
    let prefix = format!("{name}: ");
    head.split(|&b| b == b'\n')
        .map(|line| line.strip_suffix(b"\r").unwrap_or(line))
        .find_map(|line| line.strip_prefix(prefix.as_bytes()))
}

/// The response head of `GET path` over HTTP/1.1, as the bytes on the wire.
async fn http1_head(addr: SocketAddr, path: &str) -> Vec<u8> {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let req = format!("GET {path} HTTP/1.1\r\nHost: test.local\r\nConnection: close\r\n\r\n");
    stream.write_all(req.as_bytes()).await.unwrap();
    let mut out = Vec::new();
    tokio::time::timeout(GUARD, stream.read_to_end(&mut out))
        .await
        .expect("the server answers and closes")
        .unwrap();
    let end = out
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a whole head");
    out.truncate(end + 2);
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn guest_header_values_reach_clients_without_surrounding_whitespace() {
    let s = one(probe("m")).await;
    let stream = TcpStream::connect(s.addr).await.unwrap();
    let (mut h2, conn) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
            .await
            .unwrap();
    tokio::spawn(conn);
    for &(set, want) in CASES {
        let path = format!("/respond-header?hex={}", hex(set));
        let head = http1_head(s.addr, &path).await;
        assert!(head.starts_with(b"HTTP/1.1 200"), "{set:?}: {head:?}");
        assert_eq!(raw_value(&head, "x-probe"), Some(want), "HTTP/1.1, {set:?}");

        let req = http::Request::builder()
            .uri(format!("http://test.local{path}"))
            .body(Full::new(Bytes::new()))
            .unwrap();
        let resp = tokio::time::timeout(GUARD, h2.send_request(req))
            .await
            .expect("answered")
            .unwrap_or_else(|e| panic!("HTTP/2, {set:?}: {e}"));
        assert_eq!(resp.status(), 200);
        assert_eq!(
            resp.headers()["x-probe"].as_bytes(),
            want,
            "HTTP/2, {set:?}"
        );
        let body = resp.into_body().collect().await.unwrap();
        let trailers = body.trailers().cloned().expect("trailers");
        assert_eq!(
            trailers["x-probe-trailer"].as_bytes(),
            want,
            "HTTP/2 trailer, {set:?}"
        );
        assert_eq!(body.to_bytes(), "ok");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn guest_header_values_with_control_bytes_are_refused() {
    let s = one(probe("m")).await;
    for bad in [
        &b"a\rb"[..],
        b"a\nb",
        b"a\0b",
        b"a\x1bb",
        b"a\x7fb",
        b"\x0bx",
    ] {
        let path = format!("/respond-header?hex={}", hex(bad));
        let head = http1_head(s.addr, &path).await;
        // The guest's own answer once wasi:http refused the value.
        assert!(head.starts_with(b"HTTP/1.1 500"), "{bad:?}: {head:?}");
        assert_eq!(raw_value(&head, "x-probe"), None, "{bad:?}");
    }
}
