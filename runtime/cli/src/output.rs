//! The command's own output, which must never take the process down.
//!
//! `println!` and `eprintln!` panic when the stream is a full disk or a closed pipe, and
//! tracing-subscriber falls back to `eprintln!` when it cannot write a log line. Here:
//! - results go to stdout through [`out`]; a closed pipe (`membrane call ... | head -0`)
//!   ends the command quietly with status 141, as a shell reports a process killed by
//!   SIGPIPE; any other write failure is reported on stderr with status 1;
//! - messages and log lines go to stderr through [`say`] and [`LogWriter`], which drop
//!   what cannot be written and count it.
//!
//! A stream that is closed when the command starts (`2>&-`) is reopened on /dev/null by
//! Rust's runtime before `main`, so that no file the command opens can take its number; the
//! command then behaves as with `2>/dev/null`.

use std::io::Write;
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::membrane;

/// Bytes of messages and log lines stderr could not take.
static STDERR_DROPPED: AtomicU64 = AtomicU64::new(0);

/// The status of a command whose reader went away, as shells report SIGPIPE.
pub const BROKEN_PIPE: u8 = 141;

/// Why the command stopped writing its results.
#[derive(Debug)]
pub struct OutputFailed(pub std::io::Error);

impl OutputFailed {
    /// The exit status to end with, after saying why when it is worth saying.
    pub fn exit_code(&self) -> ExitCode {
        if self.0.kind() == std::io::ErrorKind::BrokenPipe {
            ExitCode::from(BROKEN_PIPE)
        } else {
            say(&format!(
                "error[io]: cannot write the results to stdout: {}",
                self.0
            ));
            ExitCode::FAILURE
        }
    }
}

impl std::fmt::Display for OutputFailed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "cannot write to stdout: {}", self.0)
    }
}

impl std::error::Error for OutputFailed {}

/// Writes `text` to stdout and flushes it.
pub fn out(text: &str) -> Result<(), OutputFailed> {
    let mut stdout = std::io::stdout().lock();
    stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
        .map_err(OutputFailed)
}

/// Writes one line to stderr; if stderr cannot take it, the line is dropped and counted.
pub fn say(line: &str) {
    let mut err = std::io::stderr().lock();
    if err
        .write_all(line.as_bytes())
        .and_then(|()| err.write_all(b"\n"))
        .is_err()
    {
        STDERR_DROPPED.fetch_add(line.len() as u64 + 1, Ordering::Relaxed);
    }
}

/// The log's writer: stderr, where a failed write drops the line instead of failing.
pub struct LogWriter;

impl Write for LogWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if std::io::stderr().write_all(buf).is_err() {
            STDERR_DROPPED.fetch_add(buf.len() as u64, Ordering::Relaxed);
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        let _ = std::io::stderr().flush();
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for LogWriter {
    type Writer = LogWriter;

    fn make_writer(&'a self) -> Self::Writer {
        LogWriter
    }
}

/// Prints an error and its causes. Every piece goes through `membrane::describe`, which
/// escapes what a guest may have put in it (names in a backtrace, text in a message).
pub fn report(e: &anyhow::Error) {
    let kind = e
        .chain()
        .find_map(|c| c.downcast_ref::<membrane::Error>())
        .map(|m| format!("[{}]", m.kind()))
        .unwrap_or_default();
    let mut causes = e.chain();
    let mut said = String::new();
    if let Some(first) = causes.next() {
        said = membrane::describe(first);
        say(&format!("error{kind}: {said}"));
    }
    for cause in causes {
        // A cause the message already quotes whole (a registry's typed error) adds nothing.
        let text = membrane::describe(cause);
        if !said.contains(&text) {
            say(&format!("  caused by: {text}"));
        }
    }
}
