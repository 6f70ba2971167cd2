//! The worker's log events, carried to the host and logged there as if the module ran in
//! the host: guest output lines (`membrane::guest`), audited denials (`membrane::audit`,
//! also counted in the host's metrics) and the worker's own events (`membrane::worker`).

use std::fmt::Write as _;
use std::sync::{Arc, Mutex};

use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Level, Metadata, Subscriber};

use super::channel::Channel;
use crate::metrics::{Capability, ModuleMetrics};
use crate::wire::message::LOG;

/// One event as it crosses.
#[derive(serde::Serialize, serde::Deserialize, Default)]
struct Line {
    target: String,
    level: u8,
    fields: Vec<(String, String)>,
}

fn level_number(l: &Level) -> u8 {
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

/// Sends the worker's `membrane::*` events at `level` or above to the host.
struct Forward {
    out: Arc<Mutex<Channel>>,
    level: u8,
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
        level_number(meta.level()) <= self.level && meta.target().starts_with("membrane")
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
        if let Ok(body) = serde_json::to_vec(&line) {
            if super::serve::send_on_connection(LOG, &body) {
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

/// Installs the forwarding subscriber in the worker.
pub(crate) fn install(out: Arc<Mutex<Channel>>, level: u8) {
    let _ = tracing::subscriber::set_global_default(Forward { out, level });
}

/// Logs a worker's event in the host, under the module's name.
pub(crate) fn reemit(module: &str, metrics: &Arc<ModuleMetrics>, body: &[u8]) {
    let Ok(line) = serde_json::from_slice::<Line>(body) else {
        return;
    };
    let field = |name: &str| {
        line.fields
            .iter()
            .find(|(n, _)| n == name)
            .map_or("", |(_, v)| v.as_str())
    };
    match line.target.as_str() {
        "membrane::guest" => {
            let stream = field("stream");
            let text = field("text");
            tracing::info!(target: "membrane::guest", module = %module, stream, text = %text);
        }
        "membrane::audit" => {
            let capability = match field("capability") {
                "network" => Some(Capability::Network),
                "http" => Some(Capability::Http),
                _ => None,
            };
            match capability {
                // Counted and logged by the host's metrics, as for an in-process module.
                Some(c) => metrics.denied(c, &field("denied")),
                None => {
                    tracing::info!(target: "membrane::audit", module = %module, event = ?line.fields)
                }
            }
        }
        _ => {
            let message = field("message");
            match line.level {
                0 => {
                    tracing::error!(target: "membrane::worker", module = %module, fields = ?line.fields, "{message}")
                }
                1 => {
                    tracing::warn!(target: "membrane::worker", module = %module, fields = ?line.fields, "{message}")
                }
                2 => {
                    tracing::info!(target: "membrane::worker", module = %module, fields = ?line.fields, "{message}")
                }
                _ => {
                    tracing::debug!(target: "membrane::worker", module = %module, fields = ?line.fields, "{message}")
                }
            }
        }
    }
}
