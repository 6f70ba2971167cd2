//! The messages between a host and a worker (`placement = "process"`), after the frame
//! header of `worker/channel.rs`.
//!
//! | tag | direction | body |
//! |---|---|---|
//! | [`CALL`] | host -> worker | time left (u64 ns, LE), trace context (1 byte 0, or 1 and the trace id u128 LE, parent span id u64 LE, sampled 0/1), export name (u16 LE length + UTF-8), arguments |
//! | [`OK`] | worker -> host | results |
//! | [`ERR`] | either | an error as JSON ([`WireError`]) |
//! | [`CALLBACK`] | worker -> host | like [`CALL`]: a linked function (`import#func`) the guest calls |
//! | [`CALLBACK_OK`] | host -> worker | the linked call's results |
//! | [`DROP`] | host -> worker | a resource handle (u32 LE) to drop in the connection's instance |
//! | [`SPAN`] | worker -> host | before a sampled call's answer: the worker's span of it (id u64 LE, start and end in ns since the Unix epoch, u64 LE each) |
//! | [`KV`] | worker -> host | a `wasi:keyvalue` operation of the guest (`wire/keyvalue.rs`) |
//! | [`KV_OK`] | host -> worker | its answer |
//! | [`PROBE`], [`PROBED`] | both | the sandbox self-check (tests) |
//!
//! Arguments and results are component values in the component model's value encoding
//! (`wire/value.rs`), one after another, typed by the function both sides know. How large
//! each message may be, and which ones a host accepts from its worker: `wire/sizes.rs`.

use std::time::Duration;

use super::bounds::{self, Causes, MAX_ERROR_BODY, MAX_NAME, clip};
use crate::error::{Error, ErrorKind, Result};
use crate::telemetry::SpanContext;

/// The largest error either side sends (`wire/sizes.rs`): [`put_error`] keeps an error
/// within the bounds of `wire/bounds.rs`, well below it even with every character escaped.
pub const MAX_ERROR: usize = MAX_ERROR_BODY;

/// A call of an export.
pub const CALL: u8 = 1;
/// A call's results.
pub const OK: u8 = 2;
/// A call's (or a linked call's) error.
pub const ERR: u8 = 3;
/// A linked call from the worker's guest to the host.
pub const CALLBACK: u8 = 4;
/// A linked call's results.
pub const CALLBACK_OK: u8 = 5;
/// Run the sandbox self-check (tests only).
pub const PROBE: u8 = 6;
/// The self-check's findings, as JSON.
pub const PROBED: u8 = 7;
/// Drop a resource of the connection's instance (host -> worker): its handle, u32 LE.
/// Answered with [`OK`] (no results) or [`ERR`].
pub const DROP: u8 = 8;

/// A `wasi:keyvalue` operation of the worker's guest, for the host's store
/// (`wire/keyvalue.rs`).
pub const KV: u8 = 9;
/// The answer to a [`KV`] request.
pub const KV_OK: u8 = 14;

/// The worker's span of a call (worker -> host), sent before the call's answer when the
/// call's trace is sampled.
pub const SPAN: u8 = 15;

/// The start of a [`CALL`] or [`CALLBACK`] body (the arguments follow): the time left, the
/// caller's span, the function.
pub fn put_call(out: &mut Vec<u8>, left: Duration, trace: Option<SpanContext>, name: &str) {
    let ns = u64::try_from(left.as_nanos()).unwrap_or(u64::MAX);
    out.extend_from_slice(&ns.to_le_bytes());
    match trace {
        None => out.push(0),
        Some(t) => {
            out.push(1);
            out.extend_from_slice(&t.trace_id.to_le_bytes());
            out.extend_from_slice(&t.span_id.to_le_bytes());
            out.push(u8::from(t.sampled));
        }
    }
    let len = u16::try_from(name.len()).unwrap_or(u16::MAX);
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(&name.as_bytes()[..len as usize]);
}

/// A call read from its message.
#[derive(Debug)]
pub struct CallHead<'a> {
    /// The time the caller gives it.
    pub left: Duration,
    /// The caller's span, if it sent one.
    pub trace: Option<SpanContext>,
    /// The function.
    pub name: &'a str,
    /// The encoded arguments.
    pub args: &'a [u8],
}

/// Reads a [`CALL`] or [`CALLBACK`] body: the time left, the caller's span, the name and
/// the arguments. A trace context with a zero id or a sampled byte other than 0 and 1 is
/// malformed.
pub fn read_call(body: &[u8]) -> Result<CallHead<'_>> {
    let bad = || malformed("a call message is cut short");
    let ns = u64::from_le_bytes(body.get(..8).ok_or_else(bad)?.try_into().unwrap());
    let (trace, at) = match body.get(8).ok_or_else(bad)? {
        0 => (None, 9),
        1 => {
            let t = body.get(9..34).ok_or_else(bad)?;
            let trace_id = u128::from_le_bytes(t[..16].try_into().unwrap());
            let span_id = u64::from_le_bytes(t[16..24].try_into().unwrap());
            if trace_id == 0 || span_id == 0 || t[24] > 1 {
                return Err(malformed("a call's trace context is not one"));
            }
            let sampled = t[24] == 1;
            (
                Some(SpanContext {
                    trace_id,
                    span_id,
                    sampled,
                    remote: true,
                }),
                34,
            )
        }
        _ => return Err(malformed("a call's trace context is not one")),
    };
    let len =
        u16::from_le_bytes(body.get(at..at + 2).ok_or_else(bad)?.try_into().unwrap()) as usize;
    let name = body.get(at + 2..at + 2 + len).ok_or_else(bad)?;
    let name = std::str::from_utf8(name).map_err(|_| malformed("a function name is not UTF-8"))?;
    Ok(CallHead {
        left: Duration::from_nanos(ns),
        trace,
        name,
        args: &body[at + 2 + len..],
    })
}

/// A [`SPAN`] body: the worker's span id and its start and end (ns since the Unix epoch).
pub fn put_span(out: &mut Vec<u8>, span_id: u64, start: u64, end: u64) {
    for n in [span_id, start, end] {
        out.extend_from_slice(&n.to_le_bytes());
    }
}

/// Reads a [`SPAN`] body; a zero id, an end before the start or a body of another length
/// is malformed.
pub fn read_span(body: &[u8]) -> Result<(u64, u64, u64)> {
    let n = |i: usize| u64::from_le_bytes(body[i * 8..i * 8 + 8].try_into().unwrap());
    if body.len() != 24 || n(0) == 0 || n(2) < n(1) {
        return Err(malformed("a span message is not one"));
    }
    Ok((n(0), n(1), n(2)))
}

/// An error as it crosses: its kind by name and the fields a caller matches on.
#[derive(serde::Serialize, serde::Deserialize)]
pub struct WireError {
    kind: String,
    message: String,
    module: Option<String>,
    export: Option<String>,
    key: Option<String>,
    upstream: bool,
    exit: Option<i32>,
    /// The texts of the error's causes, outermost first.
    #[serde(default)]
    causes: Causes,
}

/// A cause of an error that crossed, as text (the original error types stay on the
/// other side), chained to the next.
#[derive(Debug)]
struct Cause {
    text: String,
    next: Option<Box<Cause>>,
}

impl std::fmt::Display for Cause {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text)
    }
}

impl std::error::Error for Cause {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.next.as_deref().map(|c| c as _)
    }
}

/// Writes `e` as an [`ERR`] body, cut to the bounds a reader keeps (`wire/bounds.rs`).
pub fn put_error(out: &mut Vec<u8>, e: &Error) {
    let mut causes = Vec::new();
    let mut more = 0;
    let mut cur = std::error::Error::source(e);
    while let Some(c) = cur {
        if causes.len() < bounds::MAX_CAUSES {
            causes.push(c.to_string());
        } else {
            more += 1;
        }
        cur = c.source();
    }
    let (message, kept) = bounds::bound(e.message().to_string(), causes, more);
    let name = |n: Option<&str>| n.map(|n| clip(n.to_string(), MAX_NAME));
    let w = WireError {
        kind: e.kind().as_str().to_string(),
        message,
        module: name(e.module()),
        export: name(e.export()),
        key: name(e.key()),
        upstream: e.upstream(),
        exit: e.exit_code(),
        causes: Causes { kept, more: 0 },
    };
    // Serializing plain strings cannot fail.
    let _ = serde_json::to_writer(out, &w);
}

/// Reads an [`ERR`] body back into an error, within the bounds of `wire/bounds.rs`: the
/// other side may be hostile, and the error's text reaches logs and terminals. A body that
/// is not one is itself an error (`crashed`).
pub fn read_error(body: &[u8]) -> Error {
    parse_error(body).unwrap_or_else(|why| malformed(&clip(why, 512)))
}

/// Reads an [`ERR`] or [`FAILED`] body from a side that must send a well-formed one (a
/// worker: a malformed error is a broken protocol); `Err` says what is wrong with it.
pub fn parse_error(body: &[u8]) -> std::result::Result<Error, String> {
    if body.len() > MAX_ERROR_BODY {
        return Err(format!(
            "an error message of {} bytes is larger than {MAX_ERROR_BODY}",
            body.len()
        ));
    }
    let w = serde_json::from_slice::<WireError>(body)
        .map_err(|e| format!("an error message is not valid: {e}"))?;
    let (message, causes) = bounds::bound(w.message, w.causes.kept, w.causes.more);
    let name = |n: Option<String>| n.map(|n| clip(n, MAX_NAME));
    let (module, export, key) = (name(w.module), name(w.export), name(w.key));
    let kind = ErrorKind::from_name(&w.kind).unwrap_or(ErrorKind::Crashed);
    let mut e = match (kind, w.exit) {
        (ErrorKind::Exit, Some(code)) => Error::exit(code, module.as_deref().unwrap_or("")),
        _ => Error::new(kind, message),
    };
    if let Some(m) = module {
        e = e.with_module(m);
    }
    if let Some(x) = export {
        e = e.with_export(x);
    }
    if let Some(k) = key {
        e = e.with_key(k);
    }
    if w.upstream {
        e.set_upstream();
    }
    // Built from the innermost out; at most `MAX_CAUSES` deep, so dropping it (which
    // recurses) is shallow too.
    let chain = causes
        .into_iter()
        .rev()
        .fold(None, |next, text| Some(Box::new(Cause { text, next })));
    if let Some(c) = chain {
        e = e.with_source(c);
    }
    Ok(e)
}

/// The other side (a worker, a remote host) broke the protocol: it is treated as crashed.
pub fn malformed(what: &str) -> Error {
    Error::new(
        ErrorKind::Crashed,
        format!("the other side of the connection broke the protocol: {what}"),
    )
}

/// What the worker must run (host -> worker, on the control socket): a JSON length
/// (u32 LE), the JSON (`worker/hello.rs`), then the serialized compiled component.
pub const HELLO: u8 = 10;
/// The worker locked itself down and is ready (worker -> host): what it applied, as JSON.
pub const READY: u8 = 11;
/// The worker could not start (worker -> host): an error as JSON.
pub const FAILED: u8 = 12;
/// A log event of the worker (worker -> host), as JSON (`worker/log.rs`).
pub const LOG: u8 = 13;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_huge_error_is_shortened_to_fit_and_keeps_its_kind() {
        // Every character of the message and the causes needs a six-byte JSON escape.
        let text = "\u{1}".repeat(1 << 20);
        let mut chain: Option<Box<Cause>> = None;
        for _ in 0..100 {
            chain = Some(Box::new(Cause {
                text: text[..16 << 10].to_string(),
                next: chain,
            }));
        }
        let e = Error::new(ErrorKind::StackOverflow, text.clone())
            .with_module("m".repeat(1 << 20))
            .with_source(chain.unwrap());
        let mut body = Vec::new();
        put_error(&mut body, &e);
        assert!(body.len() <= MAX_ERROR, "{}", body.len());
        let back = parse_error(&body).unwrap();
        assert_eq!(back.kind(), ErrorKind::StackOverflow);
        assert!(
            back.message().ends_with("more bytes cut]"),
            "{}",
            back.message()
        );
        // A small error crosses whole.
        let mut body = Vec::new();
        put_error(
            &mut body,
            &Error::new(ErrorKind::Trap, "boom").with_module("m"),
        );
        let back = parse_error(&body).unwrap();
        assert_eq!((back.message(), back.module()), ("boom", Some("m")));
        assert!(parse_error(b"{not json").is_err());
    }
}
