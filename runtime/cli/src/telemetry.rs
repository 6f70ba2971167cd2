//! OpenTelemetry export for `serve`, `host`, `run` and `call`: started from
//! `[app.telemetry]` and the `OTEL_*` environment, flushed when the command ends.

use std::time::Duration;

use membrane_telemetry::{Settings, Telemetry};

use crate::membrane::AppSpec;
use crate::output::say;

/// Export running for the command's life.
pub struct Exporting(Option<Telemetry>);

/// Starts export if the manifest or the environment names a collector.
pub fn start(spec: &AppSpec) -> anyhow::Result<Exporting> {
    let Some(settings) = Settings::resolve(spec.telemetry.as_ref(), spec.name.as_deref())? else {
        return Ok(Exporting(None));
    };
    let to = settings
        .endpoint
        .clone()
        .or_else(|| std::env::var("OTEL_EXPORTER_OTLP_ENDPOINT").ok())
        .unwrap_or_else(|| "the OTEL_EXPORTER_OTLP_*_ENDPOINT collectors".into());
    let protocol = settings.protocol.as_str();
    let telemetry = membrane_telemetry::start(settings)?;
    say(&format!(
        "exporting traces, metrics and logs to {to} ({protocol})"
    ));
    Ok(Exporting(Some(telemetry)))
}

/// Dropping it sends what is queued (at most a few seconds: a collector that is down does
/// not hold up the exit), on every way out of a command.
impl Drop for Exporting {
    fn drop(&mut self) {
        if let Some(t) = self.0.take() {
            t.shutdown(Duration::from_secs(5));
        }
    }
}
