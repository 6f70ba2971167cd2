//! A compromised worker process: a real program that the host starts as a `process` module's
//! worker (through a small script, see [`script`]) and that speaks the real protocol on the
//! real sockets, with hostile frames, floods and raw output. Each start of the program in
//! one test counts itself (files in a directory of the test), so that a case can misbehave
//! differently on each start and behave honestly once it has shown what it wanted.
//!
//! The frames are written by hand here, from the protocol's description in
//! `runtime/core/src/wire/message.rs` and `runtime/process/src/channel.rs`: a `u32` LE length
//! (tag and body), a tag byte, the body.

use std::io::{Read, Write};
use std::os::fd::FromRawFd;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};

use membrane::process::ring::RingStream;

/// The case the fake worker plays.
const CASE_ENV: &str = "MEMBRANE_TEST_FAKE_WORKER";
/// The directory where its starts are counted.
const DIR_ENV: &str = "MEMBRANE_TEST_FAKE_DIR";

pub const CALL: u8 = 1;
pub const OK: u8 = 2;
pub const ERR: u8 = 3;
pub const HELLO: u8 = 10;
pub const READY: u8 = 11;
pub const LOG: u8 = 13;
pub const KV: u8 = 9;
pub const SPAN: u8 = 15;

/// Guest-target log frames a flood sends during a call...
pub const FLOOD: usize = 200_000;
/// ... and on the control socket, outside calls (20 times the host's burst there).
pub const FLOOD_OUTSIDE: usize = 20_000;
/// Lines a flood writes to the worker's stderr.
pub const FLOOD_LINES: usize = 5_000;

/// Writes an executable script that starts this test binary as the fake worker of `case`,
/// counting its starts in `dir`. The host clears a worker's environment, so the script
/// sets what the fake worker needs.
pub fn script(dir: &Path, case: &str) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let exe = std::env::current_exe().expect("the test binary");
    let path = dir.join(format!("fake-worker-{case}.sh"));
    let text = format!(
        "#!/bin/sh\nexport {CASE_ENV}={case}\nexport {DIR_ENV}='{}'\n\
         exec '{}' --exact hostile::fake_worker::entry --ignored --nocapture --test-threads=1 -q\n",
        dir.display(),
        exe.display()
    );
    std::fs::write(&path, text).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path
}

#[test]
#[ignore = "the entry point of the fake worker process that hostile::worker starts"]
fn entry() {
    let (Ok(case), Some(dir)) = (std::env::var(CASE_ENV), std::env::var_os(DIR_ENV)) else {
        return;
    };
    let start = next_start(Path::new(&dir));
    // SAFETY: the host passes its control socket as fd 3 and the socket that carries each
    // call's connection as fd 4, for the worker to own.
    let control = unsafe { UnixStream::from_raw_fd(3) };
    let fdpass = unsafe { UnixStream::from_raw_fd(4) };
    run(&case, start, control, fdpass);
    std::process::exit(0);
}

/// This start's number, from 1: the first file name not taken yet.
fn next_start(dir: &Path) -> u32 {
    (1..)
        .find(|n| {
            std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(dir.join(format!("start-{n}")))
                .is_ok()
        })
        .unwrap()
}

/// A frame's bytes.
pub fn frame(tag: u8, body: &[u8]) -> Vec<u8> {
    let mut out = ((body.len() + 1) as u32).to_le_bytes().to_vec();
    out.push(tag);
    out.extend_from_slice(body);
    out
}

/// A frame header announcing `len` bytes of body that may never come.
fn header(tag: u8, len: usize) -> Vec<u8> {
    let mut out = ((len + 1) as u32).to_le_bytes().to_vec();
    out.push(tag);
    out
}

/// The body of a log event as the worker's forwarder writes it.
pub fn event(target: &str, level: u8, fields: &[(&str, &str)]) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({
        "target": target,
        "level": level,
        "fields": fields,
    }))
    .unwrap()
}

fn read_frame(s: &mut impl Read) -> Option<(u8, Vec<u8>)> {
    let mut head = [0u8; 5];
    s.read_exact(&mut head).ok()?;
    let len = u32::from_le_bytes(head[..4].try_into().unwrap()) as usize;
    let mut body = vec![0; len.checked_sub(1)?];
    s.read_exact(&mut body).ok()?;
    Some((head[4], body))
}

fn send(s: &mut impl Write, bytes: &[u8]) {
    // The host may have hung up on purpose (a refused frame): then this start is over.
    if s.write_all(bytes).is_err() {
        std::process::exit(0);
    }
}

/// Writes raw bytes to one of the process's own descriptors (1 or 2), bypassing the test
/// harness's capture.
fn raw(fd: i32, bytes: &[u8]) {
    // SAFETY: 1 and 2 are open for the life of the process; the borrow ends here.
    let fd = unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) };
    let mut rest = bytes;
    while !rest.is_empty() {
        match rustix::io::write(fd, rest) {
            Ok(n) => rest = &rest[n..],
            Err(_) => return,
        }
    }
}

/// The next call connection the host passes over fd 4: its socket and its rings' memfd.
fn accept(fdpass: &UnixStream) -> Option<RingStream> {
    let mut byte = [0u8; 1];
    let mut space = [std::mem::MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(2))];
    let mut control = rustix::net::RecvAncillaryBuffer::new(&mut space);
    let got = rustix::net::recvmsg(
        fdpass,
        &mut [std::io::IoSliceMut::new(&mut byte)],
        &mut control,
        rustix::net::RecvFlags::CMSG_CLOEXEC,
    )
    .ok()?;
    if got.bytes == 0 {
        return None;
    }
    let mut fds = control.drain().find_map(|m| match m {
        rustix::net::RecvAncillaryMessage::ScmRights(fds) => Some(fds),
        _ => None,
    })?;
    let (sock, memfd) = (fds.next()?, fds.next()?);
    RingStream::open(sock, memfd).ok()
}

fn uleb(mut n: u64) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let b = (n & 0x7f) as u8;
        n >>= 7;
        if n == 0 {
            out.push(b);
            return out;
        }
        out.push(b | 0x80);
    }
}

/// The honest answer to a call of `caps#length(string) -> u64`, the only export the tests
/// call: the string's length in bytes.
fn honest_answer(call: &[u8]) -> Vec<u8> {
    // The time left (8 bytes), the caller's span (a 0, or a 1 and 25 bytes), the name.
    let at = if call[8] == 0 { 9 } else { 34 };
    let name_len = u16::from_le_bytes([call[at], call[at + 1]]) as usize;
    let mut args = &call[at + 2 + name_len..];
    let mut len = 0u64;
    let mut shift = 0;
    while let Some((&b, rest)) = args.split_first() {
        args = rest;
        len |= u64::from(b & 0x7f) << shift;
        shift += 7;
        if b & 0x80 == 0 {
            break;
        }
    }
    frame(OK, &uleb(len))
}

/// What a start does on a call connection: `None` answers honestly; `Some(bytes)` sends
/// those bytes instead and then waits, never answering.
type OnCall = Box<dyn Fn(&mut RingStream, &mut UnixStream) -> Option<()> + Send + Sync>;

fn run(case: &str, start: u32, mut control: UnixStream, fdpass: UnixStream) {
    let Some((HELLO, _)) = read_frame(&mut control) else {
        return;
    };
    // Two cases have things to say before they are ready; the others are ready at once.
    if !matches!((case, start), ("forged", 1) | ("flood", 1)) {
        send(&mut control, &frame(READY, b"{}"));
    }
    let on_call: OnCall = match (case, start) {
        ("forged", 1) => {
            forged_before_ready(&mut control);
            Box::new(|conn, _| {
                for body in forged_events() {
                    send(conn, &frame(LOG, &body));
                }
                None
            })
        }
        ("flood", 1) => {
            send(&mut control, &frame(READY, b"{}"));
            flood(&mut control, FLOOD_OUTSIDE, "flood-control", false);
            raw(2, "flood-stderr\n".repeat(FLOOD_LINES).as_bytes());
            Box::new(|conn, _| {
                flood(conn, FLOOD, "flood-call", true);
                None
            })
        }
        // The issue's attack: a header announcing 64 MiB, then 1 KB.
        ("oversized", 1) => never_answer(|conn, _| {
            send(conn, &header(LOG, 64 << 20));
            send(conn, &[b'x'; 1024]);
        }),
        ("oversized", 2) => never_answer(|_, control| {
            send(control, &header(LOG, 64 << 20));
            send(control, &[b'x'; 1024]);
        }),
        // Within what results may be (32 MiB), but only 1 KB comes.
        ("oversized", 3) => never_answer(|conn, _| {
            send(conn, &header(OK, 32 << 20));
            send(conn, &[0u8; 1024]);
        }),
        // Results of `caps#list-dir` (`result<list<string>, string>`) that are legal and
        // within the frame's bound: 30 MiB of empty strings, each a byte on the wire and a
        // 32-byte value in the host. Then an honest answer.
        ("amplified", 1) => never_answer(|conn, _| {
            let n = 30 << 20;
            let mut body = vec![0u8];
            body.extend(uleb(n as u64));
            body.resize(body.len() + n, 0);
            send(conn, &frame(OK, &body));
        }),
        // wasi:keyvalue requests (runtime/core/src/wire/keyvalue.rs) past the module's
        // grants (it may read `notes`), then one that is not a request.
        ("keyvalue", 1) => never_answer(|conn, _| {
            send(conn, &frame(KV, &kv_request(3, "notes", "k", Some(b"v"))));
        }),
        ("keyvalue", 2) => never_answer(|conn, _| {
            send(conn, &frame(KV, &kv_request(1, "secret", "k", None)));
        }),
        ("keyvalue", 3) => never_answer(|conn, _| send(conn, &frame(KV, &[1, 0xff]))),
        ("garbage", 1) => never_answer(|conn, _| send(conn, &frame(0xee, b"unknown"))),
        ("garbage", 2) => never_answer(|conn, _| send(conn, &0u32.to_le_bytes())),
        ("garbage", 3) => never_answer(|conn, _| send(conn, &frame(OK, &[0x80; 11]))),
        ("garbage", 4) => never_answer(|conn, _| send(conn, &frame(ERR, b"{not json"))),
        // A span of the call that is not one: span id 0, and it ends before it starts.
        ("garbage", 6) => never_answer(|conn, _| {
            let mut body = vec![0u8; 8];
            body.extend(5u64.to_le_bytes());
            body.extend(1u64.to_le_bytes());
            send(conn, &frame(SPAN, &body))
        }),
        // The shared memory itself: a ring index no honest worker writes.
        ("ring", 1) => never_answer(|conn, _| {
            let _ = conn.corrupt();
        }),
        ("garbage", 5) => never_answer(|_, control| {
            send(control, &frame(LOG, b"not json\x1b[2J"));
            send(control, &frame(CALL, b"a call, from the worker"));
        }),
        _ => Box::new(|_, _| None),
    };
    serve(control, fdpass, on_call);
}

/// `n` guest-line events whose text starts with `text` (in quotes, as the worker's own
/// forwarder sends a guest's text, when `quoted`), written in large pieces.
fn flood(s: &mut impl Write, n: usize, text: &str, quoted: bool) {
    let q = if quoted { r#"\""# } else { "" };
    let mut out = Vec::with_capacity(1 << 20);
    for i in 0..n {
        let body = format!(
            r#"{{"target":"membrane::guest","level":2,"fields":[["stream","stdout"],["text","{q}{text} {i}{q}"]]}}"#
        );
        out.extend_from_slice(&frame(LOG, body.as_bytes()));
        if out.len() > (1 << 20) - 256 || i + 1 == n {
            send(s, &out);
            out.clear();
        }
    }
}

/// A key-value request: op, bucket, key and (for a set) the value, each length-prefixed.
fn kv_request(op: u8, bucket: &str, key: &str, value: Option<&[u8]>) -> Vec<u8> {
    let mut out = vec![op];
    for field in [bucket.as_bytes(), key.as_bytes()].into_iter().chain(value) {
        out.extend_from_slice(&(field.len() as u32).to_le_bytes());
        out.extend_from_slice(field);
    }
    out
}

/// A start that does `f` on its first call and then never answers.
fn never_answer(f: impl Fn(&mut RingStream, &mut UnixStream) + Send + Sync + 'static) -> OnCall {
    Box::new(move |conn, control| {
        f(conn, control);
        Some(())
    })
}

/// Serves calls until the host goes away: each connection on a thread of its own.
fn serve(control: UnixStream, fdpass: UnixStream, on_call: OnCall) {
    let on_call = std::sync::Arc::new(on_call);
    let watch = control.try_clone().unwrap();
    // The host closes the control socket to end the worker.
    std::thread::spawn(move || {
        let mut watch = watch;
        let mut byte = [0u8; 1];
        while matches!(watch.read(&mut byte), Ok(n) if n > 0) {}
        std::process::exit(0);
    });
    while let Some(mut conn) = accept(&fdpass) {
        let on_call = on_call.clone();
        let mut control = control.try_clone().unwrap();
        std::thread::spawn(move || {
            while let Some((tag, body)) = read_frame(&mut conn) {
                if tag != CALL {
                    return;
                }
                if on_call(&mut conn, &mut control).is_some() {
                    // Hold the connection open, saying nothing more.
                    let mut rest = Vec::new();
                    let _ = conn.read_to_end(&mut rest);
                    return;
                }
                send(&mut conn, &honest_answer(&body));
            }
        });
    }
}

/// Raw bytes on stdout and stderr and forged events on the control socket, before the
/// worker says it is ready.
fn forged_before_ready(control: &mut UnixStream) {
    raw(
        1,
        b"PWNED-STDOUT \x1b]0;owned\x07\r\nINFO membrane::guest: module=other text=\"forged\"\n",
    );
    raw(
        2,
        b"PWNED-STDERR \x1b[2J\x1b[31m\nWARN membrane::upgrade: module=other forged stderr\n",
    );
    let upgrade = event(
        "membrane::upgrade",
        1,
        &[
            (
                "message",
                "reload accepted\nINFO membrane::upgrade: module=other forged-control\x1b[31m",
            ),
            ("module", "other"),
        ],
    );
    send(control, &frame(LOG, &upgrade));
    send(control, &frame(READY, b"{}"));
}

/// Forged events sent on a call's connection before its honest answer.
fn forged_events() -> Vec<Vec<u8>> {
    vec![
        // Guest output whose text would start a line of its own and clear the screen.
        event(
            "membrane::guest",
            2,
            &[
                ("stream", "stdout"),
                (
                    "text",
                    "raw\nINFO membrane::guest: module=other text=\"forged-guest\"\x1b[2J",
                ),
            ],
        ),
        // Quoted as the worker's own forwarder quotes, with raw controls inside the quotes.
        event(
            "membrane::guest",
            2,
            &[
                ("stream", "stdout"),
                ("text", "\"quoted\x1b[2J\u{202e}forged-quoted\""),
            ],
        ),
        // A made-up stream name and a number that is none.
        event(
            "membrane::guest",
            2,
            &[
                ("stream", "stdin\nforged-stream"),
                ("text", "\"x\""),
                ("cut", "lots"),
            ],
        ),
        // Field names and values with controls and separators, at error level.
        event(
            "membrane::worker",
            0,
            &[
                (
                    "message",
                    "worker says\nERROR membrane: forged-message\u{202e}",
                ),
                ("na\x1bme\nINFO forged-name", "v\u{2028}al"),
                ("module", "other"),
            ],
        ),
        // A denial whose text carries a line of its own.
        event(
            "membrane::audit",
            2,
            &[
                ("capability", "network"),
                (
                    "denied",
                    "1.2.3.4:80\nINFO membrane::audit: forged-denial module=other",
                ),
            ],
        ),
        // A target the worker has no business logging on, with controls in it.
        event(
            "membrane::upgrade\x1b[2J",
            1,
            &[("message", "forged-target")],
        ),
        // A level that does not exist, and a body that is no event at all.
        event("membrane::worker", 77, &[("message", "forged-level")]),
        b"not json\x1b[2J\nINFO forged-body".to_vec(),
    ]
}
