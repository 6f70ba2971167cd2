//! What is exported: finished spans and log records, in Membrane's own terms (the exporter
//! turns them into OpenTelemetry's).

use std::borrow::Cow;
use std::sync::Arc;
use std::time::SystemTime;

use super::context::SpanContext;

/// The OpenTelemetry span kinds Membrane uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpanKind {
    /// Answers a request: an HTTP request, a module's call run here.
    Server,
    /// Sends a call elsewhere: to a worker process or over NATS.
    Client,
}

/// A value of an attribute.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// Text.
    Str(Cow<'static, str>),
    /// Shared text (a module's name).
    Shared(Arc<str>),
    /// An integer.
    Int(i64),
}

impl From<&'static str> for Value {
    fn from(s: &'static str) -> Value {
        Value::Str(Cow::Borrowed(s))
    }
}

impl From<String> for Value {
    fn from(s: String) -> Value {
        Value::Str(Cow::Owned(s))
    }
}

impl From<Arc<str>> for Value {
    fn from(s: Arc<str>) -> Value {
        Value::Shared(s)
    }
}

impl From<i64> for Value {
    fn from(n: i64) -> Value {
        Value::Int(n)
    }
}

impl Value {
    /// The value as text, when it is text.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Str(s) => Some(s),
            Value::Shared(s) => Some(s),
            Value::Int(_) => None,
        }
    }
}

/// A span that ended.
#[derive(Debug, Clone)]
pub struct SpanRecord {
    /// The span and its trace.
    pub context: SpanContext,
    /// The parent span, and whether it lives in another process.
    pub parent: Option<(u64, bool)>,
    /// Its kind.
    pub kind: SpanKind,
    /// Its name (`GET /api`, `module/function`).
    pub name: Cow<'static, str>,
    /// When it started.
    pub start: SystemTime,
    /// When it ended.
    pub end: SystemTime,
    /// Its attributes, OpenTelemetry's semantic conventions and `membrane.*`.
    pub attributes: Vec<(&'static str, Value)>,
    /// Why it failed (the error kind, or an HTTP status), if it did.
    pub error: Option<Cow<'static, str>>,
}

impl SpanRecord {
    /// The value of attribute `key`.
    pub fn attribute(&self, key: &str) -> Option<&Value> {
        self.attributes
            .iter()
            .find_map(|(k, v)| (*k == key).then_some(v))
    }
}

/// A log line (a guest's output, or an event of the host) to export.
#[derive(Debug, Clone)]
pub struct LogRecord {
    /// When it was written.
    pub time: SystemTime,
    /// `tracing`'s level: ERROR, WARN, INFO, DEBUG, TRACE.
    pub level: tracing::Level,
    /// Where it comes from (`membrane::guest`, `membrane::audit`, ...).
    pub target: &'static str,
    /// The text (a guest's line, escaped as in the log).
    pub body: String,
    /// Its fields (`module`, `stream`, ...), escaped.
    pub attributes: Vec<(&'static str, String)>,
    /// The span it was written in, if any.
    pub span: Option<SpanContext>,
}
