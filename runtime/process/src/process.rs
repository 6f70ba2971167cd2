//! One worker process, seen from the host: starting it, its connections, its end.
//!
//! The host starts the worker program with two sockets: fd 3, the control socket (the
//! start message, the worker's log events, and its end, seen as end of file), and fd 4,
//! over which each new connection's socket is passed (one connection per concurrent call;
//! the worker serves each on a thread of its own with an instance of its own). Its stdin
//! is /dev/null and its stdout and stderr are pipes the host reads (`worker/pipes.rs`);
//! no other descriptor of the host reaches it (`sandbox/descriptors.rs`). A thread per
//! process reads the control socket, logs the worker's events (`worker/relog.rs`), and
//! reaps the process when it ends, so no zombie is left; a worker that breaks the protocol
//! there is killed. The environment is not passed on: the worker's guest sees only its
//! granted variables, and the worker nothing else.

use std::io;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::WORKER_ENV;
use super::channel::{Accept, Channel, RecvError};
use super::relog::Relog;
use super::ring::Rings;
use crate::error::{Error, ErrorKind, Result};
use crate::wire::message::{FAILED, HELLO, LOG, READY, parse_error};

/// How long a worker may take to start (compiled code is deserialized, not compiled).
const START_TIME: Duration = Duration::from_secs(20);

/// How long the host waits for the reaper of a worker it killed: a hang guard, the reaper
/// ends as soon as the killed process's sockets and pipes close.
const SETTLE_TIME: Duration = Duration::from_secs(5);

/// A running worker.
pub(crate) struct Process {
    pub(crate) pid: u32,
    module: Arc<str>,
    /// Passes each new connection's socket.
    fdpass: Mutex<UnixStream>,
    /// The host's end of the control socket (the reaper reads a duplicate): shut down to
    /// ask the worker to end.
    control: UnixStream,
    /// Connections not serving a call now.
    idle: Mutex<Vec<Channel>>,
    /// What the host accepts on its connections.
    accept: Accept,
    /// Set when the process ended (or was killed): its connections fail, the next call
    /// starts another.
    dead: Arc<Ended>,
}

/// The end of a process, shared with its reaper thread.
pub(crate) struct Ended {
    flag: AtomicBool,
    /// The exit status once reaped, and everything the worker wrote logged; `None` while
    /// it runs. Held while signalling, so a signal never reaches a reaped (and perhaps
    /// reused) pid.
    status: Mutex<Option<String>>,
}

impl Process {
    /// Starts `program` as the worker of `module`, sends it `hello` and waits until it has
    /// locked itself down and is ready. What it logs and writes goes to `relog`; its
    /// results and linked calls' arguments may be `values` bytes long.
    pub(crate) fn start(
        program: &Path,
        module: &Arc<str>,
        hello: &[u8],
        relog: &Arc<Relog>,
        values: usize,
    ) -> Result<Process> {
        let fail = |what: &str, e: io::Error| {
            Error::new(
                ErrorKind::Unavailable,
                format!(
                    "module `{module}`: cannot start its worker process ({}): {what}",
                    program.display()
                ),
            )
            .with_module(&**module)
            .with_source(e)
        };
        let (control, child_control) = UnixStream::pair().map_err(|e| fail("no socket pair", e))?;
        let (fdpass, child_fdpass) = UnixStream::pair().map_err(|e| fail("no socket pair", e))?;
        let (a, b) = (child_control.as_raw_fd(), child_fdpass.as_raw_fd());
        let mut cmd = Command::new(program);
        cmd.env_clear()
            .env(WORKER_ENV, "3")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        // The documented switch that simulates a kernel without Landlock reaches the worker.
        if let Some(v) = std::env::var_os(crate::sandbox::LANDLOCK_OVERRIDE_ENV) {
            cmd.env(crate::sandbox::LANDLOCK_OVERRIDE_ENV, v);
        }
        // SAFETY: between fork and exec only dup2, fcntl, close_range and the reads of a
        // directory into a buffer on the stack run, all async-signal-safe; nothing
        // allocates.
        unsafe {
            cmd.pre_exec(move || {
                place(a, b)?;
                crate::sandbox::descriptors::close_on_exec_from(5)
            });
        }
        let mut child = cmd.spawn().map_err(|e| fail("spawn failed", e))?;
        drop((child_control, child_fdpass));
        let pid = child.id();
        // Read from the start: a worker that writes before it is ready must not block.
        let pipes = match (child.stdout.take(), child.stderr.take()) {
            (Some(out), Some(err)) => super::pipes::read(out, err, relog.clone(), pid),
            _ => Err(io::Error::other("no pipes")),
        };
        let pipes = match pipes {
            Ok(p) => p,
            Err(e) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(fail("its output cannot be read", e));
            }
        };
        let control_end = control.try_clone().map_err(|e| fail("no descriptor", e))?;
        let accept = Accept::FromWorker { values };
        let mut ch = Channel::new(control, accept);
        let ready = handshake(&mut ch, hello, module, relog);
        let applied = match ready {
            Ok(applied) => applied,
            Err(e) => {
                let _ = child.kill();
                let _ = child.wait();
                let _ = pipes.join();
                relog.flush();
                return Err(e);
            }
        };
        let dead = Arc::new(Ended {
            flag: AtomicBool::new(false),
            status: Mutex::new(None),
        });
        let reaper = dead.clone();
        let (name, relog) = (module.clone(), relog.clone());
        std::thread::Builder::new()
            .name(format!("membrane-worker-{pid}"))
            .spawn(move || {
                let pipes = pipes;
                watch(ch, child, pipes, reaper, name, relog)
            })
            .map_err(|e| fail("no thread to watch it", e))?;
        tracing::debug!(target: "membrane::worker", module = %module, pid, sandbox = %applied, "worker started");
        Ok(Process {
            pid,
            module: module.clone(),
            fdpass: Mutex::new(fdpass),
            control: control_end,
            idle: Mutex::new(Vec::new()),
            accept,
            dead,
        })
    }

    /// Whether the process has ended or was killed.
    pub(crate) fn is_dead(&self) -> bool {
        self.dead.flag.load(Ordering::Acquire)
    }

    /// A connection for one call: an idle one, or a new one.
    pub(crate) fn channel(&self) -> Result<Channel> {
        if let Some(ch) = self.idle.lock().unwrap_or_else(|p| p.into_inner()).pop() {
            return Ok(ch);
        }
        let (mine, theirs) = UnixStream::pair().map_err(|e| self.broken(e))?;
        // The connection's shared-memory rings: the worker gets the memfd with the socket.
        let (rings, memfd) = Rings::create().map_err(|e| self.broken(e))?;
        let fdpass = self.fdpass.lock().unwrap_or_else(|p| p.into_inner());
        let fds = [theirs.as_fd(), memfd.as_fd()];
        let mut space = [std::mem::MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(2))];
        let mut control = rustix::net::SendAncillaryBuffer::new(&mut space);
        control.push(rustix::net::SendAncillaryMessage::ScmRights(&fds));
        rustix::net::sendmsg(
            &*fdpass,
            &[io::IoSlice::new(&[1])],
            &mut control,
            rustix::net::SendFlags::NOSIGNAL,
        )
        .map_err(|e| self.broken(e.into()))?;
        Ok(Channel::with_rings(mine, self.accept, rings))
    }

    /// Gives a connection back after a call that ended cleanly.
    pub(crate) fn put(&self, ch: Channel) {
        if !self.is_dead() {
            self.idle.lock().unwrap_or_else(|p| p.into_inner()).push(ch);
        }
    }

    /// Ends the process now (SIGKILL); its reaper collects it.
    pub(crate) fn kill(&self) {
        tracing::debug!(target: "membrane::worker", module = %self.module, pid = self.pid, "killing the worker");
        self.dead.flag.store(true, Ordering::Release);
        let status = self.dead.status.lock().unwrap_or_else(|p| p.into_inner());
        if status.is_none()
            && let Some(pid) = rustix::process::Pid::from_raw(self.pid as i32)
        {
            let _ = rustix::process::kill_process(pid, rustix::process::Signal::KILL);
        }
        drop(status);
        self.idle.lock().unwrap_or_else(|p| p.into_inner()).clear();
    }

    /// Asks the worker to end: its connections close (instances end, their last output is
    /// logged), then its control socket; it is killed if it has not exited within `wait`.
    /// Returns once it is reaped and everything it said is logged.
    pub(crate) fn stop(&self, wait: Duration) {
        self.idle.lock().unwrap_or_else(|p| p.into_inner()).clear();
        let _ = self.control.shutdown(std::net::Shutdown::Write);
        if self.settled(wait) {
            return;
        }
        self.kill();
        self.settled(SETTLE_TIME);
    }

    /// Waits up to `wait` for the reaper to have finished; whether it has.
    fn settled(&self, wait: Duration) -> bool {
        let until = Instant::now() + wait;
        loop {
            if self
                .dead
                .status
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .is_some()
            {
                return true;
            }
            if Instant::now() >= until {
                return false;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    /// Marks the process dead after a broken connection, and says so as an error.
    pub(crate) fn crashed(&self, what: &str) -> Error {
        self.kill();
        // Give the reaper a moment to collect the status, for the message.
        let until = Instant::now() + Duration::from_millis(20);
        let mut status = None;
        while Instant::now() < until {
            status = self
                .dead
                .status
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .clone();
            if status.is_some() {
                break;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        Error::new(
            ErrorKind::Crashed,
            format!(
                "module `{}`: its worker process (pid {}) {what}{}; it is restarted for the next call",
                self.module,
                self.pid,
                status.map(|s| format!(" ({s})")).unwrap_or_default()
            ),
        )
        .with_module(&*self.module)
    }

    fn broken(&self, e: io::Error) -> Error {
        self.kill();
        Error::new(
            ErrorKind::Crashed,
            format!(
                "module `{}`: its worker process (pid {}) cannot be reached: {e}",
                self.module, self.pid
            ),
        )
        .with_module(&*self.module)
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.kill();
    }
}

/// In the child between fork and exec: the control socket becomes fd 3 and the fd-passing
/// socket fd 4, both kept across exec.
fn place(control: i32, fdpass: i32) -> io::Result<()> {
    // Move a descriptor out of the way first if it sits on a target number.
    let mut control = control;
    if control == 4 {
        control = dup_above(control)?;
    }
    let mut fdpass = fdpass;
    if fdpass == 3 {
        fdpass = dup_above(fdpass)?;
    }
    for (from, to) in [(control, 3), (fdpass, 4)] {
        // SAFETY: `from` is open in the child; `to` is taken over, never closed here.
        let src = unsafe { std::os::fd::BorrowedFd::borrow_raw(from) };
        let mut dst = std::mem::ManuallyDrop::new(unsafe { OwnedFd::from_raw_fd(to) });
        if from == to {
            rustix::io::fcntl_setfd(src, rustix::io::FdFlags::empty())?;
        } else {
            rustix::io::dup2(src, &mut dst)?;
        }
    }
    Ok(())
}

fn dup_above(fd: i32) -> io::Result<i32> {
    // SAFETY: `fd` is open in the child.
    let src = unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) };
    let new = rustix::io::fcntl_dupfd_cloexec(src, 10)?;
    Ok(std::mem::ManuallyDrop::new(new).as_raw_fd())
}

/// Sends the start message and waits for the worker to be ready.
fn handshake(
    ch: &mut Channel,
    hello: &[u8],
    module: &Arc<str>,
    relog: &Relog,
) -> Result<serde_json::Value> {
    let lost = |kind: ErrorKind, what: String| {
        Error::new(
            kind,
            format!("module `{module}`: its worker process {what}"),
        )
        .with_module(&**module)
    };
    ch.send(HELLO, hello).map_err(|e| {
        lost(
            ErrorKind::Unavailable,
            format!("did not take its start message: {e}"),
        )
    })?;
    let until = Instant::now() + START_TIME;
    loop {
        match ch.recv(Some(until), Duration::ZERO) {
            Ok((READY, body)) => return Ok(serde_json::from_slice(body).unwrap_or_default()),
            Ok((FAILED, body)) => {
                let e = parse_error(body).map_err(|why| {
                    lost(
                        ErrorKind::Crashed,
                        format!("broke the protocol (a malformed error: {why})"),
                    )
                })?;
                return Err(match e.module() {
                    Some(_) => e,
                    None => e.with_module(&**module),
                });
            }
            Ok((LOG, body)) => relog.outside(body),
            Ok((tag, _)) => {
                return Err(lost(
                    ErrorKind::Crashed,
                    format!("broke the protocol (message {tag} before it was ready)"),
                ));
            }
            Err(RecvError::TimedOut) => {
                return Err(lost(
                    ErrorKind::Unavailable,
                    format!(
                        "did not become ready within {START_TIME:?}; if this program embeds Membrane, \
                         call membrane::worker::main_if_worker() first in main, or set Config::worker_program"
                    ),
                ));
            }
            Err(RecvError::Closed) => {
                return Err(lost(
                    ErrorKind::Unavailable,
                    "exited during its start; if this program embeds Membrane, call \
                     membrane::worker::main_if_worker() first in main, or set Config::worker_program"
                        .into(),
                ));
            }
            Err(RecvError::Broken(e)) => {
                return Err(lost(
                    ErrorKind::Crashed,
                    format!("broke the protocol ({e})"),
                ));
            }
        }
    }
}

/// The reaper: logs the worker's events until the control socket ends or the worker
/// breaks the protocol there (it is killed then), collects the exit status, and waits for
/// the last of its output.
fn watch(
    mut ch: Channel,
    mut child: Child,
    pipes: JoinHandle<()>,
    dead: Arc<Ended>,
    module: Arc<str>,
    relog: Arc<Relog>,
) {
    let broke = loop {
        match ch.recv(None, Duration::ZERO) {
            Ok((LOG, body)) => relog.outside(body),
            Ok((tag, _)) => break Some(format!("message {tag} on its control socket")),
            Err(RecvError::Broken(why)) => break Some(why),
            Err(RecvError::Closed | RecvError::TimedOut) => break None,
        }
    };
    dead.flag.store(true, Ordering::Release);
    let pid = child.id();
    if let Some(why) = &broke {
        tracing::warn!(target: "membrane::worker", module = %module, pid, reason = %crate::sanitize::escape(why), "the worker broke the protocol; it is killed and restarted for the next call");
    }
    let mut status = dead.status.lock().unwrap_or_else(|p| p.into_inner());
    // A worker that broke the protocol, or closed its end and went on, does not live on;
    // one that is exiting is not harmed.
    let _ = child.kill();
    let text = match child.wait() {
        Ok(s) => describe(s),
        Err(e) => format!("its status is unknown: {e}"),
    };
    // The pipes end with the process: its last lines, then the count of what was dropped.
    let _ = pipes.join();
    relog.flush();
    tracing::debug!(target: "membrane::worker", module = %module, pid, status = %text, "worker ended");
    *status = Some(text);
}

fn describe(status: std::process::ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exit status {code}"),
        (None, Some(9)) => "killed by SIGKILL".into(),
        (None, Some(sig)) => format!("killed by signal {sig}"),
        _ => status.to_string(),
    }
}
