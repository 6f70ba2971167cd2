//! The command's log: `tracing` events to stderr, filtered and formatted by environment.

use crate::output;

/// Logs go to stderr, filtered by `MEMBRANE_LOG` (`tracing` directives; by default
/// warnings, guest output and, for `serve`, everything at info: audit events, request
/// failures, shutdown). `MEMBRANE_LOG_FORMAT=json` writes one JSON object per line.
/// `MEMBRANE_LOG_SPANS=1` also logs each request and module call when its span closes, with
/// its duration.
pub fn init(serving: bool) {
    use tracing_subscriber::EnvFilter;
    use tracing_subscriber::fmt::format::FmtSpan;
    let default = if serving {
        "info"
    } else {
        "warn,membrane::guest=info"
    };
    // Directives by target and level only (the usual case) make a `Targets` filter, which
    // decides once per callsite; `EnvFilter`, needed for span-field directives (`[...]`),
    // also takes a lock on every enter and exit of every span (each poll of a request's
    // futures).
    let directives = std::env::var("MEMBRANE_LOG").unwrap_or_else(|_| default.to_string());
    let filter: Box<dyn tracing_subscriber::Layer<tracing_subscriber::Registry> + Send + Sync> =
        match directives.parse::<tracing_subscriber::filter::Targets>() {
            Ok(targets) if !directives.contains('[') => Box::new(targets),
            _ => Box::new(
                EnvFilter::try_new(&directives).unwrap_or_else(|_| EnvFilter::new(default)),
            ),
        };
    // Span closes (a line per request and per module call, with durations) are opt-in:
    // at a high request rate they are most of what logging costs.
    let spans = if std::env::var_os("MEMBRANE_LOG_SPANS").is_some_and(|v| v != "0") {
        FmtSpan::CLOSE
    } else {
        FmtSpan::NONE
    };
    use tracing_subscriber::Layer as _;
    use tracing_subscriber::layer::SubscriberExt as _;
    use tracing_subscriber::util::SubscriberInitExt as _;
    let json = std::env::var("MEMBRANE_LOG_FORMAT").is_ok_and(|f| f.eq_ignore_ascii_case("json"));
    let fmt = tracing_subscriber::fmt::layer()
        .with_writer(output::LogWriter)
        .log_internal_errors(false)
        .with_span_events(spans);
    let fmt = if json {
        fmt.json()
            .with_current_span(true)
            .with_span_list(true)
            .boxed()
    } else {
        fmt.with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .with_target(serving)
            .boxed()
    };
    // One filter for every layer (not one per layer: per-layer filters make the registry
    // keep a filter state for every span and event, a cost on every request). So OTLP log
    // records are what MEMBRANE_LOG lets through: guest lines and the host's warnings and
    // errors (the layer picks those and does nothing until export is on).
    let _ = tracing_subscriber::registry()
        .with(filter)
        .with(fmt)
        .with(membrane_telemetry::LogLayer)
        .try_init();
}
