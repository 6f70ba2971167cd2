//! Cancellation that frees the host: a guest that waits in a host call (sleep, socket read,
//! stdin) or loops is stopped at its deadline or when its caller drops the call, on the
//! async path and on the synchronous one; its thread and instance slot are free at once.

use std::io::Write;
use std::time::{Duration, Instant};

use membrane::{ErrorKind, ModuleSpec, Val};

use crate::common::*;

const HOUR_MS: u64 = 3_600_000;

/// Two instances, two waiting callers, 200 ms per call.
async fn tight(f: impl FnOnce(ModuleSpec) -> ModuleSpec) -> membrane::App {
    app_of(f(ModuleSpec::from_file(guests::PROBE)
        .concurrency(2, 2)
        .timeout(Duration::from_millis(200))))
    .await
}

#[tokio::test]
async fn guests_sleeping_for_an_hour_end_at_their_deadline_and_free_their_slots() {
    let app = tight(|m| m).await;
    let start = Instant::now();
    let calls: Vec<_> = (0..4)
        .map(|_| {
            let app = app.clone();
            tokio::spawn(async move { caps(&app, "sleep-ms", &[Val::U64(HOUR_MS)]).await })
        })
        .collect();
    for c in calls {
        let e = c.await.unwrap().unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Timeout, "{}", membrane::chain(&e));
    }
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "{:?}",
        start.elapsed()
    );
    // No slot is still held by a sleeper: a plain call goes through at once.
    let out = caps(&app, "length", &[s("abc")]).await.unwrap();
    assert_eq!(out[0], Val::U64(3));
    assert_eq!(app.status()["m"].busy, 0);
}

#[test]
fn the_synchronous_path_stops_sleepers_too() {
    let tokio = tokio::runtime::Runtime::new().unwrap();
    let app = tokio.block_on(tight(|m| m));
    let func = format!("{CAPS}#sleep-ms");
    let start = Instant::now();
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let (app, func) = (app.clone(), func.clone());
            std::thread::spawn(move || app.call_blocking("m", &func, &[Val::U64(HOUR_MS)]))
        })
        .collect();
    for t in threads {
        let e = t.join().unwrap().unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Timeout, "{}", membrane::chain(&e));
    }
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "{:?}",
        start.elapsed()
    );
    let out = app
        .call_blocking("m", &format!("{CAPS}#length"), &[s("abc")])
        .unwrap();
    assert_eq!(out[0], Val::U64(3));
}

/// A server that accepts connections and never answers.
fn silent_server() -> (std::net::TcpListener, String) {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap().to_string();
    (l, addr)
}

#[tokio::test]
async fn a_guest_blocked_on_a_socket_read_ends_at_its_deadline() {
    let (_server, addr) = silent_server();
    let grant = addr.clone();
    let app = tight(move |m| m.network(grant)).await;
    let start = Instant::now();
    let calls: Vec<_> = (0..4)
        .map(|_| {
            let (app, addr) = (app.clone(), addr.clone());
            tokio::spawn(async move { caps(&app, "connect", &[s(&addr)]).await })
        })
        .collect();
    for c in calls {
        let e = c.await.unwrap().unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Timeout, "{}", membrane::chain(&e));
    }
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "{:?}",
        start.elapsed()
    );
    let out = caps(&app, "length", &[s("abc")]).await.unwrap();
    assert_eq!(out[0], Val::U64(3));
    // The synchronous path too.
    let (app2, addr2) = (app.clone(), addr.clone());
    let e = tokio::task::spawn_blocking(move || {
        app2.call_blocking("m", &format!("{CAPS}#connect"), &[s(&addr2)])
    })
    .await
    .unwrap()
    .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Timeout);
}

#[tokio::test]
async fn dropping_the_call_stops_the_guest_and_frees_the_slot() {
    let app = app_of(
        ModuleSpec::from_file(guests::PROBE)
            .concurrency(1, 0)
            .timeout(Duration::from_secs(3600)),
    )
    .await;
    for (func, args) in [("spin", vec![]), ("sleep-ms", vec![Val::U64(HOUR_MS)])] {
        let call = {
            let app = app.clone();
            tokio::spawn(async move { caps(&app, func, &args).await })
        };
        eventually(&format!("{func} is running"), || {
            app.status()["m"].busy == 1
        })
        .await;
        call.abort();
        assert!(call.await.unwrap_err().is_cancelled());
        let status = app.status()["m"].clone();
        assert_eq!(
            (status.busy, status.idle),
            (0, 0),
            "{func}: slot freed, instance dropped"
        );
        // The module keeps serving, and a dropped call is not counted as its failure.
        let out = caps(&app, "length", &[s("abc")]).await.unwrap();
        assert_eq!(out[0], Val::U64(3));
        assert_eq!(app.status()["m"].recent_failures, 0);
    }
}

#[tokio::test]
async fn a_thousand_calls_with_half_dropped_leave_nothing_behind() {
    let app = app_of(ModuleSpec::from_file(guests::PROBE).concurrency(8, 1000)).await;
    let mut kept = Vec::new();
    let mut dropped = Vec::new();
    for i in 0..1000u64 {
        let app = app.clone();
        let text = "y".repeat(i as usize % 50);
        let call = tokio::spawn(async move {
            // Some wait in a host call, some compute.
            if i % 3 == 0 {
                caps(&app, "sleep-ms", &[Val::U64(i % 7)]).await?;
            }
            caps(&app, "length", &[s(&text)]).await
        });
        if i % 2 == 0 {
            kept.push((i, call));
        } else {
            dropped.push(call);
        }
    }
    tokio::time::sleep(Duration::from_millis(5)).await;
    for call in &dropped {
        call.abort();
    }
    for (i, call) in kept {
        let out = call.await.unwrap().unwrap();
        assert_eq!(out[0], Val::U64(i % 50), "call {i}");
    }
    for call in dropped {
        let _ = call.await;
    }
    let status = app.status()["m"].clone();
    assert_eq!((status.busy, status.waiting), (0, 0));
    assert!(status.idle <= 8);
    assert_eq!(status.recent_failures, 0);
}

#[test]
fn membrane_run_blocked_on_stdin_ends_at_its_timeout() {
    let tmp = tempfile::tempdir().unwrap();
    let m = write_manifest(
        tmp.path(),
        &format!(
            "[modules.cli]\ncomponent = {:?}\nlimits = {{ timeout = \"300ms\" }}\n",
            guests::CLI_PROBE
        ),
    );
    let start = Instant::now();
    let mut child = membrane_command()
        .args(["run", m.to_str().unwrap(), "--", "stdin"])
        .env("RUST_BACKTRACE", "1")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Keep stdin open (and silent) until the command has ended.
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(b"partial").unwrap();
    let o = child.wait_with_output().unwrap();
    drop(stdin);
    assert_clean_failure(&o, "error[timeout]");
    assert!(
        start.elapsed() < Duration::from_secs(10),
        "{:?}",
        start.elapsed()
    );
}

#[test]
fn membrane_call_on_a_sleeping_guest_times_out_without_a_panic() {
    let tmp = tempfile::tempdir().unwrap();
    let m = write_manifest(
        tmp.path(),
        &format!(
            "[modules.p]\ncomponent = {:?}\nlimits = {{ timeout = \"200ms\" }}\n",
            guests::PROBE
        ),
    );
    let o = membrane_command()
        .args([
            "call",
            m.to_str().unwrap(),
            "p",
            &format!("{CAPS}#sleep-ms"),
            &HOUR_MS.to_string(),
        ])
        .env("RUST_BACKTRACE", "1")
        .output()
        .unwrap();
    assert_clean_failure(&o, "error[timeout]");
    assert!(!stderr(&o).contains("stack backtrace"), "{}", stderr(&o));
}
