//! The worker's log events, carried to the host: guest output lines (`membrane::guest`),
//! audited denials (`membrane::audit`), the limits' reports (`membrane::limits`) and the
//! worker's own events (`membrane::worker`). The host logs them under the module's name,
//! as what they are: claims of a process it does not trust (`worker/relog.rs`).

use std::fmt::Write as _;
use std::sync::{Arc, Mutex};

use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Level, Metadata, Subscriber};

use super::channel::Channel;
use crate::wire::message::LOG;
use crate::wire::sizes::MAX_LOG;

/// One event as it crosses: JSON of at most [`MAX_LOG`] bytes.
#[derive(serde::Serialize, serde::Deserialize, Default)]
pub(crate) struct Line {
    pub(crate) target: String,
    /// 0 error, 1 warn, 2 info, 3 debug, 4 trace.
    pub(crate) level: u8,
    pub(crate) fields: Vec<(String, String)>,
}

impl Line {
    /// The event as it crosses: shortened when it would not fit in [`MAX_LOG`] (a guest's
    /// line always fits: at most `MAX_LINE` bytes, six bytes of escape each at worst).
    fn body(&mut self) -> Option<Vec<u8>> {
        let body = serde_json::to_vec(self).ok()?;
        if body.len() <= MAX_LOG {
            return Some(body);
        }
        // 8 fields of 1 KiB, each byte at most six in JSON: well within the bound.
        self.fields.truncate(8);
        for (name, value) in &mut self.fields {
            shorten(name, 64);
            shorten(value, 1 << 10);
        }
        shorten(&mut self.target, 64);
        serde_json::to_vec(self).ok().filter(|b| b.len() <= MAX_LOG)
    }
}

fn shorten(text: &mut String, max: usize) {
    if text.len() > max {
        let mut end = max;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
        text.push_str("...");
    }
}

pub(crate) fn level_number(l: &Level) -> u8 {
    match *l {
        Level::ERROR => 0,
        Level::WARN => 1,
        Level::INFO => 2,
        Level::DEBUG => 3,
        Level::TRACE => 4,
    }
}

/// The host's most verbose enabled level, for the worker.
pub(crate) fn host_level() -> u8 {
    match tracing::level_filters::LevelFilter::current().into_level() {
        Some(l) => level_number(&l),
        None => 0,
    }
}

/// Sends the worker's `membrane::*` events at `level` or above to the host, and its audit
/// events at any level down to info.
struct Forward {
    out: Arc<Mutex<Channel>>,
    level: u8,
    /// Sends an event on the calling thread's call connection, when it has one free.
    on_connection: fn(u8, &[u8]) -> bool,
}

struct Fields<'a>(&'a mut Vec<(String, String)>);

impl Visit for Fields<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.push((field.name().to_string(), value.to_string()));
    }
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        let mut s = String::new();
        let _ = write!(s, "{value:?}");
        self.0.push((field.name().to_string(), s));
    }
}

impl Subscriber for Forward {
    fn enabled(&self, meta: &Metadata<'_>) -> bool {
        // Audit events (denials) always cross, whatever the host logs: the host counts them
        // in `membrane_denials_total` as it re-logs them (`relog.rs`).
        (level_number(meta.level()) <= self.level && meta.target().starts_with("membrane"))
            || (meta.target() == "membrane::audit" && level_number(meta.level()) <= 2)
    }
    fn new_span(&self, _span: &Attributes<'_>) -> Id {
        Id::from_u64(1)
    }
    fn record(&self, _span: &Id, _values: &Record<'_>) {}
    fn record_follows_from(&self, _span: &Id, _follows: &Id) {}
    fn event(&self, event: &Event<'_>) {
        let meta = event.metadata();
        let mut line = Line {
            target: meta.target().to_string(),
            level: level_number(meta.level()),
            fields: Vec::new(),
        };
        event.record(&mut Fields(&mut line.fields));
        if let Some(body) = line.body() {
            if (self.on_connection)(LOG, &body) {
                return;
            }
            let _ = self
                .out
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .send(LOG, &body);
        }
    }
    fn enter(&self, _span: &Id) {}
    fn exit(&self, _span: &Id) {}
}

/// Installs the forwarding subscriber in the worker: events at `level` or above go on the
/// calling thread's call connection when `on_connection` can send them there (so the host
/// logs a call's events before its answer), on the control socket `out` otherwise.
pub(crate) fn install(out: Arc<Mutex<Channel>>, level: u8, on_connection: fn(u8, &[u8]) -> bool) {
    let _ = tracing::subscriber::set_global_default(Forward {
        out,
        level,
        on_connection,
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_event_always_fits_in_a_log_frame() {
        // A guest's longest line, every byte a control: crosses whole.
        let text = crate::sanitize::Quoted(&"\u{1}".repeat(membrane_core::MAX_LINE)).to_string();
        let mut guest = Line {
            target: "membrane::guest".into(),
            level: 2,
            fields: vec![
                ("stream".into(), "stdout".into()),
                ("text".into(), text.clone()),
            ],
        };
        let body = guest.body().unwrap();
        assert!(body.len() <= MAX_LOG);
        assert_eq!(
            serde_json::from_slice::<Line>(&body).unwrap().fields[1].1,
            text
        );
        // An event of the worker's own with huge fields is shortened, not lost.
        let mut huge = Line {
            target: "membrane::worker".into(),
            level: 1,
            fields: (0..100)
                .map(|i| (format!("f{i}"), "\u{1}".repeat(100 << 10)))
                .collect(),
        };
        let body = huge.body().unwrap();
        assert!(body.len() <= MAX_LOG, "{}", body.len());
        let back: Line = serde_json::from_slice(&body).unwrap();
        assert_eq!(back.fields.len(), 8);
        assert!(back.fields[0].1.ends_with("..."));
    }
}
