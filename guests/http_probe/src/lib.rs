//! The test guest of `membrane serve`: what it does is chosen by the request's path, so one
//! component can exercise every limit, grant and failure of a served module.
//!
//! | path | behaviour |
//! |---|---|
//! | `/echo` | reads the whole body and answers it; 400 `body error` when the body stream fails |
//! | `/trap` | panics before answering |
//! | `/spin` | loops forever before answering |
//! | `/spin-after-head` | sends a 200 head and `started\n`, then loops forever |
//! | `/big?n=BYTES` | streams BYTES bytes of `x` in 4 KiB writes, from one 4 KiB buffer |
//! | `/sleep?ms=N` | sleeps N ms (a WASI clock wait), then answers `slept N` |
//! | `/fetch?url=URL` | GETs URL with `wasi:http/outgoing-handler`; 200 `status=S\n<body>`, or 502 `error=<code>` |
//! | `/connect?addr=IP:PORT` | opens a TCP connection; 200 `connected` or 502 `error=<code>` |
//! | `/headers` | answers the request's headers, one `name: value` line each, sorted by name |
//! | `/respond-header?hex=HEX` | answers `ok` with the header `x-probe` and the trailer `x-probe-trailer` set to the bytes HEX spells; 500 `refused` when wasi:http refuses the value |
//! | anything else | `<NAME> <METHOD> <path>`, NAME from the environment (default `probe`) |

use wasip2::exports::http::incoming_handler::Guest;
use wasip2::http::types::{
    Fields, IncomingRequest, Method, OutgoingBody, OutgoingRequest, OutgoingResponse,
    ResponseOutparam, Scheme,
};

struct Probe;

fn param<'a>(query: &'a str, name: &str) -> Option<&'a str> {
    query
        .split('&')
        .find_map(|kv| kv.strip_prefix(name)?.strip_prefix('='))
}

/// Sends a head with `status`, then `body` in writes of at most 4 KiB, then finishes.
fn respond(out: ResponseOutparam, status: u16, body: &[u8]) {
    let Some(body_out) = head(out, status) else {
        return;
    };
    if let Ok(stream) = body_out.write() {
        // blocking-write-and-flush takes at most 4096 bytes at a time.
        for chunk in body.chunks(4096) {
            if stream.blocking_write_and_flush(chunk).is_err() {
                return;
            }
        }
    }
    let _ = OutgoingBody::finish(body_out, None);
}

fn head(out: ResponseOutparam, status: u16) -> Option<OutgoingBody> {
    let headers = Fields::new();
    let _ = headers.append("content-type", b"text/plain");
    let response = OutgoingResponse::new(headers);
    let _ = response.set_status_code(status);
    let body = response.body().ok()?;
    ResponseOutparam::set(out, Ok(response));
    Some(body)
}

fn read_body(request: &IncomingRequest) -> Result<Vec<u8>, ()> {
    let body = request.consume()?;
    let mut data = Vec::new();
    {
        let stream = body.stream()?;
        loop {
            match stream.blocking_read(64 << 10) {
                Ok(chunk) => data.extend_from_slice(&chunk),
                Err(wasip2::io::streams::StreamError::Closed) => break,
                Err(_) => return Err(()),
            }
        }
    }
    Ok(data)
}

fn fetch(url: &str) -> Result<(u16, Vec<u8>), String> {
    let (scheme, rest) = match url.split_once("://") {
        Some(("https", rest)) => (Scheme::Https, rest),
        Some(("http", rest)) => (Scheme::Http, rest),
        _ => return Err(format!("bad url {url}")),
    };
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let req = OutgoingRequest::new(Fields::new());
    let _ = req.set_method(&Method::Get);
    let _ = req.set_scheme(Some(&scheme));
    let _ = req.set_authority(Some(authority));
    let _ = req.set_path_with_query(Some(path));
    let future = wasip2::http::outgoing_handler::handle(req, None).map_err(|e| format!("{e:?}"))?;
    future.subscribe().block();
    let response = match future.get() {
        Some(Ok(Ok(r))) => r,
        Some(Ok(Err(e))) => return Err(format!("{e:?}")),
        other => return Err(format!("{other:?}")),
    };
    let status = response.status();
    let body = response.consume().map_err(|_| "no body".to_string())?;
    let mut data = Vec::new();
    {
        let stream = body.stream().map_err(|_| "no stream".to_string())?;
        loop {
            match stream.blocking_read(64 << 10) {
                Ok(chunk) => data.extend_from_slice(&chunk),
                Err(wasip2::io::streams::StreamError::Closed) => break,
                // A body cut short upstream fails the fetch, with the code the host gives.
                Err(wasip2::io::streams::StreamError::LastOperationFailed(e)) => {
                    return Err(match wasip2::http::types::http_error_code(&e) {
                        Some(code) => format!("{code:?}"),
                        None => e.to_debug_string(),
                    });
                }
            }
        }
    }
    Ok((status, data))
}

fn connect(addr: &str) -> Result<(), String> {
    use wasip2::sockets::network::{IpAddressFamily, IpSocketAddress, Ipv4SocketAddress};
    let addr: std::net::SocketAddrV4 = addr.parse().map_err(|e| format!("{e}"))?;
    let socket = wasip2::sockets::tcp_create_socket::create_tcp_socket(IpAddressFamily::Ipv4)
        .map_err(|e| format!("{e:?}"))?;
    let network = wasip2::sockets::instance_network::instance_network();
    let o = addr.ip().octets();
    let remote = IpSocketAddress::Ipv4(Ipv4SocketAddress {
        port: addr.port(),
        address: (o[0], o[1], o[2], o[3]),
    });
    socket
        .start_connect(&network, remote)
        .map_err(|e| format!("{e:?}"))?;
    loop {
        match socket.finish_connect() {
            Ok(_) => return Ok(()),
            Err(wasip2::sockets::network::ErrorCode::WouldBlock) => socket.subscribe().block(),
            Err(e) => return Err(format!("{e:?}")),
        }
    }
}

/// The bytes that pairs of hex digits spell (nothing for anything else).
fn unhex(text: &str) -> Vec<u8> {
    let digits = text.as_bytes();
    if digits.len() % 2 != 0 {
        return Vec::new();
    }
    digits
        .chunks_exact(2)
        .map_while(|pair| u8::from_str_radix(std::str::from_utf8(pair).ok()?, 16).ok())
        .collect()
}

/// Answers `ok` with `value` as the header `x-probe` and the trailer `x-probe-trailer`.
fn respond_header(out: ResponseOutparam, value: &[u8]) {
    let headers = Fields::new();
    if headers.append("x-probe", value).is_err() {
        return respond(out, 500, b"refused");
    }
    let response = OutgoingResponse::new(headers);
    let Ok(body) = response.body() else { return };
    ResponseOutparam::set(out, Ok(response));
    if let Ok(stream) = body.write() {
        let _ = stream.blocking_write_and_flush(b"ok");
    }
    let trailers = Fields::new();
    let _ = trailers.append("x-probe-trailer", value);
    let _ = OutgoingBody::finish(body, Some(trailers));
}

impl Guest for Probe {
    fn handle(request: IncomingRequest, out: ResponseOutparam) {
        let full = request.path_with_query().unwrap_or_default();
        let (path, query) = full.split_once('?').unwrap_or((&full, ""));
        match path {
            "/echo" => match read_body(&request) {
                Ok(data) => respond(out, 200, &data),
                Err(()) => respond(out, 400, b"body error"),
            },
            "/trap" => panic!("the probe was asked to trap"),
            "/spin" => loop {
                std::hint::black_box(0);
            },
            "/spin-after-head" => {
                let Some(body) = head(out, 200) else { return };
                if let Ok(stream) = body.write() {
                    let _ = stream.blocking_write_and_flush(b"started\n");
                }
                loop {
                    std::hint::black_box(&body);
                }
            }
            "/big" => {
                let n: u64 = param(query, "n").and_then(|n| n.parse().ok()).unwrap_or(0);
                let Some(body) = head(out, 200) else { return };
                if let Ok(stream) = body.write() {
                    // One 4 KiB buffer written again and again: the guest's memory does not
                    // grow with n, and each write waits for the client to take the last.
                    let chunk = [b'x'; 4096];
                    let mut left = n;
                    while left > 0 {
                        let len = left.min(chunk.len() as u64) as usize;
                        if stream.blocking_write_and_flush(&chunk[..len]).is_err() {
                            return;
                        }
                        left -= len as u64;
                    }
                }
                let _ = OutgoingBody::finish(body, None);
            }
            "/sleep" => {
                let ms: u64 = param(query, "ms").and_then(|n| n.parse().ok()).unwrap_or(0);
                wasip2::clocks::monotonic_clock::subscribe_duration(ms * 1_000_000).block();
                respond(out, 200, format!("slept {ms}\n").as_bytes());
            }
            "/fetch" => match fetch(param(query, "url").unwrap_or("")) {
                Ok((status, body)) => {
                    let mut text = format!("status={status}\n").into_bytes();
                    text.extend_from_slice(&body);
                    respond(out, 200, &text);
                }
                Err(e) => respond(out, 502, format!("error={e}").as_bytes()),
            },
            "/connect" => match connect(param(query, "addr").unwrap_or("")) {
                Ok(()) => respond(out, 200, b"connected"),
                Err(e) => respond(out, 502, format!("error={e}").as_bytes()),
            },
            "/respond-header" => respond_header(out, &unhex(param(query, "hex").unwrap_or(""))),
            "/headers" => {
                let mut entries = request.headers().entries();
                // By name only (stable, so repeated headers keep their order).
                entries.sort_by(|a, b| a.0.cmp(&b.0));
                let lines: String = entries
                    .iter()
                    .map(|(k, v)| format!("{k}: {}\n", String::from_utf8_lossy(v)))
                    .collect();
                respond(out, 200, lines.as_bytes());
            }
            _ => {
                let name = wasip2::cli::environment::get_environment()
                    .into_iter()
                    .find(|(k, _)| k == "NAME")
                    .map_or_else(|| "probe".to_string(), |(_, v)| v);
                let method = match request.method() {
                    Method::Get => "GET".to_string(),
                    Method::Head => "HEAD".to_string(),
                    Method::Post => "POST".to_string(),
                    Method::Put => "PUT".to_string(),
                    Method::Delete => "DELETE".to_string(),
                    Method::Connect => "CONNECT".to_string(),
                    Method::Options => "OPTIONS".to_string(),
                    Method::Trace => "TRACE".to_string(),
                    Method::Patch => "PATCH".to_string(),
                    Method::Other(m) => m,
                };
                respond(out, 200, format!("{name} {method} {full}\n").as_bytes());
            }
        }
    }
}

wasip2::http::proxy::export!(Probe);
