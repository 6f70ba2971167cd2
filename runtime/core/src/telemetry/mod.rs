//! Traces and logs for OpenTelemetry, without OpenTelemetry: the ids of a request's spans,
//! carried across links, worker processes and NATS hosts, and the records of the spans
//! that ended, queued for an exporter (the `membrane-telemetry` crate sends them over
//! OTLP). Off until [`install`]ed; off, a call pays one atomic load.

pub mod context;
pub mod queue;
pub mod record;
pub mod sampler;

pub use context::{SpanContext, current, enter, scope};
pub use queue::{Signal, dropped, enabled, install};
pub use record::{LogRecord, SpanKind, SpanRecord, Value};
pub use sampler::Sampler;

/// The current span, when telemetry is on: what a call sends to a worker or over NATS.
/// (With telemetry off the request's context is still current, for its log lines, but is
/// not sent.)
#[inline]
pub fn propagated() -> Option<SpanContext> {
    if enabled() { current() } else { None }
}

/// The trace id of the request or call being run, for a log event's `trace_id` field
/// (formatted only if the event is written).
#[inline]
pub fn trace_field() -> Option<tracing::field::DisplayValue<context::TraceHex>> {
    current().map(|c| tracing::field::display(c.trace_hex()))
}

/// A span begun: its context and its parent (id, and whether the parent is in another
/// process).
#[derive(Debug, Clone, Copy)]
pub struct Begun {
    /// The new span.
    pub context: SpanContext,
    /// Its parent.
    pub parent: Option<(u64, bool)>,
    /// When it started.
    pub start: std::time::SystemTime,
}

/// Begins a span under the current one (a new trace when there is none), if telemetry is
/// on.
#[inline]
pub fn begin() -> Option<Begun> {
    if !enabled() {
        return None;
    }
    begin_under(current())
}

/// Begins a span under `parent` (a new trace when `None`).
pub fn begin_under(parent: Option<SpanContext>) -> Option<Begun> {
    let sampler = queue::sampler()?;
    let context = match parent {
        Some(p) => SpanContext {
            sampled: sampler.sampled(p.trace_id, Some(p.sampled)),
            ..p.child()
        },
        None => {
            let root = SpanContext::root(true);
            SpanContext {
                sampled: sampler.sampled(root.trace_id, None),
                ..root
            }
        }
    };
    Some(Begun {
        context,
        parent: parent.map(|p| (p.span_id, p.remote)),
        start: std::time::SystemTime::now(),
    })
}

impl Begun {
    /// Ends the span: queues its record.
    pub fn end(
        self,
        kind: SpanKind,
        name: std::borrow::Cow<'static, str>,
        attributes: Vec<(&'static str, Value)>,
        error: Option<std::borrow::Cow<'static, str>>,
    ) {
        queue::span(SpanRecord {
            context: self.context,
            parent: self.parent,
            kind,
            name,
            start: self.start,
            end: std::time::SystemTime::now(),
            attributes,
            error,
        });
    }
}
