//! A `membrane host` (or `membrane serve --host`) process for the remote tests and the
//! remote bench (which includes this file by path): started, waited for until it says it
//! hosts, stopped or killed, and always reaped.

// Each includer uses what it needs of it.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// A running `membrane` process that hosts remote modules; killed when dropped.
pub struct HostProc {
    child: Child,
    /// Its host id, from the line that says it hosts.
    pub id: String,
    lines: std::sync::mpsc::Receiver<String>,
}

impl HostProc {
    /// Starts `membrane ARGS` with `cache` as its compile cache and waits (up to 120 s)
    /// for the line that says it hosts.
    pub fn start_with_cache(args: &[&str], cache: &std::path::Path) -> HostProc {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_membrane"));
        cmd.args(args)
            .env_remove("MEMBRANE_LOG")
            .env("MEMBRANE_CACHE_DIR", cache);
        HostProc::spawn(cmd)
    }

    /// Starts `cmd`, a `membrane` command with its arguments and environment, and waits
    /// (up to 120 s) for the line that says it hosts.
    pub fn spawn(mut cmd: Command) -> HostProc {
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("membrane starts");
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            // Drained until the process ends, whether anyone listens or not.
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        // Killed by its drop if it never says it hosts.
        let mut p = HostProc {
            child,
            id: String::new(),
            lines: rx,
        };
        let line = p.wait_for("(host id ");
        if let Some((_, id)) = line.rsplit_once("(host id ") {
            p.id = id.trim_end_matches(')').to_string();
        }
        p
    }

    /// Waits (up to 120 s) for a line of its stderr containing `text`.
    pub fn wait_for(&self, text: &str) -> String {
        let end = Instant::now() + Duration::from_secs(120);
        let mut seen = Vec::new();
        while let Ok(l) = self
            .lines
            .recv_timeout(end.saturating_duration_since(Instant::now()))
        {
            if l.contains(text) {
                return l;
            }
            seen.push(l);
        }
        panic!("no line with {text:?}; got:\n{}", seen.join("\n"));
    }

    /// Its process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGTERM, then the exit status (within 10 s).
    pub fn stop(&mut self) -> ExitStatus {
        let pid = rustix::process::Pid::from_raw(self.child.id() as i32).unwrap();
        rustix::process::kill_process(pid, rustix::process::Signal::TERM).unwrap();
        let end = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(Instant::now() < end, "membrane did not stop on SIGTERM");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGKILL, and reaped: its sockets are closed when this returns.
    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for HostProc {
    fn drop(&mut self) {
        self.kill9();
    }
}
