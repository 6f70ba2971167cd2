//! Log events as OTLP log records: every line a guest writes to its log route
//! (`membrane::guest`) and the host's own warnings and errors (`membrane::*`), with the
//! trace and span ids of the call they were written in. The text is the log's: escaped
//! and budgeted where it was written (`limits.output`, a worker's budgets).

use std::fmt::Write as _;

use membrane_core::telemetry::{self, LogRecord};
use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::layer::{Context, Layer};

/// The `tracing` layer that queues log records for export (nothing when export is off).
#[derive(Debug, Default, Clone, Copy)]
pub struct LogLayer;

/// The most characters of one record's body and of each attribute exported.
const MAX_TEXT: usize = 8 << 10;

impl<S: Subscriber> Layer<S> for LogLayer {
    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        if !telemetry::enabled() {
            return;
        }
        let meta = event.metadata();
        let target = meta.target();
        let guest = target == "membrane::guest";
        if !(guest || (target.starts_with("membrane") && *meta.level() <= Level::WARN)) {
            return;
        }
        let mut fields = Fields::default();
        event.record(&mut fields);
        telemetry::queue::log(LogRecord {
            time: std::time::SystemTime::now(),
            level: *meta.level(),
            target,
            body: fields.body,
            attributes: fields.attributes,
            span: telemetry::current(),
        });
    }
}

#[derive(Default)]
struct Fields {
    body: String,
    attributes: Vec<(&'static str, String)>,
}

fn clip(mut s: String) -> String {
    if s.len() > MAX_TEXT {
        let mut at = MAX_TEXT;
        while !s.is_char_boundary(at) {
            at -= 1;
        }
        s.truncate(at);
    }
    s
}

impl Visit for Fields {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        let mut s = String::new();
        let _ = write!(s, "{value:?}");
        self.put(field, s);
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        self.put(field, value.to_owned());
    }
}

impl Fields {
    fn put(&mut self, field: &Field, value: String) {
        let value = clip(value);
        match field.name() {
            // A guest's line is its `text`; a host event's, its message.
            "message" if self.body.is_empty() => self.body = value,
            "text" => {
                if !self.body.is_empty() {
                    let message = std::mem::replace(&mut self.body, value);
                    self.attributes.push(("message", message));
                } else {
                    self.body = value;
                }
            }
            name if self.attributes.len() < 32 => self.attributes.push((name, value)),
            _ => {}
        }
    }
}
