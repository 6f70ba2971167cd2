//! The bounded queue between the calls and the exporter: a call never waits on it. What
//! does not fit is dropped and counted ([`dropped`]), so a collector that is down or slow
//! costs calls nothing but the records it loses.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError};

use super::record::{LogRecord, SpanRecord};
use super::sampler::Sampler;

/// What the queue carries.
#[derive(Debug)]
pub enum Signal {
    /// A span that ended. Unsampled spans travel too (their metrics count them), marked so
    /// by their context.
    Span(SpanRecord),
    /// A log record.
    Log(LogRecord),
    /// Export everything queued before this, then answer.
    Flush(SyncSender<()>),
}

struct Installed {
    tx: SyncSender<Signal>,
    sampler: Sampler,
}

static INSTALLED: OnceLock<Installed> = OnceLock::new();
static DROPPED_SPANS: AtomicU64 = AtomicU64::new(0);
static DROPPED_LOGS: AtomicU64 = AtomicU64::new(0);

/// Turns telemetry on for this process: spans and logs are queued (at most `capacity`
/// waiting) for the receiver returned, which the exporter drains. Once per process: a
/// second call is refused (`None`).
pub fn install(capacity: usize, sampler: Sampler) -> Option<Receiver<Signal>> {
    let (tx, rx) = std::sync::mpsc::sync_channel(capacity.max(1));
    INSTALLED.set(Installed { tx, sampler }).ok()?;
    Some(rx)
}

/// Whether telemetry is on (one atomic load: the only cost when it is off).
#[inline]
pub fn enabled() -> bool {
    INSTALLED.get().is_some()
}

/// The sampler of new traces, when telemetry is on.
pub fn sampler() -> Option<&'static Sampler> {
    INSTALLED.get().map(|i| &i.sampler)
}

/// Queues a span, or counts it dropped when the queue is full.
pub fn span(record: SpanRecord) {
    if let Some(i) = INSTALLED.get()
        && i.tx.try_send(Signal::Span(record)).is_err()
    {
        DROPPED_SPANS.fetch_add(1, Ordering::Relaxed);
    }
}

/// Queues a log record, or counts it dropped when the queue is full.
pub fn log(record: LogRecord) {
    if let Some(i) = INSTALLED.get()
        && i.tx.try_send(Signal::Log(record)).is_err()
    {
        DROPPED_LOGS.fetch_add(1, Ordering::Relaxed);
    }
}

/// Asks the exporter to export what is queued and waits for it, at most `timeout`;
/// whether it answered in time.
pub fn flush(timeout: std::time::Duration) -> bool {
    let Some(i) = INSTALLED.get() else {
        return true;
    };
    let until = std::time::Instant::now() + timeout;
    let (ack, done) = std::sync::mpsc::sync_channel(1);
    let mut signal = Signal::Flush(ack);
    loop {
        match i.tx.try_send(signal) {
            Ok(()) => break,
            Err(TrySendError::Full(s)) if std::time::Instant::now() < until => {
                signal = s;
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
            Err(_) => return false,
        }
    }
    done.recv_timeout(until.saturating_duration_since(std::time::Instant::now()))
        .is_ok()
}

/// Counts records the exporter dropped itself (its export failed).
pub fn count_dropped(spans: u64, logs: u64) {
    DROPPED_SPANS.fetch_add(spans, Ordering::Relaxed);
    DROPPED_LOGS.fetch_add(logs, Ordering::Relaxed);
}

/// Spans and log records dropped so far: queued past its capacity, or lost with a failed
/// export.
pub fn dropped() -> (u64, u64) {
    (
        DROPPED_SPANS.load(Ordering::Relaxed),
        DROPPED_LOGS.load(Ordering::Relaxed),
    )
}
