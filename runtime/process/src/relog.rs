//! What a worker says, logged by the host under the module's name: its log events
//! (`worker/log.rs`) and the lines of its stdout and stderr (`worker/pipes.rs`).
//!
//! The threat model of `placement = "process"` is a compromised worker, so nothing it sends
//! is taken as it is:
//! - every text (a message, field names and values, guest output, a stream's line) is
//!   escaped as guest text is ([`Quoted`]) and comes after the host's own fields (`module`
//!   first), so that it can neither start a line nor pass for a field of the host's;
//! - the target is one of those a worker logs on (`membrane::guest`, `membrane::audit`,
//!   `membrane::limits`, `membrane::worker`); any other becomes `membrane::worker`. An event that is none (not JSON, a level outside the five, a guest
//!   line of no known stream) is dropped and counted;
//! - a budget. During a call: the guest's own (at most [`MAX_LOG_LINES`] guest lines, and
//!   `limits.output` characters of their text) and [`WORKER_EVENTS`] events of the worker's
//!   own. Outside calls (the control socket, the worker's stdout and stderr):
//!   [`OUTSIDE_BURST`] events at once, then [`OUTSIDE_RATE`] a second. What is past the
//!   budget is dropped and counted ([`Relog::dropped`], the module's status), and one
//!   warning on `membrane::limits` says how many.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use tracing::Level;

use super::log::Line;
use crate::limits::output::MAX_LOG_LINES;
use crate::metrics::{Capability, ModuleMetrics};
use crate::sanitize::{Quoted, is_dangerous};

/// One event at a level known only at run time, on a fixed target.
macro_rules! at_level {
    ($level:expr, $target:literal, $($rest:tt)+) => {
        match $level {
            Level::ERROR => tracing::error!(target: $target, $($rest)+),
            Level::WARN => tracing::warn!(target: $target, $($rest)+),
            Level::INFO => tracing::info!(target: $target, $($rest)+),
            Level::DEBUG => tracing::debug!(target: $target, $($rest)+),
            _ => tracing::trace!(target: $target, $($rest)+),
        }
    };
}

/// Events of the worker's own (denials, the limits' reports) one call may produce.
pub(crate) const WORKER_EVENTS: u32 = 100;

/// Events outside calls the host logs at once...
pub(crate) const OUTSIDE_BURST: f64 = 1_000.0;
/// ... and then per second.
pub(crate) const OUTSIDE_RATE: f64 = 100.0;

/// The log of one module's workers, across their restarts.
pub(crate) struct Relog {
    module: Arc<str>,
    metrics: Arc<ModuleMetrics>,
    /// `limits.output`: characters of guest text one call may log.
    output: u64,
    dropped: AtomicU64,
    outside: Mutex<Bucket>,
}

/// The budget outside calls: a token bucket.
struct Bucket {
    tokens: f64,
    at: Instant,
    /// Dropped since the last warning.
    unreported: u64,
}

/// What one call may still log.
pub(crate) struct CallLog {
    guest_lines: u32,
    guest_chars: u64,
    others: u32,
    dropped: u64,
}

/// One event of the worker, checked.
enum Event {
    Guest {
        stream: &'static str,
        text: String,
        cut: Option<u64>,
        repeated: Option<u64>,
    },
    Denied {
        capability: Capability,
        what: String,
    },
    Other {
        target: Target,
        level: Level,
        message: String,
        fields: Vec<(String, String)>,
    },
}

#[derive(Clone, Copy)]
enum Target {
    Audit,
    Limits,
    Worker,
}

impl Relog {
    pub(crate) fn new(module: Arc<str>, metrics: Arc<ModuleMetrics>, output: u64) -> Relog {
        Relog {
            module,
            metrics,
            output,
            dropped: AtomicU64::new(0),
            outside: Mutex::new(Bucket {
                tokens: OUTSIDE_BURST,
                at: Instant::now(),
                unreported: 0,
            }),
        }
    }

    /// Events and lines dropped since the module loaded.
    pub(crate) fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// The budget of a call that starts now.
    pub(crate) fn call(&self) -> CallLog {
        CallLog {
            guest_lines: MAX_LOG_LINES,
            guest_chars: self.output,
            others: WORKER_EVENTS,
            dropped: 0,
        }
    }

    /// A log event the worker sent during a call.
    pub(crate) fn in_call(&self, body: &[u8], call: &mut CallLog) {
        match parse(body) {
            Some(event) if call.take(&event) => self.emit(event),
            _ => call.dropped += 1,
        }
    }

    /// Ends a call's budget: one warning if anything was dropped.
    pub(crate) fn end_call(&self, call: CallLog) {
        if call.dropped == 0 {
            return;
        }
        self.dropped.fetch_add(call.dropped, Ordering::Relaxed);
        let (module, dropped) = (&*self.module, call.dropped);
        guarded(|| {
            tracing::warn!(
                target: "membrane::limits",
                module = %module,
                dropped,
                "log events of the worker past the call's limits were dropped"
            )
        });
    }

    /// A log event the worker sent outside a call.
    pub(crate) fn outside(&self, body: &[u8]) {
        match parse(body) {
            Some(event) if self.admit() => self.emit(event),
            Some(_) => {}
            None => self.drop_outside(),
        }
    }

    /// A line the worker wrote to its stdout or stderr (`cut`: bytes dropped from it).
    pub(crate) fn stream_line(&self, stream: &'static str, line: &[u8], cut: usize) {
        if !self.admit() {
            return;
        }
        let text = String::from_utf8_lossy(line);
        let text = Quoted(text.strip_suffix('\r').unwrap_or(&text));
        let module = &*self.module;
        guarded(|| {
            if cut > 0 {
                tracing::warn!(target: "membrane::worker", module = %module, stream, cut, text = %text);
            } else {
                tracing::warn!(target: "membrane::worker", module = %module, stream, text = %text);
            }
        });
    }

    /// Says how many events outside calls were dropped and not reported yet (when a worker
    /// ends).
    pub(crate) fn flush(&self) {
        let n = std::mem::take(&mut self.bucket().unreported);
        self.report_outside(n);
    }

    fn bucket(&self) -> std::sync::MutexGuard<'_, Bucket> {
        self.outside.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether one more event outside calls may be logged; counts it as dropped when not.
    /// The first event let through after drops is preceded by the warning about them.
    fn admit(&self) -> bool {
        let mut b = self.bucket();
        let now = Instant::now();
        let refill = now.saturating_duration_since(b.at).as_secs_f64() * OUTSIDE_RATE;
        b.tokens = (b.tokens + refill).min(OUTSIDE_BURST);
        b.at = now;
        if b.tokens < 1.0 {
            b.unreported += 1;
            drop(b);
            self.dropped.fetch_add(1, Ordering::Relaxed);
            return false;
        }
        b.tokens -= 1.0;
        let n = std::mem::take(&mut b.unreported);
        drop(b);
        self.report_outside(n);
        true
    }

    fn drop_outside(&self) {
        self.bucket().unreported += 1;
        self.dropped.fetch_add(1, Ordering::Relaxed);
    }

    fn report_outside(&self, dropped: u64) {
        if dropped == 0 {
            return;
        }
        let module = &*self.module;
        guarded(|| {
            tracing::warn!(
                target: "membrane::limits",
                module = %module,
                dropped,
                "log events and output lines of the worker past its rate were dropped"
            )
        });
    }

    fn emit(&self, event: Event) {
        let module = &*self.module;
        let done = guarded(|| match event {
            Event::Guest {
                stream,
                text,
                cut,
                repeated,
            } => {
                let text = Quoted(&text);
                match (cut, repeated) {
                    (Some(cut), _) => {
                        tracing::info!(target: "membrane::guest", module = %module, trace_id = crate::telemetry::trace_field(), stream, cut, text = %text)
                    }
                    (None, Some(repeated)) => {
                        tracing::info!(target: "membrane::guest", module = %module, trace_id = crate::telemetry::trace_field(), stream, repeated, text = %text)
                    }
                    (None, None) => {
                        tracing::info!(target: "membrane::guest", module = %module, trace_id = crate::telemetry::trace_field(), stream, text = %text)
                    }
                }
            }
            // Counted and logged by the host's metrics, as for an in-process module, with
            // the worker's text quoted.
            Event::Denied { capability, what } => self.metrics.denied(capability, &Quoted(&what)),
            Event::Other {
                target,
                level,
                message,
                fields,
            } => {
                let event = Quoted(&message);
                let fields = fields
                    .iter()
                    .map(|(n, v)| format!("{n}={v}"))
                    .collect::<Vec<_>>()
                    .join(" ");
                let fields = Quoted(&fields);
                match target {
                    Target::Audit => {
                        at_level!(level, "membrane::audit", module = %module, event = %event, fields = %fields)
                    }
                    Target::Limits => {
                        at_level!(level, "membrane::limits", module = %module, event = %event, fields = %fields)
                    }
                    Target::Worker => {
                        at_level!(level, "membrane::worker", module = %module, event = %event, fields = %fields)
                    }
                }
            }
        });
        if !done {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// Emits one event; a subscriber that panics (a failed write to a closed stderr) costs the
/// line, not the thread that reads the worker. `false` when it panicked.
fn guarded(emit: impl FnOnce()) -> bool {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(emit)).is_ok()
}

impl CallLog {
    /// Whether `event` fits in what is left; takes its share if so.
    fn take(&mut self, event: &Event) -> bool {
        match event {
            Event::Guest { text, .. } => {
                // Characters, not bytes: the worker's budget counts the guest's raw bytes,
                // and each becomes at most one character (invalid UTF-8 a U+FFFD).
                let chars = text.chars().count() as u64;
                if self.guest_lines == 0 || chars > self.guest_chars {
                    return false;
                }
                self.guest_lines -= 1;
                self.guest_chars -= chars;
                true
            }
            _ => {
                if self.others == 0 {
                    return false;
                }
                self.others -= 1;
                true
            }
        }
    }
}

/// Reads and checks one event; `None` when it is none.
fn parse(body: &[u8]) -> Option<Event> {
    let line: Line = serde_json::from_slice(body).ok()?;
    let level = match line.level {
        0 => Level::ERROR,
        1 => Level::WARN,
        2 => Level::INFO,
        3 => Level::DEBUG,
        4 => Level::TRACE,
        _ => return None,
    };
    let mut fields = line.fields;
    let mut take = |name: &str| {
        let i = fields.iter().position(|(n, _)| n == name)?;
        Some(fields.remove(i).1)
    };
    let target = match line.target.as_str() {
        "membrane::guest" => {
            let stream = match take("stream")?.as_str() {
                "stdout" => "stdout",
                "stderr" => "stderr",
                _ => return None,
            };
            let text = take("text").unwrap_or_default();
            return Some(Event::Guest {
                stream,
                // The worker's forwarder sends the text as the host would log it; what
                // is not exactly that is logged as raw text, escaped.
                text: unquote(&text).unwrap_or(text),
                cut: take("cut").and_then(|c| c.parse().ok()),
                repeated: take("repeated").and_then(|r| r.parse().ok()),
            });
        }
        "membrane::audit" => {
            let capability = match take("capability").as_deref() {
                Some("network") => Some(Capability::Network),
                Some("http") => Some(Capability::Http),
                Some("keyvalue") => Some(Capability::KeyValue),
                _ => None,
            };
            if let (Some(capability), Some(what)) = (capability, take("denied")) {
                return Some(Event::Denied { capability, what });
            }
            Target::Audit
        }
        "membrane::limits" => Target::Limits,
        _ => Target::Worker,
    };
    let message = take("message").unwrap_or_default();
    Some(Event::Other {
        target,
        level,
        message,
        fields,
    })
}

/// The text that [`Quoted`] turns into `quoted`, when `quoted` is written exactly as it
/// writes: in double quotes, with every dangerous character, backslash and quote escaped.
fn unquote(quoted: &str) -> Option<String> {
    let inner = quoted.strip_prefix('"')?.strip_suffix('"')?;
    let mut out = String::with_capacity(inner.len());
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => out.push(match chars.next()? {
                '\\' => '\\',
                '"' => '"',
                'n' => '\n',
                'r' => '\r',
                't' => '\t',
                'u' => {
                    if chars.next()? != '{' {
                        return None;
                    }
                    let mut hex = String::new();
                    loop {
                        match chars.next()? {
                            '}' => break,
                            h => hex.push(h),
                        }
                    }
                    let c = u32::from_str_radix(&hex, 16)
                        .ok()
                        .and_then(char::from_u32)?;
                    if !is_dangerous(c) {
                        return None;
                    }
                    c
                }
                _ => return None,
            }),
            '"' => return None,
            c if is_dangerous(c) => return None,
            c => out.push(c),
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(target: &str, level: u8, fields: &[(&str, &str)]) -> Vec<u8> {
        let line = Line {
            target: target.into(),
            level,
            fields: fields
                .iter()
                .map(|(n, v)| (n.to_string(), v.to_string()))
                .collect(),
        };
        serde_json::to_vec(&line).unwrap()
    }

    fn relog() -> Relog {
        let metrics = crate::metrics::Metrics::new(false).module("m");
        Relog::new("m".into(), metrics, 100)
    }

    #[test]
    fn quoted_text_reads_back_only_when_written_as_quoted_writes_it() {
        for text in ["plain", "a\u{1b}[2J\r\n\t\"q\"\\", "\u{202e}x\u{2028}", ""] {
            let q = Quoted(text).to_string();
            assert_eq!(unquote(&q).as_deref(), Some(text), "{q}");
        }
        for bad in [
            "no quotes",
            "\"raw \u{1b} inside\"",
            "\"a\"b\"",
            "\"\\x\"",
            "\"\\u{41}\"",
            "\"\\u{zz}\"",
            "\"\\u{1b\"",
            "\"dangling\\\"",
        ] {
            assert_eq!(unquote(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn malformed_events_are_none() {
        assert!(parse(b"not json").is_none());
        assert!(parse(&event("membrane::worker", 5, &[])).is_none());
        assert!(parse(&event("membrane::guest", 2, &[("stream", "stdin")])).is_none());
        assert!(parse(&event("membrane::guest", 2, &[("text", "\"x\"")])).is_none());
        assert!(matches!(
            parse(&event("membrane::upgrade", 1, &[("message", "m")])),
            Some(Event::Other {
                target: Target::Worker,
                ..
            })
        ));
    }

    #[test]
    fn a_call_takes_the_guests_budget_and_the_workers_own() {
        let r = relog();
        let mut call = r.call();
        let line = event(
            "membrane::guest",
            2,
            &[("stream", "stdout"), ("text", "ab")],
        );
        for _ in 0..50 {
            r.in_call(&line, &mut call);
        }
        // 100 characters of text: 50 lines of 2.
        assert_eq!(call.dropped, 0);
        r.in_call(&line, &mut call);
        assert_eq!(call.dropped, 1);
        let own = event("membrane::limits", 1, &[("message", "x")]);
        for _ in 0..WORKER_EVENTS + 2 {
            r.in_call(&own, &mut call);
        }
        assert_eq!(call.dropped, 3);
        r.end_call(call);
        assert_eq!(r.dropped(), 3);
    }

    #[test]
    fn outside_calls_a_burst_then_a_rate() {
        let r = relog();
        let line = event("membrane::worker", 2, &[("message", "x")]);
        let begun = Instant::now();
        for _ in 0..(OUTSIDE_BURST as usize) * 3 {
            r.outside(&line);
        }
        let let_through = OUTSIDE_BURST as u64 * 3 - r.dropped();
        let bound = OUTSIDE_BURST + OUTSIDE_RATE * begun.elapsed().as_secs_f64() + 1.0;
        assert!((let_through as f64) <= bound, "{let_through} > {bound}");
        assert!(let_through >= OUTSIDE_BURST as u64);
    }
}
