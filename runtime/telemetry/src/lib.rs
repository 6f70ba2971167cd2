//! OpenTelemetry export for Membrane. The core records the spans of requests and calls and
//! carries their trace context across links, worker processes and NATS hosts
//! (`membrane_core::telemetry`); this crate sends them, the metrics made from them and the
//! guests' log lines to a collector over OTLP.
//!
//! Configured the standard way (`OTEL_EXPORTER_OTLP_ENDPOINT`, `OTEL_EXPORTER_OTLP_PROTOCOL`
//! `http/protobuf` or `grpc`, `OTEL_SERVICE_NAME`, `OTEL_RESOURCE_ATTRIBUTES`,
//! `OTEL_TRACES_SAMPLER` and `_ARG`, `OTEL_BSP_*`, `OTEL_METRIC_EXPORT_INTERVAL`,
//! `OTEL_SDK_DISABLED`) and by `[app.telemetry]`; the environment wins over the manifest.
//! Off unless one of them names a collector.
//!
//! A collector that is down or slow never slows or fails a call: records wait in a bounded
//! queue for one exporting thread, and what does not fit is dropped and counted
//! (`membrane_telemetry_dropped_total` in `/metrics`).

mod export;
mod layer;
mod metrics;
mod otlp;
mod settings;

pub use layer::LogLayer;
pub use settings::{Settings, SettingsError};

use std::time::Duration;

/// Export running; flushes what is queued when shut down.
pub struct Telemetry {
    thread: Option<std::thread::JoinHandle<()>>,
    meters: opentelemetry_sdk::metrics::SdkMeterProvider,
}

/// Why export could not start.
#[derive(Debug)]
pub struct StartError(String);

impl std::fmt::Display for StartError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for StartError {}

/// Starts exporting: installs the core's queue and starts the exporting thread. Once per
/// process.
pub fn start(settings: Settings) -> Result<Telemetry, StartError> {
    export::start(settings)
}

impl Telemetry {
    /// Exports what is queued (waiting at most `timeout`) and stops.
    pub fn shutdown(mut self, timeout: Duration) {
        membrane_core::telemetry::queue::flush(timeout);
        let _ = self.meters.force_flush();
        let _ = self.meters.shutdown();
        // The thread keeps draining the queue for the process's life; it is not joined.
        drop(self.thread.take());
    }
}
