//! Standard streams: stdout and stderr each go to the log, the host's own stream, or nowhere;
//! stdin is closed (reads see end of file) except for the entry module of `membrane run`.
//!
//! Every call may write at most `limits.output` bytes to stdout and stderr together, and
//! produce at most [`MAX_LOG_LINES`](crate::limits::output::MAX_LOG_LINES) log events (see
//! [`crate::limits::output`]); past that, output is dropped and counted, and the host logs
//! how much was dropped.
//!
//! The log route turns guest output into `tracing` events (target `membrane::guest`, fields
//! `module` and `stream`), one per line. Lines are cut at [`MAX_LINE`] bytes so that a guest
//! cannot make the host buffer without bound; the rest of an over-long line is dropped and
//! the event says how much was cut. A flush does not end a line (unbuffered writers such as
//! Rust's `eprintln!` flush after every piece); a last line without a newline is logged when
//! the instance ends.

use std::any::Any;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use bytes::Bytes;
use wasmtime_wasi::WasiCtxBuilder;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamResult};

use crate::error::{Problems, Result};
use crate::limits::output::OutputBudget;
use crate::sanitize::Quoted;
use crate::spec::OutputRoute;
use crate::unit::{InstanceCx, ModuleCx, Unit, UnitDef};

/// The longest line the log route keeps, in bytes.
pub const MAX_LINE: usize = 4096;

pub const DEF: UnitDef = UnitDef {
    validate: |_, _| {},
    prepare,
};

fn prepare(cx: &ModuleCx<'_>, _: &mut Problems) -> Option<Box<dyn Unit>> {
    Some(Box::new(Stdio {
        stdout: cx.spec.grants.stdout,
        stderr: cx.spec.grants.stderr,
    }))
}

#[derive(Debug)]
struct Stdio {
    stdout: OutputRoute,
    stderr: OutputRoute,
}

impl Stdio {
    fn stream(
        route: OutputRoute,
        stream: &'static str,
        cx: &InstanceCx<'_>,
    ) -> Option<GuestOutput> {
        // The output limit's budget; without it (no such limit) output is not budgeted.
        let budget = cx
            .slots
            .get::<Arc<OutputBudget>>()
            .cloned()
            .unwrap_or_else(|| {
                let b = Arc::new(OutputBudget::default());
                b.reset(u64::MAX);
                b
            });
        match route {
            OutputRoute::Log => Some(GuestOutput::log(cx.module.clone(), stream, budget)),
            OutputRoute::Inherit => Some(GuestOutput::host(stream == "stderr", budget)),
            OutputRoute::Discard => None,
        }
    }
}

impl Unit for Stdio {
    fn apply(&self, wasi: &mut WasiCtxBuilder, cx: &InstanceCx<'_>) -> Result<()> {
        match Self::stream(self.stdout, "stdout", cx) {
            Some(out) => wasi.stdout(out),
            None => wasi.stdout(std::io::empty()),
        };
        match Self::stream(self.stderr, "stderr", cx) {
            Some(out) => wasi.stderr(out),
            None => wasi.stderr(std::io::empty()),
        };
        if cx.run.is_some_and(|r| r.inherit_stdin) {
            wasi.inherit_stdin();
        }
        Ok(())
    }

    fn as_any(&self) -> &dyn Any {
        self
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
                tracing::info!(target: "membrane::guest", module = %module, trace_id = crate::telemetry::trace_field(), stream, cut, text = %text);
            } else {
                tracing::info!(target: "membrane::guest", module = %module, trace_id = crate::telemetry::trace_field(), stream, text = %text);
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
                tracing::info!(target: "membrane::guest", module = %module, trace_id = crate::telemetry::trace_field(), stream, text = "");
            } else {
                tracing::info!(target: "membrane::guest", module = %module, trace_id = crate::telemetry::trace_field(), stream, repeated = run, text = "");
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
