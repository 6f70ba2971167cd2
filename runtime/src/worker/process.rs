//! One worker process, seen from the host: starting it, its connections, its end.
//!
//! The host starts the worker program with two sockets: fd 3, the control socket (the
//! start message, the worker's log events, and its end, seen as end of file), and fd 4,
//! over which each new connection's socket is passed (one connection per concurrent call;
//! the worker serves each on a thread of its own with an instance of its own). A thread per
//! process reads the control socket, re-emits the worker's log events, and reaps the
//! process when it ends, so no zombie is left. The environment is not passed on: the
//! worker's guest sees only its granted variables, and the worker nothing else.

use std::io;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::channel::{Channel, RecvError};
use super::{WORKER_ENV, log};
use crate::error::{Error, ErrorKind, Result};
use crate::metrics::ModuleMetrics;
use crate::wire::message::{FAILED, HELLO, LOG, READY, read_error};

/// How long a worker may take to start (compiled code is deserialized, not compiled).
const START_TIME: Duration = Duration::from_secs(20);

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
    /// Set when the process ended (or was killed): its connections fail, the next call
    /// starts another.
    dead: Arc<Ended>,
}

/// The end of a process, shared with its reaper thread.
pub(crate) struct Ended {
    flag: AtomicBool,
    /// The exit status once reaped; `None` while it runs. Held while signalling, so a
    /// signal never reaches a reaped (and perhaps reused) pid.
    status: Mutex<Option<String>>,
}

impl Process {
    /// Starts `program` as the worker of `module`, sends it `hello` and waits until it has
    /// locked itself down and is ready.
    pub(crate) fn start(
        program: &Path,
        module: &Arc<str>,
        hello: &[u8],
        metrics: &Arc<ModuleMetrics>,
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
            .stdout(Stdio::inherit())
            .stderr(Stdio::inherit());
        // The documented switch that simulates a kernel without Landlock reaches the worker.
        if let Some(v) = std::env::var_os(crate::sandbox::LANDLOCK_OVERRIDE_ENV) {
            cmd.env(crate::sandbox::LANDLOCK_OVERRIDE_ENV, v);
        }
        // SAFETY: between fork and exec only dup2 and fcntl run, both async-signal-safe;
        // nothing allocates.
        unsafe {
            cmd.pre_exec(move || place(a, b));
        }
        let mut child = cmd.spawn().map_err(|e| fail("spawn failed", e))?;
        drop((child_control, child_fdpass));
        let pid = child.id();
        let control_end = control.try_clone().map_err(|e| fail("no descriptor", e))?;
        let mut ch = Channel::new(control);
        let ready = handshake(&mut ch, hello, module, metrics);
        let applied = match ready {
            Ok(applied) => applied,
            Err(e) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(e);
            }
        };
        let dead = Arc::new(Ended {
            flag: AtomicBool::new(false),
            status: Mutex::new(None),
        });
        let reaper = dead.clone();
        let (name, metrics) = (module.clone(), metrics.clone());
        std::thread::Builder::new()
            .name(format!("membrane-worker-{pid}"))
            .spawn(move || watch(ch, child, reaper, name, metrics))
            .map_err(|e| fail("no thread to watch it", e))?;
        tracing::debug!(target: "membrane::worker", module = %module, pid, sandbox = %applied, "worker started");
        Ok(Process {
            pid,
            module: module.clone(),
            fdpass: Mutex::new(fdpass),
            control: control_end,
            idle: Mutex::new(Vec::new()),
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
        let fdpass = self.fdpass.lock().unwrap_or_else(|p| p.into_inner());
        let fds = [theirs.as_fd()];
        let mut space = [std::mem::MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(1))];
        let mut control = rustix::net::SendAncillaryBuffer::new(&mut space);
        control.push(rustix::net::SendAncillaryMessage::ScmRights(&fds));
        rustix::net::sendmsg(
            &*fdpass,
            &[io::IoSlice::new(&[1])],
            &mut control,
            rustix::net::SendFlags::NOSIGNAL,
        )
        .map_err(|e| self.broken(e.into()))?;
        Ok(Channel::new(mine))
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
    pub(crate) fn stop(&self, wait: Duration) {
        self.idle.lock().unwrap_or_else(|p| p.into_inner()).clear();
        let _ = self.control.shutdown(std::net::Shutdown::Write);
        let until = Instant::now() + wait;
        while Instant::now() < until {
            if self
                .dead
                .status
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .is_some()
            {
                return;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        self.kill();
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
    metrics: &Arc<ModuleMetrics>,
) -> Result<serde_json::Value> {
    let lost = |what: String| {
        Error::new(
            ErrorKind::Unavailable,
            format!("module `{module}`: its worker process {what}"),
        )
        .with_module(&**module)
    };
    ch.send(HELLO, hello)
        .map_err(|e| lost(format!("did not take its start message: {e}")))?;
    let until = Instant::now() + START_TIME;
    loop {
        match ch.recv(Some(until), Duration::ZERO) {
            Ok((READY, body)) => return Ok(serde_json::from_slice(body).unwrap_or_default()),
            Ok((FAILED, body)) => {
                let e = read_error(body);
                return Err(match e.module() {
                    Some(_) => e,
                    None => e.with_module(&**module),
                });
            }
            Ok((LOG, body)) => log::reemit(module, metrics, body),
            Ok((tag, _)) => return Err(lost(format!("sent an unexpected message ({tag})"))),
            Err(RecvError::TimedOut) => {
                return Err(lost(format!(
                    "did not become ready within {START_TIME:?}; if this program embeds Membrane, \
                     call membrane::worker::main_if_worker() first in main, or set Config::worker_program"
                )));
            }
            Err(RecvError::Closed) => {
                return Err(lost(
                    "exited during its start; if this program embeds Membrane, call \
                     membrane::worker::main_if_worker() first in main, or set Config::worker_program"
                        .into(),
                ));
            }
            Err(RecvError::Broken(e)) => return Err(lost(format!("broke the protocol: {e}"))),
        }
    }
}

/// The reaper: re-emits log events until the control socket ends, then collects the exit
/// status.
fn watch(
    mut ch: Channel,
    mut child: Child,
    dead: Arc<Ended>,
    module: Arc<str>,
    metrics: Arc<ModuleMetrics>,
) {
    loop {
        match ch.recv(None, Duration::ZERO) {
            Ok((LOG, body)) => log::reemit(&module, &metrics, body),
            Ok(_) => {}
            Err(_) => break,
        }
    }
    dead.flag.store(true, Ordering::Release);
    let mut status = dead.status.lock().unwrap_or_else(|p| p.into_inner());
    let text = match child.wait() {
        Ok(s) => describe(s),
        Err(e) => format!("its status is unknown: {e}"),
    };
    tracing::debug!(target: "membrane::worker", module = %module, pid = child.id(), status = %text, "worker ended");
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
