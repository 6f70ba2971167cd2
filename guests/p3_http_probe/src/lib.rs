//! A `wasi:http/handler@0.3.0` service for the p3 HTTP tests: each path exercises one thing the
//! host must get right (concurrency on one instance, streaming bodies both ways, traps after
//! the head, instance reuse, and the capabilities a p3 guest can ask for).
//!
//! | route                    | answer                                                        |
//! |--------------------------|---------------------------------------------------------------|
//! | `/`                      | 200 `ok`                                                      |
//! | `/sleep?ms=N`            | 200 `slept N` after an async wait of N ms                     |
//! | `/spin`                  | never: loops on the CPU without yielding                      |
//! | `/echo`                  | 200, the request body streamed back chunk by chunk            |
//! | `/big?bytes=N`           | 200, N bytes of `x` in 64 KiB writes                          |
//! | `/trap-after-head`       | 200, body `partial`, then a trap before the body ends         |
//! | `/count`                 | 200, requests this instance has handled, this one included    |
//! | `/inflight?ms=N`         | 200, the most requests seen in flight at once, after N ms     |
//! | `/env?name=X`            | 200 the value of X, or 404                                    |
//! | `/file?path=P`           | 200 the contents of P, or 403 and the error code name         |
//! | `/connect?addr=IP:PORT`  | 200 `connected`, or 403 and the error code name               |
//! | `/fetch?url=U`           | 200 and the upstream status (wasi:http/client), or 502        |
//! | anything else            | 404                                                           |
//!
//! A missing or malformed number, address or URL argument answers 400. Every response is
//! `text/plain`; the bodies the guest makes up end with a newline.

use core::future::Future;
use core::sync::atomic::{AtomicU64, Ordering::SeqCst};
use std::net::SocketAddr;

use wasip3::clocks::monotonic_clock::wait_for;
use wasip3::filesystem::types::{DescriptorFlags, OpenFlags, PathFlags};
use wasip3::http::types::{ErrorCode, Fields, Request, Response, Scheme, Trailers};
use wasip3::sockets::types::{
    IpAddressFamily, IpSocketAddress, Ipv4SocketAddress, Ipv6SocketAddress, TcpSocket,
};
use wasip3::wit_bindgen::{StreamResult, StreamWriter};
use wasip3::{wit_bindgen, wit_future, wit_stream};

/// The size of one read or write of a streamed body.
const CHUNK: usize = 64 * 1024;

/// Requests this instance has handled, the current one included.
static HANDLED: AtomicU64 = AtomicU64::new(0);
/// `/inflight` requests now waiting, and the most seen at once.
static IN_FLIGHT: AtomicU64 = AtomicU64::new(0);
static MAX_IN_FLIGHT: AtomicU64 = AtomicU64::new(0);

type Answer = Result<Response, ErrorCode>;

struct Probe;

impl wasip3::exports::http::handler::Guest for Probe {
    async fn handle(request: Request) -> Answer {
        let handled = HANDLED.fetch_add(1, SeqCst) + 1;
        let target = request.get_path_with_query().unwrap_or_default();
        let (path, query) = target.split_once('?').unwrap_or((&target, ""));
        let arg = |key| param(query, key);
        match path {
            "/" => text(200, "ok\n"),
            "/sleep" => sleep(arg("ms")).await,
            "/spin" => spin(),
            "/echo" => echo(request),
            "/big" => big(arg("bytes")),
            "/trap-after-head" => trap_after_head(),
            "/count" => text(200, format!("{handled}\n")),
            "/inflight" => inflight(arg("ms")).await,
            "/env" => env(arg("name")),
            "/file" => file(arg("path")).await,
            "/open-many" => open_many(arg("path"), arg("n")).await,
            "/connect" => connect(arg("addr")).await,
            "/fetch" => fetch(arg("url")).await,
            _ => text(404, "not found\n"),
        }
    }
}

wasip3::http::service::export!(Probe);

// ---- routes ----

async fn sleep(ms: Option<String>) -> Answer {
    let Some(ms) = number(ms) else {
        return text(400, "ms=N expected\n");
    };
    wait_ms(ms).await;
    text(200, format!("slept {ms}\n"))
}

fn spin() -> ! {
    let mut x: u64 = 0;
    loop {
        x = core::hint::black_box(x.wrapping_add(1));
    }
}

/// Copies the request body to the response body as each chunk arrives; the response's trailers
/// carry the request body's error, if it had one.
fn echo(request: Request) -> Answer {
    let (handled_tx, handled) = wit_future::new(|| Ok(()));
    let (mut input, input_end) = Request::consume_body(request, handled);
    respond(200, move |mut out| async move {
        loop {
            let (status, chunk) = input.read(Vec::with_capacity(CHUNK)).await;
            if status == StreamResult::Dropped {
                break;
            }
            if !chunk.is_empty() && !out.write_all(chunk).await.is_empty() {
                return Ok(None); // the client stopped reading
            }
        }
        drop(handled_tx);
        input_end.await.map(|_trailers| None)
    })
}

fn big(bytes: Option<String>) -> Answer {
    let Some(mut left) = number(bytes) else {
        return text(400, "bytes=N expected\n");
    };
    respond(200, move |mut out| async move {
        while left > 0 {
            let n = left.min(CHUNK as u64);
            if !out.write_all(vec![b'x'; n as usize]).await.is_empty() {
                break; // the client stopped reading
            }
            left -= n;
        }
        Ok(None)
    })
}

fn trap_after_head() -> Answer {
    respond(200, |mut out| async move {
        out.write_all(b"partial".to_vec()).await;
        panic!("trap after the head, before the body ends");
    })
}

async fn inflight(ms: Option<String>) -> Answer {
    let Some(ms) = number(ms) else {
        return text(400, "ms=N expected\n");
    };
    let now = IN_FLIGHT.fetch_add(1, SeqCst) + 1;
    MAX_IN_FLIGHT.fetch_max(now, SeqCst);
    wait_ms(ms).await;
    IN_FLIGHT.fetch_sub(1, SeqCst);
    text(200, format!("{}\n", MAX_IN_FLIGHT.load(SeqCst)))
}

fn env(name: Option<String>) -> Answer {
    let name = name.unwrap_or_default();
    match wasip3::cli::environment::get_environment()
        .into_iter()
        .find(|(key, _)| *key == name)
    {
        Some((_, value)) => text(200, value),
        None => text(404, "not set\n"),
    }
}

/// Opens `path` read-only under the first preopen whose guest path is a prefix of it.
async fn file(path: Option<String>) -> Answer {
    let path = path.unwrap_or_default();
    let preopen = wasip3::filesystem::preopens::get_directories()
        .into_iter()
        .find_map(|(dir, guest)| Some((dir, relative(&path, &guest)?)));
    let Some((dir, rel)) = preopen else {
        return text(403, "no-preopen\n");
    };
    let (follow, read) = (PathFlags::SYMLINK_FOLLOW, DescriptorFlags::READ);
    let opened = match dir.open_at(follow, rel, OpenFlags::empty(), read).await {
        Ok(opened) => opened,
        Err(e) => return text(403, code_name(&e)),
    };
    let (contents, done) = opened.read_via_stream(0);
    let contents = contents.collect().await;
    match done.await {
        Ok(()) => text(200, contents),
        Err(e) => text(403, code_name(&e)),
    }
}

/// Opens `path` `n` times and keeps every descriptor until the end: answers how many opens
/// succeeded and, when one failed, its error code (for the test of `limits.files`).
async fn open_many(path: Option<String>, n: Option<String>) -> Answer {
    let path = path.unwrap_or_default();
    let Some(n) = n.and_then(|n| n.parse::<u32>().ok()) else {
        return text(400, "n=COUNT expected\n");
    };
    let preopen = wasip3::filesystem::preopens::get_directories()
        .into_iter()
        .find_map(|(dir, guest)| Some((dir, relative(&path, &guest)?)));
    let Some((dir, rel)) = preopen else {
        return text(403, "no-preopen\n");
    };
    let mut held = Vec::new();
    for _ in 0..n {
        let opened = dir
            .open_at(
                PathFlags::SYMLINK_FOLLOW,
                rel.clone(),
                OpenFlags::empty(),
                DescriptorFlags::READ,
            )
            .await;
        match opened {
            Ok(d) => held.push(d),
            Err(e) => return text(200, format!("{} {}", held.len(), code_name(&e))),
        }
    }
    text(200, format!("{} ok\n", held.len()))
}

async fn connect(addr: Option<String>) -> Answer {
    let Some(addr) = addr.and_then(|a| a.parse::<SocketAddr>().ok()) else {
        return text(400, "addr=IP:PORT expected\n");
    };
    let (family, remote) = socket_address(addr);
    let connected = match TcpSocket::create(family) {
        Ok(socket) => socket.connect(remote).await,
        Err(e) => Err(e),
    };
    match connected {
        Ok(()) => text(200, "connected\n"),
        Err(e) => text(403, code_name(&e)),
    }
}

/// GETs `url` (`http://authority/path` or `https://...`) with wasi:http/client.
async fn fetch(url: Option<String>) -> Answer {
    let url = url.unwrap_or_default();
    let Some((scheme, rest)) = url.split_once("://") else {
        return text(400, "url=http://... expected\n");
    };
    let scheme = match scheme {
        "http" => Scheme::Http,
        "https" => Scheme::Https,
        other => Scheme::Other(other.into()),
    };
    let (authority, path) = match rest.find('/') {
        Some(i) => rest.split_at(i),
        None => (rest, "/"),
    };
    let (trailers_tx, trailers) = wit_future::new(|| Ok(None));
    drop(trailers_tx);
    let (outgoing, _sent) = Request::new(Fields::new(), None, trailers, None);
    let built = outgoing
        .set_scheme(Some(&scheme))
        .and(outgoing.set_authority(Some(authority)))
        .and(outgoing.set_path_with_query(Some(path)));
    if built.is_err() {
        return text(400, "invalid url\n");
    }
    match wasip3::http::client::send(outgoing).await {
        Ok(upstream) => text(200, format!("{}\n", upstream.get_status_code())),
        Err(e) => text(502, format!("{e:?}\n")),
    }
}

// ---- helpers ----

/// A `text/plain` response with the status and the whole body given.
fn text(status: u16, body: impl Into<Vec<u8>>) -> Answer {
    let body = body.into();
    respond(status, move |mut out| async move {
        out.write_all(body).await;
        Ok(None)
    })
}

/// A `text/plain` response whose body is written by `body`, run as a task of this instance
/// after the head is returned; the trailers resolve to what it returns once the body is closed.
fn respond<F, B>(status: u16, body: F) -> Answer
where
    F: FnOnce(StreamWriter<u8>) -> B,
    B: Future<Output = Result<Option<Trailers>, ErrorCode>> + 'static,
{
    let headers = Fields::from_list(&[("content-type".into(), b"text/plain".to_vec())])
        .map_err(|e| ErrorCode::InternalError(Some(format!("{e:?}"))))?;
    let (out, contents) = wit_stream::new();
    let (trailers_tx, trailers) = wit_future::new(|| Ok(None));
    let (response, _sent) = Response::new(headers, Some(contents), trailers);
    response
        .set_status_code(status)
        .map_err(|()| ErrorCode::InternalError(Some(format!("bad status {status}"))))?;
    let body = body(out); // the writer is dropped, closing the body, when `body` ends
    wit_bindgen::spawn_local(async move {
        let end = body.await;
        trailers_tx.write(end).await.ok();
    });
    Ok(response)
}

/// The value of `key` in a query string (`a=1&b=2`), percent-decoded.
fn param(query: &str, key: &str) -> Option<String> {
    query
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .find(|(k, _)| *k == key)
        .map(|(_, v)| percent_decode(v))
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match (bytes[i], hex_byte(bytes.get(i + 1..i + 3))) {
            (b'%', Some(byte)) => {
                out.push(byte);
                i += 3;
            }
            (byte, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex_byte(digits: Option<&[u8]>) -> Option<u8> {
    u8::from_str_radix(std::str::from_utf8(digits?).ok()?, 16).ok()
}

fn number(arg: Option<String>) -> Option<u64> {
    arg?.parse().ok()
}

async fn wait_ms(ms: u64) {
    wait_for(ms.saturating_mul(1_000_000)).await;
}

/// `path` relative to the preopen at `guest`, if `guest` is a prefix of it ("." for itself).
fn relative(path: &str, guest: &str) -> Option<String> {
    let rest = path.strip_prefix(guest.trim_end_matches('/'))?;
    if !(rest.is_empty() || rest.starts_with('/') || guest.ends_with('/')) {
        return None; // "/data2" is not under "/data"
    }
    let rest = rest.trim_start_matches('/');
    Some(if rest.is_empty() { "." } else { rest }.into())
}

/// The WIT name of an error code's case, from its Debug form: `ErrorCode::NoEntry` -> `no-entry`.
fn code_name(code: &impl core::fmt::Debug) -> String {
    let debug = format!("{code:?}");
    let case = debug.split('(').next().unwrap_or(&debug);
    let case = case.rsplit("::").next().unwrap_or(case);
    let mut name = String::new();
    for (i, c) in case.chars().enumerate() {
        if c.is_ascii_uppercase() && i > 0 {
            name.push('-');
        }
        name.push(c.to_ascii_lowercase());
    }
    name + "\n"
}

fn socket_address(addr: SocketAddr) -> (IpAddressFamily, IpSocketAddress) {
    match addr {
        SocketAddr::V4(a) => {
            let [a0, a1, a2, a3] = a.ip().octets();
            let address = (a0, a1, a2, a3);
            let v4 = Ipv4SocketAddress {
                port: a.port(),
                address,
            };
            (IpAddressFamily::Ipv4, IpSocketAddress::Ipv4(v4))
        }
        SocketAddr::V6(a) => {
            let [s0, s1, s2, s3, s4, s5, s6, s7] = a.ip().segments();
            let v6 = Ipv6SocketAddress {
                port: a.port(),
                flow_info: a.flowinfo(),
                address: (s0, s1, s2, s3, s4, s5, s6, s7),
                scope_id: a.scope_id(),
            };
            (IpAddressFamily::Ipv6, IpSocketAddress::Ipv6(v6))
        }
    }
}
