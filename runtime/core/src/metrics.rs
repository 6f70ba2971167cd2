//! An app's metrics, in Prometheus naming (base units, counters ending in `_total`, the
//! `membrane_` prefix), rendered in the OpenMetrics text format that Prometheus scrapes.
//!
//! | metric | labels | what |
//! |---|---|---|
//! | `membrane_calls_total` | module, function, outcome | calls into modules: `ok` or the error kind |
//! | `membrane_call_duration_seconds` | module, function | how long calls took (histogram) |
//! | `membrane_instances` | module, state | `busy` and `idle` instances (at scrape time) |
//! | `membrane_queue_depth` | module | callers waiting for an instance |
//! | `membrane_circuit_open` | module | 1 while the module's circuit is open |
//! | `membrane_bucket_bytes` | bucket | bytes a key-value bucket holds (at scrape time; on NATS what JetStream stores) |
//! | `membrane_bucket_keys` | bucket | keys a key-value bucket holds (at scrape time) |
//! | `membrane_denials_total` | module, capability | denied uses of a capability (also on the `membrane::audit` log target) |
//! | `membrane_http_requests_total` | route, status | requests answered by `membrane serve` |
//! | `membrane_http_request_duration_seconds` | route | time to the response head (histogram) |
//! | `membrane_http_connections_closed_total` | reason | connections the server closed on its own: `first-request-timeout`, `idle`, `evicted` (room for a new one), `per-ip` (refused at the address's cap), `grace-ran-out`, `tls-handshake` (a TLS handshake failed) |
//!
//! The call path pays two clock reads and four relaxed atomic additions per call (a counter
//! and a lock-free histogram): every counter a call touches is looked up once per function and
//! kept ([`FuncMetrics`]), never looked up by label on the way.
//!
//! Counting and rendering need the `metrics` feature (prometheus-client); without it the
//! same types count nothing (`metrics/off.rs`) and there is no `App::metrics_text`.

use std::fmt;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

#[cfg(feature = "metrics")]
use prometheus_client::{
    encoding::EncodeLabelSet,
    metrics::{counter::Counter, family::Family, gauge::Gauge},
    registry::{Registry, Unit},
};

#[cfg(not(feature = "metrics"))]
use off::{Counter, Family, Gauge, Registry, Unit};

use crate::error::ErrorKind;

mod histogram;
#[cfg(not(feature = "metrics"))]
mod off;
pub mod window;

use histogram::DurationHistogram;

#[derive(Clone, Debug, Hash, PartialEq, Eq)]
#[cfg_attr(feature = "metrics", derive(EncodeLabelSet))]
struct CallLabels {
    module: String,
    function: String,
    outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq)]
#[cfg_attr(feature = "metrics", derive(EncodeLabelSet))]
struct FuncLabels {
    module: String,
    function: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq)]
#[cfg_attr(feature = "metrics", derive(EncodeLabelSet))]
struct ModuleLabels {
    module: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq)]
#[cfg_attr(feature = "metrics", derive(EncodeLabelSet))]
struct StateLabels {
    module: String,
    state: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq)]
#[cfg_attr(feature = "metrics", derive(EncodeLabelSet))]
struct DenialLabels {
    module: String,
    capability: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq)]
#[cfg_attr(feature = "metrics", derive(EncodeLabelSet))]
struct HttpLabels {
    route: String,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq)]
#[cfg_attr(feature = "metrics", derive(EncodeLabelSet))]
struct ReasonLabels {
    reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq)]
#[cfg_attr(feature = "metrics", derive(EncodeLabelSet))]
struct SignalLabels {
    signal: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq)]
#[cfg_attr(feature = "metrics", derive(EncodeLabelSet))]
struct BucketLabels {
    bucket: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq)]
#[cfg_attr(feature = "metrics", derive(EncodeLabelSet))]
struct RouteLabels {
    route: String,
}

type Histograms<L> = Family<L, DurationHistogram>;

/// The metrics of one app.
pub struct Metrics {
    /// Whether calls are counted (denials and HTTP requests always are).
    calls_counted: bool,
    /// Read-only once made: rendering only reads it.
    #[cfg_attr(
        not(feature = "metrics"),
        allow(dead_code, reason = "nothing renders it")
    )]
    registry: Registry,
    calls: Family<CallLabels, Counter>,
    call_duration: Histograms<FuncLabels>,
    instances: Family<StateLabels, Gauge>,
    queue_depth: Family<ModuleLabels, Gauge>,
    circuit_open: Family<ModuleLabels, Gauge>,
    denials: Family<DenialLabels, Counter>,
    http_requests: Family<HttpLabels, Counter>,
    http_duration: Histograms<RouteLabels>,
    http_closed: Family<ReasonLabels, Counter>,
    bucket_bytes: Family<BucketLabels, Gauge>,
    bucket_keys: Family<BucketLabels, Gauge>,
    #[cfg_attr(not(feature = "metrics"), allow(dead_code))]
    telemetry_dropped: Family<SignalLabels, Counter>,
}

impl fmt::Debug for Metrics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Metrics")
    }
}

impl Metrics {
    pub fn new(calls_counted: bool) -> Arc<Metrics> {
        let (calls, call_duration) = (Family::default(), Family::default());
        let (instances, queue_depth, circuit_open) =
            (Family::default(), Family::default(), Family::default());
        let (denials, http_requests, http_duration) =
            (Family::default(), Family::default(), Family::default());
        let mut r = Registry::with_prefix("membrane");
        let help = "Calls into modules, by outcome: ok or the error kind";
        r.register("calls", help, Family::clone(&calls));
        let help = "How long calls into modules took";
        r.register_with_unit(
            "call_duration",
            help,
            Unit::Seconds,
            Family::clone(&call_duration),
        );
        let help = "Live instances of each module, busy or idle";
        r.register("instances", help, Family::clone(&instances));
        let help = "Callers waiting for an instance of each module";
        r.register("queue_depth", help, Family::clone(&queue_depth));
        let help = "1 while the module's circuit is open (calls refused)";
        r.register("circuit_open", help, Family::clone(&circuit_open));
        let help = "Denied uses of a capability, by module and capability";
        r.register("denials", help, Family::clone(&denials));
        let help = "HTTP requests answered, by route and status";
        r.register("http_requests", help, Family::clone(&http_requests));
        let help = "Time from a request's arrival to its response head";
        let unit = Unit::Seconds;
        r.register_with_unit(
            "http_request_duration",
            help,
            unit,
            Family::clone(&http_duration),
        );
        let http_closed = Family::default();
        let help = "Connections the server closed on its own, by reason";
        r.register("http_connections_closed", help, Family::clone(&http_closed));
        let (bucket_bytes, bucket_keys) = (Family::default(), Family::default());
        let help = "Bytes a key-value bucket holds (on NATS: what JetStream stores)";
        r.register_with_unit("bucket", help, Unit::Bytes, Family::clone(&bucket_bytes));
        let help = "Keys a key-value bucket holds";
        r.register("bucket_keys", help, Family::clone(&bucket_keys));
        let telemetry_dropped = Family::default();
        let help = "Spans and log records OpenTelemetry export dropped (its queue was full, \
                    or the collector did not take them)";
        r.register("telemetry_dropped", help, Family::clone(&telemetry_dropped));
        Arc::new(Metrics {
            calls_counted,
            registry: r,
            calls,
            call_duration,
            instances,
            queue_depth,
            circuit_open,
            denials,
            http_requests,
            http_duration,
            http_closed,
            bucket_bytes,
            bucket_keys,
            telemetry_dropped,
        })
    }

    /// Counts a connection the server closed on its own (see the table above for reasons).
    pub fn connection_closed(&self, reason: &'static str) {
        self.http_closed
            .get_or_create(&ReasonLabels { reason })
            .inc();
    }

    /// The metrics of one module of the app.
    pub fn module(self: &Arc<Self>, name: &str) -> Arc<ModuleMetrics> {
        let denied = |capability| {
            self.denials.get_or_create_owned(&DenialLabels {
                module: name.to_string(),
                capability,
            })
        };
        Arc::new(ModuleMetrics {
            name: name.into(),
            calls: std::sync::atomic::AtomicU64::new(0),
            ended: std::sync::atomic::AtomicU64::new(0),
            window: window::Window::default(),
            denied_network: denied(Capability::Network.as_str()),
            denied_http: denied(Capability::Http.as_str()),
            denied_session: denied(Capability::Session.as_str()),
            denied_keyvalue: denied(Capability::KeyValue.as_str()),
            app: self.clone(),
        })
    }

    /// Sets a module's gauges (at scrape time).
    pub fn set_module_state(
        &self,
        module: &str,
        busy: usize,
        idle: usize,
        waiting: usize,
        open: bool,
    ) {
        for (state, n) in [("busy", busy), ("idle", idle)] {
            self.instances
                .get_or_create(&StateLabels {
                    module: module.to_string(),
                    state,
                })
                .set(n as i64);
        }
        let m = ModuleLabels {
            module: module.to_string(),
        };
        self.queue_depth.get_or_create(&m).set(waiting as i64);
        self.circuit_open.get_or_create(&m).set(i64::from(open));
    }

    /// Sets a key-value bucket's gauges (at scrape time).
    pub fn set_bucket(&self, bucket: &str, bytes: u64, keys: u64) {
        let b = BucketLabels {
            bucket: bucket.to_string(),
        };
        let gauge = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
        self.bucket_bytes.get_or_create(&b).set(gauge(bytes));
        self.bucket_keys.get_or_create(&b).set(gauge(keys));
    }

    /// The counters of one route (`none` for requests no route matched), made once.
    pub fn route(self: &Arc<Self>, route: &str) -> RouteMetrics {
        RouteMetrics {
            route: route.to_string(),
            duration: self.http_duration.get_or_create_owned(&RouteLabels {
                route: route.to_string(),
            }),
            statuses: Mutex::new(Vec::new()),
            app: self.clone(),
        }
    }

    /// The metrics in the OpenMetrics text format.
    #[cfg(feature = "metrics")]
    pub fn render(&self) -> String {
        if crate::telemetry::enabled() {
            let (spans, logs) = crate::telemetry::dropped();
            for (signal, n) in [("spans", spans), ("logs", logs)] {
                let c = self
                    .telemetry_dropped
                    .get_or_create(&SignalLabels { signal });
                c.inc_by(n.saturating_sub(c.get()));
            }
        }
        let mut out = String::new();
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

/// The HTTP counters of one route, kept by the server so that a request looks nothing up.
pub struct RouteMetrics {
    route: String,
    duration: DurationHistogram,
    /// One counter per status seen, in order of first use (a handful).
    statuses: Mutex<Vec<(u16, Counter)>>,
    app: Arc<Metrics>,
}

impl RouteMetrics {
    /// Counts one request answered with `status` after `elapsed`.
    pub fn request(&self, status: u16, elapsed: Duration) {
        self.duration.observe(elapsed);
        let mut statuses = self.statuses.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((_, c)) = statuses.iter().find(|(s, _)| *s == status) {
            c.inc();
            return;
        }
        let c = self.app.http_requests.get_or_create_owned(&HttpLabels {
            route: self.route.clone(),
            status,
        });
        c.inc();
        statuses.push((status, c));
    }
}

/// A capability whose denials are counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Capability {
    /// A socket destination not in `grants.network`.
    Network,
    /// An outbound HTTP origin not in `grants.http`.
    Http,
    /// A remote resource session used without its key (a host of `remote` modules).
    Session,
    /// A bucket not in `grants.keyvalue`, or a write to a read-only one.
    KeyValue,
}

impl Capability {
    fn as_str(self) -> &'static str {
        match self {
            Capability::Network => "network",
            Capability::Http => "http",
            Capability::Session => "session",
            Capability::KeyValue => "keyvalue",
        }
    }
}

/// The metrics of one module: denials, and the handles of each function's counters.
pub struct ModuleMetrics {
    pub name: Arc<str>,
    /// Every call counted, whatever its outcome (the call rate of the operator's page).
    pub calls: std::sync::atomic::AtomicU64,
    /// Calls ended or refused because their generation was retired after its drain time.
    pub ended: std::sync::atomic::AtomicU64,
    /// The last minute of its calls (outcomes and durations), when calls are counted.
    pub window: window::Window,
    denied_network: Counter,
    denied_http: Counter,
    denied_session: Counter,
    denied_keyvalue: Counter,
    app: Arc<Metrics>,
}

impl fmt::Debug for ModuleMetrics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ModuleMetrics({})", self.name)
    }
}

impl ModuleMetrics {
    /// Whether calls are counted.
    pub fn counts_calls(&self) -> bool {
        self.app.calls_counted
    }

    /// Audits a denied use of `capability`: an event on target `membrane::audit` naming the
    /// module and what was denied, and one more in `membrane_denials_total`.
    pub fn denied(&self, capability: Capability, what: &dyn fmt::Display) {
        self.count_denial(capability);
        tracing::info!(
            target: "membrane::audit",
            module = %self.name,
            trace_id = crate::telemetry::trace_field(),
            capability = capability.as_str(),
            denied = %crate::sanitize::escape(&what.to_string()),
            "capability denied"
        );
    }

    /// Counts a denial of `capability` in `membrane_denials_total`, for a caller that
    /// writes its own audit event (with fields of its own).
    pub fn count_denial(&self, capability: Capability) {
        match capability {
            Capability::Network => self.denied_network.inc(),
            Capability::Http => self.denied_http.inc(),
            Capability::Session => self.denied_session.inc(),
            Capability::KeyValue => self.denied_keyvalue.inc(),
        };
    }

    /// The counters of one function, made on its first call.
    pub fn function<'a>(&self, cell: &'a FuncMetricsCell, function: &str) -> &'a FuncMetrics {
        cell.0.get_or_init(|| FuncMetrics {
            ok: self.app.calls.get_or_create_owned(&CallLabels {
                module: self.name.to_string(),
                function: function.to_string(),
                outcome: "ok".into(),
            }),
            duration: self.app.call_duration.get_or_create_owned(&FuncLabels {
                module: self.name.to_string(),
                function: function.to_string(),
            }),
        })
    }

    /// Counts a call that failed with `kind` (rare enough to look the counter up).
    pub fn failed(&self, function: &str, kind: Option<ErrorKind>) {
        let outcome = match kind {
            Some(k) => k.to_string(),
            None => "cancelled".to_string(),
        };
        self.app
            .calls
            .get_or_create(&CallLabels {
                module: self.name.to_string(),
                function: function.to_string(),
                outcome,
            })
            .inc();
    }
}

/// A function's counters, kept with the function.
pub struct FuncMetrics {
    pub ok: Counter,
    pub duration: DurationHistogram,
}

/// Where a function keeps its counters once made.
#[derive(Default)]
pub struct FuncMetricsCell(OnceLock<FuncMetrics>);

impl fmt::Debug for FuncMetricsCell {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("FuncMetricsCell")
    }
}
