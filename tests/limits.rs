//! Limits: a loop hits its timeout, a memory bomb hits its memory limit, and the module
//! keeps answering afterwards.

use std::time::{Duration, Instant};

use membrane::{ErrorKind, Val};

use crate::common::*;

#[tokio::test]
async fn infinite_loop_times_out() {
    let app = probe(|m| m.timeout(Duration::from_millis(200))).await;
    let start = Instant::now();
    let err = caps(&app, "spin", &[]).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Timeout, "{err}");
    // Generous bound: the point is that the loop was stopped, not how fast.
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "took {:?}",
        start.elapsed()
    );
    assert_eq!(err.module(), Some("m"));
    // The trapped instance was thrown away; the next call gets a fresh one.
    let out = caps(&app, "get-env", &[s("X")]).await.unwrap();
    assert_eq!(out[0], Val::Option(None));
}

#[tokio::test]
async fn sleeping_in_a_host_call_times_out() {
    let app = probe(|m| m.timeout(Duration::from_millis(200))).await;
    let err = caps(&app, "sleep-ms", &[Val::U64(60_000)])
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Timeout, "{err}");
}

#[tokio::test]
async fn memory_bomb_hits_the_limit() {
    let app = probe(|m| m.memory(16 << 20)).await;
    let err = caps(&app, "bomb", &[]).await.unwrap_err();
    assert_eq!(
        err.kind(),
        ErrorKind::MemoryLimit,
        "{}",
        membrane::chain(&err)
    );
    assert_eq!(err.module(), Some("m"));
    let out = caps(&app, "try-alloc", &[Val::U64(1 << 20)]).await.unwrap();
    assert!(result_text(&out).is_ok());
}

#[tokio::test]
async fn refused_growth_is_visible_to_a_careful_guest() {
    let app = probe(|m| m.memory(16 << 20)).await;
    // Just under the cap works ...
    let out = caps(&app, "try-alloc", &[Val::U64(8 << 20)]).await.unwrap();
    assert!(result_text(&out).is_ok(), "{out:?}");
    // ... past it fails inside the guest, which reports it instead of trapping.
    let out = caps(&app, "try-alloc", &[Val::U64(64 << 20)])
        .await
        .unwrap();
    assert!(result_text(&out).is_err(), "{out:?}");
}

#[tokio::test]
async fn a_limit_below_the_initial_memory_is_refused_at_load() {
    let err = runtime()
        .load_spec(membrane::AppSpec::new().module(
            "m",
            membrane::ModuleSpec::from_file(guests::PROBE).memory(64 << 10),
        ))
        .await
        .err()
        .unwrap();
    assert_eq!(
        err.kind(),
        ErrorKind::MemoryLimit,
        "{}",
        membrane::chain(&err)
    );
    assert_eq!(err.module(), Some("m"));
}

#[tokio::test]
async fn a_panic_is_a_trap_and_the_module_recovers() {
    let app = probe(|m| m).await;
    let err = caps(&app, "panic", &[s("boom")]).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Trap, "{err}");
    let out = caps(&app, "now-ns", &[]).await.unwrap();
    assert!(matches!(out[0], Val::U64(n) if n > 0));
}

#[tokio::test]
async fn clocks_and_random_are_granted_by_default() {
    let app = probe(|m| m).await;
    let out = caps(&app, "now-ns", &[]).await.unwrap();
    let Val::U64(now) = out[0] else { panic!() };
    let host = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    assert!(
        now.abs_diff(host) < 60_000_000_000,
        "guest clock is off: {now} vs {host}"
    );
    let a = caps(&app, "random-u64", &[]).await.unwrap();
    let b = caps(&app, "random-u64", &[]).await.unwrap();
    assert_ne!(a, b);
}
