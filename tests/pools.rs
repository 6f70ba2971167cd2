//! Instance pools: concurrency limits, bounded queues, lifecycles, and the compiled cache.

use std::time::Duration;

use membrane::{AppSpec, Config, ErrorKind, Lifecycle, ModuleSpec, Runtime, Val};

use crate::common::*;

#[tokio::test]
async fn past_the_queue_a_call_fails_at_once_with_overloaded() {
    let gate = Gate::new().await;
    let app = probe(|m| gate.grant(m).concurrency(1, 0)).await;
    let busy = {
        let (app, args) = (app.clone(), gate.args());
        tokio::spawn(async move { caps(&app, "connect", &args).await })
    };
    let held = gate.arrived().await;
    assert_eq!(app.status()["m"].busy, 1);
    let e = caps(&app, "bump", &[]).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Overloaded, "{e}");
    assert_eq!(e.module(), Some("m"));
    held.release().await;
    assert_eq!(result_text(&busy.await.unwrap().unwrap()).unwrap(), "pong");
    // Capacity is back.
    caps(&app, "bump", &[]).await.unwrap();
}

#[tokio::test]
async fn queued_callers_wait_their_turn() {
    let app = probe(|m| m.concurrency(1, 4)).await;
    let mut calls = Vec::new();
    for _ in 0..5 {
        let app = app.clone();
        calls.push(tokio::spawn(async move {
            caps(&app, "sleep-ms", &[Val::U64(50)]).await
        }));
    }
    for c in calls {
        c.await.unwrap().unwrap();
    }
    let status = app.status()["m"].clone();
    assert_eq!((status.busy, status.waiting), (0, 0));
    assert_eq!(status.idle, 1, "one instance served every call");
}

#[tokio::test]
async fn a_queued_call_gives_up_at_its_deadline() {
    // The relay (200 ms) calls the worker (one instance, 30 s): a relay call queued behind a
    // busy worker gives up at the relay's deadline, not the worker's.
    let app = runtime()
        .load_spec(
            AppSpec::new()
                .module(
                    "worker",
                    ModuleSpec::from_file(guests::WORKER)
                        .concurrency(1, 4)
                        .timeout(Duration::from_secs(30)),
                )
                .module(
                    "relay",
                    ModuleSpec::from_file(guests::RELAY)
                        .link("membrane-test:chain/work", "worker")
                        .timeout(Duration::from_millis(200)),
                ),
        )
        .await
        .unwrap();
    let busy = {
        let app = app.clone();
        tokio::spawn(async move {
            app.call("worker", "membrane-test:chain/work#spin", &[])
                .await
        })
    };
    eventually("the worker spins", || app.status()["worker"].busy == 1).await;
    let add = "membrane-test:chain/relay#add";
    let e = app
        .call("relay", add, &[Val::U64(1), Val::U64(2)])
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Timeout, "{}", membrane::chain(&e));
    // Dropping the spinning call's future stops the guest and frees its slot.
    busy.abort();
    assert!(busy.await.unwrap_err().is_cancelled());
    assert_eq!(app.status()["worker"].busy, 0);
    let out = app
        .call("relay", add, &[Val::U64(1), Val::U64(2)])
        .await
        .unwrap();
    assert_eq!(out[0], Val::U64(3));
}

#[tokio::test]
async fn reuse_keeps_state_and_per_call_does_not() {
    let app = probe(|m| m).await;
    assert_eq!(caps(&app, "bump", &[]).await.unwrap()[0], Val::U64(1));
    assert_eq!(caps(&app, "bump", &[]).await.unwrap()[0], Val::U64(2));
    let app = probe(|m| m.lifecycle(Lifecycle::PerCall)).await;
    assert_eq!(caps(&app, "bump", &[]).await.unwrap()[0], Val::U64(1));
    assert_eq!(caps(&app, "bump", &[]).await.unwrap()[0], Val::U64(1));
    assert_eq!(app.status()["m"].idle, 0);
}

#[tokio::test]
async fn too_few_instance_slots_is_overloaded_not_a_crash() {
    let mut config = crate::common::config();
    config.instance_slots = 1;
    let rt = Runtime::new(config).unwrap();
    let gate = Gate::new().await;
    let app = rt
        .load_spec(AppSpec::new().module("m", gate.grant(ModuleSpec::from_file(guests::PROBE))))
        .await
        .unwrap();
    let first = {
        let (app, args) = (app.clone(), gate.args());
        tokio::spawn(async move { caps(&app, "connect", &args).await })
    };
    let held = gate.arrived().await;
    let e = caps(&app, "bump", &[]).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Overloaded, "{}", membrane::chain(&e));
    held.release().await;
    first.await.unwrap().unwrap();
}

fn cached_runtime(dir: &std::path::Path) -> membrane::Result<Runtime> {
    let mut config = Config::default();
    config.cache_dir = Some(dir.to_path_buf());
    Runtime::new(config)
}

fn cache_entries(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for sub in std::fs::read_dir(dir).unwrap().flatten() {
        if sub.path().is_dir() {
            for f in std::fs::read_dir(sub.path()).unwrap().flatten() {
                out.push(f.path());
            }
        }
    }
    out
}

#[tokio::test]
async fn the_cache_is_filled_reused_and_repaired() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("cache");
    let spec = || AppSpec::new().module("t", ModuleSpec::from_file(guests::TYPES));
    let app = cached_runtime(&dir)
        .unwrap()
        .load_spec(spec())
        .await
        .unwrap();
    let entries = cache_entries(&dir);
    assert_eq!(entries.len(), 1, "{entries:?}");
    assert!(entries[0].extension().is_some_and(|e| e == "cwasm"));
    drop(app);
    // Warm: loads from the cache and works.
    let app = cached_runtime(&dir)
        .unwrap()
        .load_spec(spec())
        .await
        .unwrap();
    let out = app.call("t", "hello", &[s("cache")]).await.unwrap();
    assert_eq!(out[0], s("hello, cache"));
    // A damaged entry is recompiled, never trusted.
    std::fs::write(&entries[0], b"garbage").unwrap();
    let app = cached_runtime(&dir)
        .unwrap()
        .load_spec(spec())
        .await
        .unwrap();
    assert_eq!(
        app.call("t", "hello", &[s("again")]).await.unwrap()[0],
        s("hello, again")
    );
    assert!(
        std::fs::read(&entries[0]).unwrap().len() > 1000,
        "the entry was rewritten"
    );
}

#[test]
fn a_cache_others_can_write_is_refused() {
    use std::os::unix::fs::PermissionsExt;
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("cache");
    std::fs::create_dir(&dir).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).unwrap();
    let e = cached_runtime(&dir).expect_err("refused");
    assert!(
        e.to_string().contains("can be written by other users"),
        "{e}"
    );
}

#[test]
fn compile_warms_the_cache() {
    let tmp = tempfile::tempdir().unwrap();
    let m = write_manifest(
        tmp.path(),
        &format!("[modules.t]\ncomponent = {:?}\n", guests::TYPES),
    );
    let cache = tmp.path().join("c");
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_membrane"))
        .args(["compile", m.to_str().unwrap()])
        .env("MEMBRANE_CACHE_DIR", &cache)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stdout(&o).starts_with("compiled 1 module(s)"),
        "{}",
        stdout(&o)
    );
    assert_eq!(cache_entries(&cache).len(), 1);
}

#[tokio::test]
async fn manifest_limits_for_pools() {
    let tmp = tempfile::tempdir().unwrap();
    let m = write_manifest(
        tmp.path(),
        &format!(
            "[modules.p]\ncomponent = {:?}\nlifecycle = \"per-call\"\nlimits = {{ instances = 2, queue = 0 }}\n",
            guests::PROBE
        ),
    );
    let app = runtime().load(&m).await.unwrap();
    let spec = app.spec("p").unwrap();
    assert_eq!((spec.limits.instances, spec.limits.queue), (2, 0));
    assert_eq!(spec.lifecycle, Lifecycle::PerCall);
    let bad = write_manifest(
        tmp.path(),
        &format!(
            "[modules.p]\ncomponent = {:?}\nlifecycle = \"forever\"\n",
            guests::PROBE
        ),
    );
    let e = runtime().load(&bad).await.err().unwrap();
    assert_eq!(e.kind(), ErrorKind::Manifest);
    assert_eq!(e.location().map(|l| l.line), Some(3));
    let bad = write_manifest(
        tmp.path(),
        &format!(
            "[modules.p]\ncomponent = {:?}\nlimits = {{ instances = 0 }}\n",
            guests::PROBE
        ),
    );
    let e = runtime().load(&bad).await.err().unwrap();
    assert_eq!(e.kind(), ErrorKind::Manifest);
    assert_eq!(e.key(), Some("modules.p.limits.instances"));
    assert_eq!(e.location().map(|l| l.line), Some(3));
}

#[tokio::test]
async fn prewarm_fills_the_idle_list_up_to_the_limit() {
    let app = probe(|m| m.concurrency(3, 0)).await;
    assert_eq!(app.prewarm("m", 10).await.unwrap(), 3);
    assert_eq!(app.status()["m"].idle, 3);
    let app = probe(|m| m.lifecycle(Lifecycle::PerCall)).await;
    assert_eq!(app.prewarm("m", 10).await.unwrap(), 0);
}
