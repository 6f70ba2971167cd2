//! A worker's stdout and stderr: pipes that the host reads, never the host's own streams.
//!
//! The host's stdout carries `membrane call`'s results and its stderr the host's log, so
//! a worker writing there could forge either. The worker itself writes nothing to them (a
//! guest's `inherit` output is logged in a worker, see `worker/mod.rs`); what does arrive
//! (a panic message, or anything a compromised worker writes) is read here, one thread per
//! worker, cut into lines of at most [`MAX_LINE`] bytes and logged as `membrane::worker`
//! warnings of the module, escaped and within the worker's budget outside calls
//! (`worker/relog.rs`). The pipes are always drained, so a worker never blocks on them.

use std::io;
use std::os::fd::OwnedFd;
use std::process::{ChildStderr, ChildStdout};
use std::sync::Arc;
use std::thread::JoinHandle;

use rustix::event::{PollFd, PollFlags};

use super::relog::Relog;
use crate::capability::stdio::MAX_LINE;

/// Starts reading a worker's two pipes until both end (the worker exited).
pub(crate) fn read(
    stdout: ChildStdout,
    stderr: ChildStderr,
    relog: Arc<Relog>,
    pid: u32,
) -> io::Result<JoinHandle<()>> {
    let streams = [
        Stream::new(stdout.into(), "stdout"),
        Stream::new(stderr.into(), "stderr"),
    ];
    std::thread::Builder::new()
        .name(format!("membrane-worker-{pid}-out"))
        .spawn(move || run(streams, &relog))
}

/// One pipe and the line it is in the middle of.
struct Stream {
    fd: OwnedFd,
    name: &'static str,
    open: bool,
    line: Vec<u8>,
    /// Bytes dropped from the current line past [`MAX_LINE`].
    cut: usize,
}

impl Stream {
    fn new(fd: OwnedFd, name: &'static str) -> Stream {
        Stream {
            fd,
            name,
            open: true,
            line: Vec::new(),
            cut: 0,
        }
    }

    fn read(&mut self, buf: &mut [u8], relog: &Relog) {
        match rustix::io::read(&self.fd, &mut *buf) {
            Ok(0) => self.open = false,
            Ok(n) => self.feed(&buf[..n], relog),
            Err(rustix::io::Errno::INTR | rustix::io::Errno::AGAIN) => {}
            Err(_) => self.open = false,
        }
    }

    fn feed(&mut self, mut bytes: &[u8], relog: &Relog) {
        while !bytes.is_empty() {
            let (piece, ends) = match bytes.iter().position(|b| *b == b'\n') {
                Some(i) => (&bytes[..i], Some(i + 1)),
                None => (bytes, None),
            };
            let keep = piece.len().min(MAX_LINE - self.line.len());
            self.line.extend_from_slice(&piece[..keep]);
            self.cut += piece.len() - keep;
            match ends {
                Some(next) => {
                    self.end_line(relog);
                    bytes = &bytes[next..];
                }
                None => bytes = &[],
            }
        }
    }

    fn end_line(&mut self, relog: &Relog) {
        // A bare newline says nothing.
        if !self.line.is_empty() || self.cut > 0 {
            relog.stream_line(self.name, &self.line, self.cut);
        }
        self.line.clear();
        self.cut = 0;
    }
}

fn run(mut streams: [Stream; 2], relog: &Relog) {
    let mut buf = vec![0u8; 16 << 10];
    while streams.iter().any(|s| s.open) {
        let ready: Vec<bool> = {
            let mut fds: Vec<PollFd<'_>> = streams
                .iter()
                .filter(|s| s.open)
                .map(|s| PollFd::new(&s.fd, PollFlags::IN))
                .collect();
            match rustix::event::poll(&mut fds, None) {
                Ok(_) | Err(rustix::io::Errno::INTR) => {}
                Err(_) => return,
            }
            fds.iter().map(|f| !f.revents().is_empty()).collect()
        };
        for (s, ready) in streams.iter_mut().filter(|s| s.open).zip(ready) {
            if ready {
                s.read(&mut buf, relog);
            }
        }
    }
    // A last line without a newline.
    for s in &mut streams {
        if !s.line.is_empty() || s.cut > 0 {
            s.end_line(relog);
        }
    }
}
