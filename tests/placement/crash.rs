//! Workers that die, hang or keep crashing: only their calls fail, and they come back.

use std::time::Duration;

use membrane::{ErrorKind, RestartPolicy, Val};

use super::process::probe_in_worker;
use crate::common::*;

fn signal(pid: u32, sig: &str) {
    let status = std::process::Command::new("kill")
        .args([&format!("-{sig}"), &pid.to_string()])
        .status()
        .expect("kill runs");
    assert!(status.success(), "kill -{sig} {pid}");
}

/// Waits until the app's worker is one other than `old` (or none).
async fn replaced(app: &membrane::App, old: u32) {
    eventually("the stopped worker is replaced", || {
        membrane::process::workers::worker_pid(app, "m").unwrap() != Some(old)
    })
    .await;
}

#[tokio::test]
async fn kill_9_fails_only_the_calls_in_flight_and_the_next_call_succeeds() {
    let gate = Gate::new().await;
    let app = probe_in_worker(|m| gate.grant(m).concurrency(2, 8)).await;
    let pid = membrane::process::workers::worker_pid(&app, "m")
        .unwrap()
        .unwrap();
    let long = {
        let (app, args) = (app.clone(), gate.args());
        tokio::spawn(async move { caps(&app, "connect", &args).await })
    };
    // The call is running inside the worker when the worker dies.
    let _held = gate.arrived().await;
    signal(pid, "KILL");
    let e = long.await.unwrap().unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Crashed, "{e}");
    assert_eq!(e.module(), Some("m"));
    // The next call starts a new worker.
    let out = caps(&app, "length", &[s("back")]).await.unwrap();
    assert_eq!(out, vec![Val::U64(4)]);
    let new = membrane::process::workers::worker_pid(&app, "m")
        .unwrap()
        .unwrap();
    assert_ne!(new, pid);
    // The crash counted against the module's circuit.
    assert_eq!(app.status()["m"].recent_failures, 1);
}

#[tokio::test]
async fn a_stopped_worker_hits_the_deadline_and_is_replaced() {
    let app = probe_in_worker(|m| m.timeout(Duration::from_millis(300))).await;
    let pid = membrane::process::workers::worker_pid(&app, "m")
        .unwrap()
        .unwrap();
    signal(pid, "STOP");
    let e = caps(&app, "length", &[s("x")]).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Timeout, "{e}");
    // Killed (SIGKILL ends a stopped process) and reaped.
    replaced(&app, pid).await;
    let out = caps(&app, "length", &[s("xy")]).await.unwrap();
    assert_eq!(out, vec![Val::U64(2)]);
    assert_ne!(
        membrane::process::workers::worker_pid(&app, "m").unwrap(),
        Some(pid)
    );
    assert!(!is_child_zombie(pid), "pid {pid} left a zombie");
}

#[tokio::test]
async fn a_worker_that_keeps_crashing_opens_the_circuit() {
    let mut policy = RestartPolicy::default();
    policy.max = 3;
    let gate = Gate::new().await;
    let app = probe_in_worker(|m| gate.grant(m).restart(policy)).await;
    // Past `max` failures the circuit opens.
    for _ in 0..4 {
        let call = {
            let (app, args) = (app.clone(), gate.args());
            tokio::spawn(async move { caps(&app, "connect", &args).await })
        };
        // The call runs in its worker (a new one after each kill): kill it mid-call.
        let _held = gate.arrived().await;
        let pid = membrane::process::workers::worker_pid(&app, "m")
            .unwrap()
            .expect("the call's worker runs");
        signal(pid, "KILL");
        let e = call.await.unwrap().unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Crashed, "{e}");
    }
    let e = caps(&app, "length", &[s("x")]).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unavailable, "{e}");
}

/// Whether `pid` is a zombie child of this process.
fn is_child_zombie(pid: u32) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    let after = stat.rsplit_once(')').map_or("", |(_, a)| a);
    let mut fields = after.split_whitespace();
    let state = fields.next().unwrap_or("");
    let ppid: u32 = fields.next().and_then(|p| p.parse().ok()).unwrap_or(0);
    state == "Z" && ppid == std::process::id()
}

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

/// How many workers the leak test kills: each costs a worker's start (~50 ms), and 300 is
/// three times the descriptor margin, so one descriptor kept per worker cannot hide.
const RESTARTS: usize = 300;

#[test]
fn three_hundred_restarts_leak_no_process_socket_or_descriptor() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    // No circuit in the way: every crash is followed by a good call.
    let mut policy = RestartPolicy::default();
    policy.max = u32::MAX;
    let app = rt.block_on(probe_in_worker(|m| m.restart(policy).concurrency(1, 4)));
    let call = format!("{CAPS}#length");
    app.call_blocking("m", &call, &[s("warm")]).unwrap();
    let fds = open_fds();
    let mut killed = Vec::new();
    for i in 0..RESTARTS {
        let pid = membrane::process::workers::worker_pid(&app, "m")
            .unwrap()
            .expect("a worker runs");
        signal(pid, "KILL");
        killed.push(pid);
        // The call either meets the dead worker (Crashed) or a new one.
        match app.call_blocking("m", &call, &[s("x")]) {
            Ok(out) => assert_eq!(out, vec![Val::U64(1)]),
            Err(e) => assert_eq!(e.kind(), ErrorKind::Crashed, "restart {i}: {e}"),
        }
        let out = app.call_blocking("m", &call, &[s("ok")]).unwrap();
        assert_eq!(out, vec![Val::U64(2)], "restart {i}");
    }
    // Reapers finish within moments of each kill. Other tests run in this process too,
    // so descriptors are compared with a margin (100) well below one per restart (300):
    // a descriptor or socket kept per worker fails the test.
    let zombies = || killed.iter().filter(|p| is_child_zombie(**p)).count();
    eventually_blocking("the reapers finish", || {
        zombies() == 0 && open_fds() <= fds + 100
    });
    assert_eq!(zombies(), 0, "zombie workers left");
    let now = open_fds();
    assert!(
        now <= fds + 100,
        "descriptors grew from {fds} to {now} over {RESTARTS} restarts"
    );
    // Every worker thread of the host (one reaper per process) has ended too.
    let threads = std::fs::read_dir("/proc/self/task").unwrap().count();
    assert!(threads < 200, "{threads} threads left");
}
