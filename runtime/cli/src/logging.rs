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
    let filter =
        EnvFilter::try_from_env("MEMBRANE_LOG").unwrap_or_else(|_| EnvFilter::new(default));
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
            .with_filter(filter)
            .boxed()
    } else {
        fmt.with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .with_target(serving)
            .with_filter(filter)
            .boxed()
    };
    // Guest lines and the host's warnings as OTLP log records, when export is on (the
    // layer does nothing until it is, and its own filter is independent of MEMBRANE_LOG).
    // Events only, never spans: a span this filter enabled would cost every call.
    let otel = membrane_telemetry::LogLayer.with_filter(
        tracing_subscriber::filter::filter_fn(|m| {
            m.is_event()
                && (m.target() == "membrane::guest"
                    || (m.target().starts_with("membrane") && *m.level() <= tracing::Level::WARN))
        })
        .with_max_level_hint(tracing::Level::INFO),
    );
    let _ = tracing_subscriber::registry()
        .with(fmt)
        .with(otel)
        .try_init();
}
