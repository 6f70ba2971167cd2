//! What export is configured to do: `[app.telemetry]` overridden by the `OTEL_*`
//! environment variables.

use std::time::Duration;

use membrane_core::spec::{OtlpProtocol, TelemetrySpec};
use membrane_core::telemetry::Sampler;

/// Export settings, resolved.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    /// The collector's base URL from the manifest, when the environment names none (the
    /// exporter reads `OTEL_EXPORTER_OTLP_ENDPOINT` and the per-signal ones itself).
    pub endpoint: Option<String>,
    /// The transport.
    pub protocol: OtlpProtocol,
    /// `service.name`, unless `OTEL_SERVICE_NAME` or `OTEL_RESOURCE_ATTRIBUTES` gives one.
    pub service_name: String,
    /// Which traces are recorded.
    pub sampler: Sampler,
    /// Records waiting for export at most (`OTEL_BSP_MAX_QUEUE_SIZE`, default 2048).
    pub queue: usize,
    /// Records sent in one export at most (`OTEL_BSP_MAX_EXPORT_BATCH_SIZE`, default 512).
    pub batch: usize,
    /// How long a record waits for a batch to fill (`OTEL_BSP_SCHEDULE_DELAY`, default
    /// 5000 ms).
    pub delay: Duration,
}

/// A setting that is not one, with the variable or key that holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SettingsError {
    /// The environment variable or manifest key.
    pub key: String,
    /// What is wrong and how to fix it.
    pub message: String,
}

impl std::fmt::Display for SettingsError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.key, self.message)
    }
}

impl std::error::Error for SettingsError {}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

impl Settings {
    /// The settings of an app with `[app.telemetry]` `spec` (if any) named `app` (if
    /// named), under this process's environment; `None` when export is off: neither the
    /// manifest nor an `OTEL_EXPORTER_OTLP_*ENDPOINT` variable names a collector, or
    /// `OTEL_SDK_DISABLED=true`.
    pub fn resolve(
        spec: Option<&TelemetrySpec>,
        app: Option<&str>,
    ) -> Result<Option<Settings>, SettingsError> {
        Settings::resolve_with(spec, app, env)
    }

    /// [`Settings::resolve`] with the environment given as a function (tests).
    pub fn resolve_with(
        spec: Option<&TelemetrySpec>,
        app: Option<&str>,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Option<Settings>, SettingsError> {
        if env("OTEL_SDK_DISABLED").is_some_and(|v| v.trim().eq_ignore_ascii_case("true")) {
            return Ok(None);
        }
        let from_env = [
            "OTEL_EXPORTER_OTLP_ENDPOINT",
            "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
            "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT",
            "OTEL_EXPORTER_OTLP_LOGS_ENDPOINT",
        ]
        .iter()
        .any(|v| env(v).is_some());
        if spec.is_none() && !from_env {
            return Ok(None);
        }
        let spec = spec.cloned().unwrap_or_default();
        let bad = |key: &str, message: String| SettingsError {
            key: key.into(),
            message,
        };
        let protocol = match env("OTEL_EXPORTER_OTLP_PROTOCOL") {
            Some(p) => OtlpProtocol::parse(&p).ok_or_else(|| {
                bad(
                    "OTEL_EXPORTER_OTLP_PROTOCOL",
                    format!("`{p}` is not supported; use http/protobuf or grpc"),
                )
            })?,
            None => spec.protocol.unwrap_or_default(),
        };
        let sampler = match env("OTEL_TRACES_SAMPLER") {
            Some(name) => {
                let arg = env("OTEL_TRACES_SAMPLER_ARG");
                Sampler::from_name(&name, arg.as_deref())
                    .map_err(|m| bad("OTEL_TRACES_SAMPLER", m))?
            }
            None => match &spec.sampler {
                Some(name) => Sampler::from_name(name, spec.sampler_arg.as_deref())
                    .map_err(|m| bad("app.telemetry.sampler", m))?,
                None => Sampler::default(),
            },
        };
        let number = |var: &str, default: u64| -> Result<u64, SettingsError> {
            match env(var) {
                None => Ok(default),
                Some(v) => v
                    .trim()
                    .parse::<u64>()
                    .ok()
                    .filter(|n| *n > 0)
                    .ok_or_else(|| bad(var, format!("`{v}` is not a positive whole number"))),
            }
        };
        Ok(Some(Settings {
            endpoint: if from_env { None } else { spec.endpoint },
            protocol,
            service_name: spec
                .service_name
                .or_else(|| app.map(str::to_owned))
                .unwrap_or_else(|| "membrane".into()),
            sampler,
            queue: number("OTEL_BSP_MAX_QUEUE_SIZE", 2048)? as usize,
            batch: number("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", 512)? as usize,
            delay: Duration::from_millis(number("OTEL_BSP_SCHEDULE_DELAY", 5000)?),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let vars: Vec<(String, String)> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| vars.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone())
    }

    #[test]
    fn off_unless_a_collector_is_named() {
        assert_eq!(Settings::resolve_with(None, None, with(&[])), Ok(None));
        let on = Settings::resolve_with(
            None,
            Some("shop"),
            with(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4318")]),
        )
        .unwrap()
        .unwrap();
        assert_eq!(on.service_name, "shop");
        assert_eq!(on.protocol, OtlpProtocol::HttpProtobuf);
        let spec = TelemetrySpec {
            endpoint: Some("http://c:4317".into()),
            protocol: Some(OtlpProtocol::Grpc),
            ..TelemetrySpec::default()
        };
        let s = Settings::resolve_with(Some(&spec), None, with(&[]))
            .unwrap()
            .unwrap();
        assert_eq!(s.endpoint.as_deref(), Some("http://c:4317"));
        assert_eq!(s.protocol, OtlpProtocol::Grpc);
        assert_eq!(
            Settings::resolve_with(Some(&spec), None, with(&[("OTEL_SDK_DISABLED", "true")])),
            Ok(None)
        );
    }

    #[test]
    fn the_environment_wins_and_bad_values_are_named() {
        let spec = TelemetrySpec {
            endpoint: Some("http://c:4317".into()),
            protocol: Some(OtlpProtocol::Grpc),
            ..TelemetrySpec::default()
        };
        let s = Settings::resolve_with(
            Some(&spec),
            None,
            with(&[
                ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"),
                ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://d:4318"),
            ]),
        )
        .unwrap()
        .unwrap();
        assert_eq!(s.protocol, OtlpProtocol::HttpProtobuf);
        assert_eq!(s.endpoint, None);
        for (var, value) in [
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json"),
            ("OTEL_TRACES_SAMPLER", "sometimes"),
            ("OTEL_BSP_MAX_QUEUE_SIZE", "lots"),
        ] {
            let e = Settings::resolve_with(Some(&spec), None, with(&[(var, value)])).unwrap_err();
            assert_eq!(e.key, var);
            assert!(e.message.contains(value), "{e}");
        }
    }
}
