//! Standard streams: stdout and stderr each go to the log, the host's own stream, or nowhere;
//! stdin is closed (reads see end of file) except for the entry module of `membrane run`.
//!
//! Every call may write at most `limits.output` bytes to stdout and stderr together; past
//! that, output is dropped and counted, and the host logs how much was dropped.
//!
//! The log route turns guest output into `tracing` events (target `membrane::guest`, fields
//! `module` and `stream`), one per line. Lines are cut at [`MAX_LINE`] bytes so that a guest
//! cannot make the host buffer without bound; the rest of an over-long line is dropped and
//! the event says how much was cut. A flush does not end a line (unbuffered writers such as
//! Rust's `eprintln!` flush after every piece); a last line without a newline is logged when
//! the instance ends.

use std::pin::Pin;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use bytes::Bytes;
use wasmtime_wasi::WasiCtxBuilder;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamResult};

use super::{Capability, InstanceCx};
use crate::error::{Problems, Result};
use crate::sanitize::Quoted;
use crate::spec::{Grants, OutputRoute};

/// The longest line the log route keeps, in bytes.
pub const MAX_LINE: usize = 4096;

/// The most log events one call may produce on the `log` route; later lines are dropped
/// and counted. Bytes are bounded by `limits.output`, but a guest printing bare newlines
/// would otherwise turn every byte into a host log line of a hundred bytes.
pub const MAX_LOG_LINES: u32 = 10_000;

/// Bytes of output the current call may still write, shared by an instance's streams, and
/// the log lines it may still produce.
#[derive(Debug, Default)]
pub(crate) struct OutputBudget {
    left: AtomicU64,
    dropped: AtomicU64,
    lines_left: AtomicU32,
    lines_dropped: AtomicU64,
}

impl OutputBudget {
    /// Starts a call's budget.
    pub(crate) fn reset(&self, limit: u64) {
        self.left.store(limit, Ordering::Relaxed);
        self.dropped.store(0, Ordering::Relaxed);
        self.lines_left.store(MAX_LOG_LINES, Ordering::Relaxed);
        self.lines_dropped.store(0, Ordering::Relaxed);
    }

    /// Bytes dropped since the last reset.
    pub(crate) fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// Log lines dropped since the last reset: past [`MAX_LOG_LINES`], or because the log
    /// could not take them.
    pub(crate) fn lines_dropped(&self) -> u64 {
        self.lines_dropped.load(Ordering::Relaxed)
    }

    /// How many of `n` bytes may be written.
    fn take(&self, n: usize) -> usize {
        let n = n as u64;
        let granted = self
            .left
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |left| {
                Some(left.saturating_sub(n))
            })
            .map_or(0, |left| left.min(n));
        self.dropped.fetch_add(n - granted, Ordering::Relaxed);
        granted as usize
    }

    /// Whether one more log line may be emitted; counts it as dropped when not.
    fn take_line(&self) -> bool {
        let ok = self
            .lines_left
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |left| {
                left.checked_sub(1)
            })
            .is_ok();
        if !ok {
            self.drop_line();
        }
        ok
    }

    fn drop_line(&self) {
        self.lines_dropped.fetch_add(1, Ordering::Relaxed);
    }
}

#[derive(Debug)]
pub(crate) struct Stdio {
    stdout: OutputRoute,
    stderr: OutputRoute,
}

impl Stdio {
    pub(crate) fn prepare(_module: &str, grants: &Grants, _problems: &mut Problems) -> Self {
        Stdio {
            stdout: grants.stdout,
            stderr: grants.stderr,
        }
    }
}

impl Capability for Stdio {
    fn apply(&self, wasi: &mut WasiCtxBuilder, cx: &InstanceCx<'_>) -> Result<()> {
        match self.stdout {
            OutputRoute::Log => wasi.stdout(GuestOutput::log(
                cx.module.clone(),
                "stdout",
                cx.output.clone(),
            )),
            OutputRoute::Inherit => wasi.stdout(GuestOutput::host(false, cx.output.clone())),
            OutputRoute::Discard => wasi.stdout(std::io::empty()),
        };
        match self.stderr {
            OutputRoute::Log => wasi.stderr(GuestOutput::log(
                cx.module.clone(),
                "stderr",
                cx.output.clone(),
            )),
            OutputRoute::Inherit => wasi.stderr(GuestOutput::host(true, cx.output.clone())),
            OutputRoute::Discard => wasi.stderr(std::io::empty()),
        };
        if cx.run.is_some_and(|r| r.inherit_stdin) {
            wasi.inherit_stdin();
        }
        Ok(())
    }
}

/// Splits a byte stream into lines and logs each one.
///
/// The guest's text goes into the event's `text` field, after the host's own fields
/// (`module`, `stream`), escaped and quoted, so that neither a terminal nor a log parser can
/// mistake any of it for the host's. A run of empty lines becomes one event with
/// `repeated=N`. Logging never panics and never fails the guest's write: a line the log
/// cannot take is dropped and counted.
#[derive(Debug)]
struct LineLogger {
    module: Arc<str>,
    stream: &'static str,
    line: Vec<u8>,
    /// Bytes dropped from the current line after it reached `MAX_LINE`.
    cut: usize,
    /// Empty lines seen since the last line with text, not yet logged.
    empty_run: u64,
    budget: Arc<OutputBudget>,
}

impl LineLogger {
    fn new(module: Arc<str>, stream: &'static str, budget: Arc<OutputBudget>) -> Self {
        LineLogger {
            module,
            stream,
            line: Vec::new(),
            cut: 0,
            empty_run: 0,
            budget,
        }
    }

    fn write(&mut self, mut bytes: &[u8]) {
        while !bytes.is_empty() {
            match bytes.iter().position(|b| *b == b'\n') {
                Some(i) => {
                    self.push(&bytes[..i]);
                    self.end_line();
                    bytes = &bytes[i + 1..];
                }
                None => {
                    self.push(bytes);
                    bytes = &[];
                }
            }
        }
    }

    fn push(&mut self, bytes: &[u8]) {
        let room = MAX_LINE - self.line.len();
        let keep = bytes.len().min(room);
        self.line.extend_from_slice(&bytes[..keep]);
        self.cut += bytes.len() - keep;
    }

    fn end_line(&mut self) {
        if self.line.is_empty() && self.cut == 0 {
            self.empty_run += 1;
            return;
        }
        self.emit_empty_run();
        let text = String::from_utf8_lossy(&self.line).into_owned();
        let text = text.strip_suffix('\r').unwrap_or(&text);
        let cut = self.cut;
        self.line.clear();
        self.cut = 0;
        if !self.budget.take_line() {
            return;
        }
        let (module, stream) = (&*self.module, self.stream);
        let text = Quoted(text);
        self.log(|| {
            if cut > 0 {
                tracing::info!(target: "membrane::guest", module = %module, stream, cut, text = %text);
            } else {
                tracing::info!(target: "membrane::guest", module = %module, stream, text = %text);
            }
        });
    }

    fn emit_empty_run(&mut self) {
        let run = std::mem::take(&mut self.empty_run);
        if run == 0 || !self.budget.take_line() {
            return;
        }
        let (module, stream) = (&*self.module, self.stream);
        self.log(|| {
            if run == 1 {
                tracing::info!(target: "membrane::guest", module = %module, stream, text = "");
            } else {
                tracing::info!(target: "membrane::guest", module = %module, stream, repeated = run, text = "");
            }
        });
    }

    /// Emits one event; a subscriber that panics (a failed write to a closed stderr, a
    /// full disk) costs the line, not the host.
    fn log(&self, emit: impl FnOnce()) {
        if std::panic::catch_unwind(std::panic::AssertUnwindSafe(emit)).is_err() {
            self.budget.drop_line();
        }
    }

    fn flush(&mut self) {
        if !self.line.is_empty() || self.cut > 0 {
            self.end_line();
        }
        self.emit_empty_run();
    }
}

impl Drop for LineLogger {
    fn drop(&mut self) {
        // Never log while unwinding: a second panic would abort the process.
        if !std::thread::panicking() {
            self.flush();
        }
    }
}

/// Where a guest's output goes once it is within the budget.
#[derive(Clone)]
enum Target {
    /// The `log` route: every stream handed to the guest shares one line buffer.
    Log(Arc<Mutex<LineLogger>>),
    /// The `inherit` route: the host's own stdout or stderr.
    Host { stderr: bool },
}

/// A stdout or stderr handed to the guest: writes within the call's output budget go to the
/// route's target, the rest is dropped and counted.
#[derive(Clone)]
struct GuestOutput {
    target: Target,
    budget: Arc<OutputBudget>,
}

impl GuestOutput {
    fn log(module: Arc<str>, stream: &'static str, budget: Arc<OutputBudget>) -> Self {
        let logger = LineLogger::new(module, stream, budget.clone());
        GuestOutput {
            target: Target::Log(Arc::new(Mutex::new(logger))),
            budget,
        }
    }

    fn host(stderr: bool, budget: Arc<OutputBudget>) -> Self {
        GuestOutput {
            target: Target::Host { stderr },
            budget,
        }
    }

    fn write_budgeted(&self, bytes: &[u8]) -> std::io::Result<()> {
        use std::io::Write;
        let n = self.budget.take(bytes.len());
        if n == 0 {
            return Ok(());
        }
        match &self.target {
            Target::Log(logger) => {
                logger
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .write(&bytes[..n]);
                Ok(())
            }
            Target::Host { stderr: true } => std::io::stderr().write_all(&bytes[..n]),
            Target::Host { stderr: false } => {
                let mut out = std::io::stdout();
                out.write_all(&bytes[..n])?;
                out.flush()
            }
        }
    }

    fn shutdown(&self) {
        if let Target::Log(logger) = &self.target {
            logger.lock().unwrap_or_else(|p| p.into_inner()).flush();
        }
    }
}

impl IsTerminal for GuestOutput {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for GuestOutput {
    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.clone())
    }

    fn async_stream(&self) -> Box<dyn tokio::io::AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }
}

#[wasmtime_wasi::async_trait]
impl Pollable for GuestOutput {
    async fn ready(&mut self) {}
}

impl OutputStream for GuestOutput {
    fn write(&mut self, bytes: Bytes) -> StreamResult<()> {
        self.write_budgeted(&bytes)
            .map_err(|e| wasmtime_wasi::p2::StreamError::LastOperationFailed(e.into()))
    }

    fn flush(&mut self) -> StreamResult<()> {
        Ok(())
    }

    fn check_write(&mut self) -> StreamResult<usize> {
        Ok(64 * 1024)
    }
}

impl tokio::io::AsyncWrite for GuestOutput {
    fn poll_write(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Poll::Ready(self.write_budgeted(buf).map(|_| buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        self.shutdown();
        Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_output_budget_drops_and_counts() {
        let b = OutputBudget::default();
        b.reset(10);
        assert_eq!(b.take(4), 4);
        assert_eq!(b.take(10), 6);
        assert_eq!(b.take(3), 0);
        assert_eq!(b.dropped(), 7);
        b.reset(1);
        assert_eq!(b.dropped(), 0);
    }

    #[test]
    fn lines_are_split_and_capped() {
        let mut l = LineLogger::new("m".into(), "stdout", Arc::default());
        l.write(b"a\nb");
        assert_eq!(l.line, b"b");
        l.write(&vec![b'x'; MAX_LINE * 2]);
        assert_eq!(l.line.len(), MAX_LINE);
        assert_eq!(l.cut, MAX_LINE * 2 + 1 - MAX_LINE);
        l.write(b"\n");
        assert!(l.line.is_empty());
        assert_eq!(l.cut, 0);
    }
}
