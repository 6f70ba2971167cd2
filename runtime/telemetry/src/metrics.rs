//! Metrics made from the spans that end: request and call durations by OpenTelemetry's
//! conventions, and the records export dropped. Read and sent every
//! `OTEL_METRIC_EXPORT_INTERVAL` (default 60 s) by the SDK's periodic reader.

use membrane_core::telemetry::{self, SpanKind, SpanRecord};
use opentelemetry::KeyValue;
use opentelemetry::metrics::{Histogram, MeterProvider as _};
use opentelemetry_otlp::{MetricExporter, Protocol, WithExportConfig};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::metrics::data::ResourceMetrics;
use opentelemetry_sdk::metrics::exporter::PushMetricExporter;
use opentelemetry_sdk::metrics::{SdkMeterProvider, Temporality};

use crate::otlp::{exporter, value};
use crate::{Settings, StartError};

/// Bucket bounds in seconds: from 100 µs (a linked call) to 10 s (a slow request).
const BOUNDS: [f64; 17] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75,
    1.0, 2.5, 10.0,
];

/// The instruments spans feed.
pub(crate) struct SpanMetrics {
    http: Histogram<f64>,
    server_calls: Histogram<f64>,
    client_calls: Histogram<f64>,
}

impl SpanMetrics {
    /// Records the duration of a request or a call that ended (sampled or not).
    pub(crate) fn record(&self, r: &SpanRecord) {
        let seconds = r
            .end
            .duration_since(r.start)
            .map_or(0.0, |d| d.as_secs_f64());
        let keep = |keys: &[&str]| -> Vec<KeyValue> {
            r.attributes
                .iter()
                .filter(|(k, _)| keys.contains(k))
                .map(|(k, v)| KeyValue::new(*k, value(v.clone())))
                .collect()
        };
        if r.attribute("http.request.method").is_some() {
            let attrs = keep(&[
                "http.request.method",
                "http.route",
                "http.response.status_code",
                "error.type",
            ]);
            self.http.record(seconds, &attrs);
        } else {
            let attrs = keep(&[
                "rpc.system.name",
                "rpc.method",
                "membrane.module",
                "membrane.placement",
                "membrane.outcome",
                "error.type",
            ]);
            match r.kind {
                SpanKind::Server => self.server_calls.record(seconds, &attrs),
                SpanKind::Client => self.client_calls.record(seconds, &attrs),
            }
        }
    }
}

/// Hands the SDK's reader thread's exports to the export runtime (the OTLP clients need
/// one).
struct OnRuntime {
    inner: MetricExporter,
    rt: tokio::runtime::Handle,
}

impl PushMetricExporter for OnRuntime {
    fn export(
        &self,
        metrics: &ResourceMetrics,
    ) -> impl std::future::Future<Output = OTelSdkResult> + Send {
        std::future::ready(self.rt.block_on(self.inner.export(metrics)))
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.inner.force_flush()
    }

    fn shutdown_with_timeout(&self, timeout: std::time::Duration) -> OTelSdkResult {
        self.inner.shutdown_with_timeout(timeout)
    }

    fn temporality(&self) -> Temporality {
        self.inner.temporality()
    }
}

pub(crate) fn start(
    s: &Settings,
    resource: Resource,
    rt: tokio::runtime::Handle,
) -> Result<(SdkMeterProvider, SpanMetrics), StartError> {
    let inner = exporter!(MetricExporter::builder(), s, "v1/metrics")?;
    let provider = SdkMeterProvider::builder()
        .with_resource(resource)
        .with_periodic_exporter(OnRuntime { inner, rt })
        .build();
    let meter = provider.meter("membrane");
    let histogram = |name: &'static str, what: &'static str| {
        meter
            .f64_histogram(name)
            .with_unit("s")
            .with_description(what)
            .with_boundaries(BOUNDS.to_vec())
            .build()
    };
    let metrics = SpanMetrics {
        http: histogram(
            "http.server.request.duration",
            "Duration of HTTP requests served",
        ),
        server_calls: histogram(
            "rpc.server.call.duration",
            "Duration of module calls run by this process",
        ),
        client_calls: histogram(
            "rpc.client.call.duration",
            "Duration of module calls sent to a worker process or over NATS",
        ),
    };
    let _dropped = meter
        .u64_observable_counter("membrane.telemetry.dropped")
        .with_description("Spans and log records export dropped (queue full, or export failed)")
        .with_callback(|o| {
            let (spans, logs) = telemetry::dropped();
            o.observe(spans, &[KeyValue::new("signal", "spans")]);
            o.observe(logs, &[KeyValue::new("signal", "logs")]);
        })
        .build();
    Ok((provider, metrics))
}
