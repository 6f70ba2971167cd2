//! The exporting thread: drains the core's queue into batches, sends them with the OTLP
//! exporters on a small runtime of its own, and feeds the span metrics.

use std::sync::mpsc::{Receiver, TryRecvError};
use std::time::{Duration, Instant};

use membrane_core::telemetry::{self, LogRecord, Signal, SpanKind, SpanRecord};
use opentelemetry::logs::{AnyValue, LogRecord as _, Logger as _, LoggerProvider as _, Severity};
use opentelemetry::trace::{SpanContext, SpanId, Status, TraceFlags, TraceId, TraceState};
use opentelemetry::{InstrumentationScope, KeyValue};
use opentelemetry_otlp::{LogExporter, Protocol, SpanExporter, WithExportConfig};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::logs::{LogBatch, LogExporter as _, SdkLogRecord, SdkLoggerProvider};
use opentelemetry_sdk::trace::{SpanData, SpanEvents, SpanExporter as _, SpanLinks};

use crate::metrics::SpanMetrics;
use crate::otlp::{exporter, value};

/// How often the exporting thread looks at the queue.
const POLL: Duration = Duration::from_millis(10);
use crate::{Settings, StartError, Telemetry};

/// The process's resource: `service.name` from the settings unless the environment gives
/// one (`OTEL_SERVICE_NAME`, `OTEL_RESOURCE_ATTRIBUTES`, read by the SDK's detectors).
fn resource(s: &Settings) -> Resource {
    let named = std::env::var_os("OTEL_SERVICE_NAME").is_some()
        || std::env::var("OTEL_RESOURCE_ATTRIBUTES").is_ok_and(|a| a.contains("service.name="));
    let mut b = Resource::builder();
    if !named {
        b = b.with_service_name(s.service_name.clone());
    }
    b.with_attribute(KeyValue::new("process.pid", i64::from(std::process::id())))
        .build()
}

pub(crate) fn start(s: Settings) -> Result<Telemetry, StartError> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("membrane-otlp")
        .enable_all()
        .build()
        .map_err(|e| StartError(format!("cannot start the export runtime: {e}")))?;
    // tonic's channel is made inside the runtime it runs on.
    let _entered = rt.enter();
    let resource = resource(&s);
    let mut spans = exporter!(SpanExporter::builder(), &s, "v1/traces")?;
    spans.set_resource(&resource);
    let mut logs = exporter!(LogExporter::builder(), &s, "v1/logs")?;
    logs.set_resource(&resource);
    let (meters, metrics) = crate::metrics::start(&s, resource.clone(), rt.handle().clone())?;
    let rx = telemetry::install(s.queue, s.sampler.clone())
        .ok_or_else(|| StartError("telemetry was started already in this process".into()))?;
    let scope = InstrumentationScope::builder("membrane")
        .with_version(env!("CARGO_PKG_VERSION"))
        .build();
    let logger = SdkLoggerProvider::builder()
        .with_resource(resource)
        .build()
        .logger("membrane");
    drop(_entered);
    let exporting = Exporting {
        rt,
        spans,
        logs,
        logger,
        scope,
        metrics,
        batch: s.batch.max(1),
        delay: s.delay,
    };
    let thread = std::thread::Builder::new()
        .name("membrane-otel".into())
        .spawn(move || exporting.run(rx))
        .map_err(|e| StartError(format!("cannot start the export thread: {e}")))?;
    Ok(Telemetry {
        thread: Some(thread),
        meters,
    })
}

struct Exporting {
    rt: tokio::runtime::Runtime,
    spans: SpanExporter,
    logs: LogExporter,
    logger: opentelemetry_sdk::logs::SdkLogger,
    scope: InstrumentationScope,
    metrics: SpanMetrics,
    batch: usize,
    delay: Duration,
}

impl Exporting {
    /// Drains the queue every [`POLL`] rather than waiting on it: a thread blocked on the
    /// channel would be woken by every span a call sends (a futex wake and a context switch
    /// per call); polled, a call's `try_send` finds no one to wake.
    fn run(mut self, rx: Receiver<Signal>) {
        let mut spans: Vec<SpanData> = Vec::new();
        let mut logs: Vec<SdkLogRecord> = Vec::new();
        let mut due: Option<Instant> = None;
        loop {
            let mut acks = Vec::new();
            loop {
                match rx.try_recv() {
                    Ok(Signal::Span(r)) => {
                        self.metrics.record(&r);
                        if r.context.sampled {
                            spans.push(self.span(r));
                        }
                    }
                    Ok(Signal::Log(r)) => logs.push(self.log(r)),
                    Ok(Signal::Flush(ack)) => {
                        acks.push(ack);
                        break;
                    }
                    Err(TryRecvError::Empty) => break,
                    Err(TryRecvError::Disconnected) => return,
                }
                if spans.len() >= self.batch || logs.len() >= self.batch {
                    break;
                }
            }
            if due.is_none() && (!spans.is_empty() || !logs.is_empty()) {
                due = Some(Instant::now() + self.delay);
            }
            let full = spans.len() >= self.batch || logs.len() >= self.batch;
            let late = due.is_some_and(|d| Instant::now() >= d);
            if !acks.is_empty() || full || late {
                self.send(&mut spans, &mut logs);
                due = None;
            }
            for ack in acks {
                let _ = ack.try_send(());
            }
            if !full {
                std::thread::sleep(POLL.min(self.delay));
            }
        }
    }

    /// Sends the batches; what a failed export held is counted dropped.
    fn send(&mut self, spans: &mut Vec<SpanData>, logs: &mut Vec<SdkLogRecord>) {
        if !spans.is_empty() {
            let batch = std::mem::take(spans);
            let n = batch.len() as u64;
            if self.rt.block_on(self.spans.export(batch)).is_err() {
                telemetry::queue::count_dropped(n, 0);
            }
        }
        if !logs.is_empty() {
            let records = std::mem::take(logs);
            let refs: Vec<(&SdkLogRecord, &InstrumentationScope)> =
                records.iter().map(|r| (r, &self.scope)).collect();
            if self
                .rt
                .block_on(self.logs.export(LogBatch::new(&refs)))
                .is_err()
            {
                telemetry::queue::count_dropped(0, records.len() as u64);
            }
        }
    }

    fn span(&self, r: SpanRecord) -> SpanData {
        SpanData {
            span_context: SpanContext::new(
                TraceId::from(r.context.trace_id),
                SpanId::from(r.context.span_id),
                TraceFlags::SAMPLED,
                false,
                TraceState::default(),
            ),
            parent_span_id: r.parent.map_or(SpanId::INVALID, |(id, _)| SpanId::from(id)),
            parent_span_is_remote: r.parent.is_some_and(|(_, remote)| remote),
            span_kind: match r.kind {
                SpanKind::Server => opentelemetry::trace::SpanKind::Server,
                SpanKind::Client => opentelemetry::trace::SpanKind::Client,
            },
            name: r.name,
            start_time: r.start,
            end_time: r.end,
            attributes: r
                .attributes
                .into_iter()
                .map(|(k, v)| KeyValue::new(k, value(v)))
                .collect(),
            dropped_attributes_count: 0,
            events: SpanEvents::default(),
            links: SpanLinks::default(),
            status: match r.error {
                Some(why) => Status::error(why),
                None => Status::Unset,
            },
            instrumentation_scope: self.scope.clone(),
        }
    }

    fn log(&self, r: LogRecord) -> SdkLogRecord {
        let mut rec = self.logger.create_log_record();
        rec.set_timestamp(r.time);
        rec.set_observed_timestamp(r.time);
        let (number, text) = match r.level {
            tracing::Level::ERROR => (Severity::Error, "ERROR"),
            tracing::Level::WARN => (Severity::Warn, "WARN"),
            tracing::Level::INFO => (Severity::Info, "INFO"),
            tracing::Level::DEBUG => (Severity::Debug, "DEBUG"),
            _ => (Severity::Trace, "TRACE"),
        };
        rec.set_severity_number(number);
        rec.set_severity_text(text);
        rec.set_target(r.target);
        rec.set_body(AnyValue::from(r.body));
        for (k, v) in r.attributes {
            rec.add_attribute(k, v);
        }
        if let Some(span) = r.span {
            rec.set_trace_context(
                TraceId::from(span.trace_id),
                SpanId::from(span.span_id),
                Some(if span.sampled {
                    TraceFlags::SAMPLED
                } else {
                    TraceFlags::default()
                }),
            );
        }
        rec
    }
}
