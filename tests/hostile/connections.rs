//! Clients that hold HTTP connections without using them: silent sockets, sockets that send
//! only the HTTP/2 preface, idle HTTP/2 connections, and one address taking every slot. None
//! of them may keep a real request out.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use hyper_util::rt::{TokioExecutor, TokioIo};
use membrane::{AppSpec, HttpSpec};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

use crate::serve::{Served, eventually, get, probe, request, sample, serve};

/// The HTTP/2 client preface and an empty SETTINGS frame: a connection that says it speaks
/// HTTP/2 and then opens no stream.
const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00";

/// A hang guard: far longer than anything here takes, far shorter than the timers that must
/// not be what let the request in.
const GUARD: Duration = Duration::from_secs(30);

async fn server(f: impl FnOnce(HttpSpec) -> HttpSpec) -> Served {
    let spec = AppSpec::new().module(
        "m",
        probe("m")
            .concurrency(8, 8)
            .timeout(Duration::from_secs(120)),
    );
    serve(spec, f(HttpSpec::default().route("/", "m"))).await
}

/// Connections that send nothing, then connections that send only the HTTP/2 preface.
async fn silent(addr: SocketAddr, quiet: usize, preface: usize) -> Vec<TcpStream> {
    let mut held = Vec::new();
    for i in 0..quiet + preface {
        let mut s = TcpStream::connect(addr).await.unwrap();
        if i >= quiet {
            s.write_all(H2_PREFACE).await.unwrap();
        }
        held.push(s);
    }
    held
}

/// Reads until the server closes the connection (end of file or reset), ignoring whatever
/// it sent before (an HTTP/2 SETTINGS frame, say).
async fn closed_by_server(s: &mut TcpStream) {
    let mut buf = [0u8; 1024];
    loop {
        match s.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
    }
}

/// Reads until `needle` has come (or the connection ends); what was read.
pub async fn read_until(s: &mut TcpStream, needle: &str) -> String {
    let mut got = Vec::new();
    let mut buf = [0u8; 1024];
    while !String::from_utf8_lossy(&got).contains(needle) {
        match s.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
        }
    }
    String::from_utf8_lossy(&got).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_connections_cannot_keep_a_request_out() {
    // The timer that would close them is a minute away: only making room can let the request in.
    let s = server(|mut h| {
        h.max_connections = 8;
        h.header_timeout = Duration::from_secs(60);
        h
    })
    .await;
    let _held = silent(s.addr, 16, 8).await;
    let r = tokio::time::timeout(GUARD, get(s.addr, "/after-the-silent-ones"))
        .await
        .expect("a request behind 2 x max_connections silent sockets is answered");
    assert_eq!(r.status, 200);
    let m = s.app.metrics_text();
    let evicted = sample(
        &m,
        "membrane_http_connections_closed_total{reason=\"evicted\"}",
    );
    assert!(evicted >= Some(16.0), "{m}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_connections_are_closed_after_the_header_timeout() {
    let s = server(|mut h| {
        h.max_connections = 64;
        h.header_timeout = Duration::from_millis(500);
        h
    })
    .await;
    let mut held = silent(s.addr, 16, 8).await;
    for (i, c) in held.iter_mut().enumerate() {
        tokio::time::timeout(GUARD, closed_by_server(c))
            .await
            .unwrap_or_else(|_| panic!("silent connection {i} is still open"));
    }
    let m = s.app.metrics_text();
    let timed_out = sample(
        &m,
        "membrane_http_connections_closed_total{reason=\"first-request-timeout\"}",
    );
    assert_eq!(timed_out, Some(24.0), "{m}");
    assert_eq!(get(s.addr, "/").await.status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http2_connections_carry_a_bounded_number_of_streams() {
    let s = server(|h| h).await;
    let mut c = TcpStream::connect(s.addr).await.unwrap();
    c.write_all(H2_PREFACE).await.unwrap();
    // The server's first frame is its SETTINGS: 9 bytes of header, then 6 bytes per setting.
    let mut head = [0u8; 9];
    c.read_exact(&mut head).await.unwrap();
    assert_eq!(head[3], 0x4, "the server's first frame is SETTINGS");
    let len = u32::from_be_bytes([0, head[0], head[1], head[2]]) as usize;
    let mut body = vec![0u8; len];
    c.read_exact(&mut body).await.unwrap();
    let max_streams = body.chunks(6).find_map(|s| {
        (u16::from_be_bytes([s[0], s[1]]) == 0x3)
            .then(|| u32::from_be_bytes([s[2], s[3], s[4], s[5]]))
    });
    assert_eq!(max_streams, Some(HttpSpec::MAX_STREAMS));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_http2_connection_is_closed() {
    let s = server(|mut h| {
        h.idle_timeout = Duration::from_millis(300);
        h
    })
    .await;
    let stream = TcpStream::connect(s.addr).await.unwrap();
    let (mut sender, conn) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
            .await
            .unwrap();
    let conn = tokio::spawn(conn);
    let r = sender
        .send_request(request("GET", "http://test.local/", Bytes::new()))
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    drop(r);
    // The client keeps the connection (and answers pings); the server ends it.
    tokio::time::timeout(GUARD, conn)
        .await
        .expect("the idle HTTP/2 connection was closed by the server")
        .unwrap()
        .ok();
    let m = s.app.metrics_text();
    let idle = sample(
        &m,
        "membrane_http_connections_closed_total{reason=\"idle\"}",
    );
    assert_eq!(idle, Some(1.0), "{m}");
}

/// A connection from `ip` with a request in flight: POST /echo announcing 10 bytes, sending 5.
async fn busy_from(ip: &str, addr: SocketAddr) -> TcpStream {
    let socket = TcpSocket::new_v4().unwrap();
    socket.bind(format!("{ip}:0").parse().unwrap()).unwrap();
    let mut s = socket.connect(addr).await.unwrap();
    s.write_all(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nhello")
        .await
        .unwrap();
    s
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_address_cannot_take_every_slot() {
    let s = server(|mut h| {
        h.max_connections_per_ip = Some(2);
        h
    })
    .await;
    let mut a = busy_from("127.0.0.2", s.addr).await;
    let _b = busy_from("127.0.0.2", s.addr).await;
    eventually("both requests reached the module", || {
        s.app.status()["m"].busy == 2
    })
    .await;
    // A third from the same address is refused: closed with no answer.
    let socket = TcpSocket::new_v4().unwrap();
    socket.bind("127.0.0.2:0".parse().unwrap()).unwrap();
    let mut third = socket.connect(s.addr).await.unwrap();
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(GUARD, third.read_to_end(&mut answer))
        .await
        .expect("the third connection is closed");
    assert!(answer.is_empty(), "{}", String::from_utf8_lossy(&answer));
    // Another address is served.
    assert_eq!(get(s.addr, "/other").await.status, 200);
    // The address's requests in flight go on.
    a.write_all(b"world").await.unwrap();
    let reply = tokio::time::timeout(GUARD, read_until(&mut a, "helloworld"))
        .await
        .expect("the request in flight is answered");
    assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
    let m = s.app.metrics_text();
    let refused = sample(
        &m,
        "membrane_http_connections_closed_total{reason=\"per-ip\"}",
    );
    assert_eq!(refused, Some(1.0), "{m}");
}
