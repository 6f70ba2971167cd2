//! `placement = "process"`: a module's instances in a sandboxed worker process.

use std::time::{Duration, Instant};

use membrane::{AppSpec, ErrorKind, ModuleSpec, Placement, RestartPolicy, Val};

use crate::common::*;

fn in_process(spec: ModuleSpec) -> ModuleSpec {
    spec.placement(Placement::Process)
}

/// The probe guest as module `m` in a worker, with what `f` adds.
pub async fn probe_in_worker(f: impl FnOnce(ModuleSpec) -> ModuleSpec) -> membrane::App {
    worker_runtime()
        .load_spec(AppSpec::new().module("m", in_process(f(ModuleSpec::from_file(guests::PROBE)))))
        .await
        .expect("app loads")
}

fn u32s(vals: &[Val]) -> u32 {
    match vals {
        [Val::U32(n)] => *n,
        other => panic!("not one u32: {other:?}"),
    }
}

#[tokio::test]
async fn calls_cross_into_the_worker_and_back() {
    let app = probe_in_worker(|m| m.concurrency(1, 8).env("GREETING", "hi")).await;
    let pid = membrane::process::workers::worker_pid(&app, "m")
        .unwrap()
        .expect("a worker runs");
    assert_ne!(pid, std::process::id());
    let out = caps(&app, "sum", &[Val::List(vec![Val::S64(2), Val::S64(40)])])
        .await
        .unwrap();
    assert_eq!(out, vec![Val::S64(42)]);
    let out = caps(&app, "length", &[s("héllo")]).await.unwrap();
    assert_eq!(out, vec![Val::U64(6)]);
    // One instance, reused: its memory persists between calls.
    for want in 1..=3u64 {
        let out = caps(&app, "bump", &[]).await.unwrap();
        assert_eq!(out, vec![Val::U64(want)]);
    }
    // The blocking path goes through the same worker.
    let out = app
        .call_blocking("m", &format!("{CAPS}#bump"), &[])
        .unwrap();
    assert_eq!(out, vec![Val::U64(4)]);
    let out = caps(&app, "get-env", &[s("GREETING")]).await.unwrap();
    assert_eq!(out, vec![Val::Option(Some(Box::new(s("hi"))))]);
    // The worker gets only the granted variables, never the host's environment.
    let out = caps(&app, "env-vars", &[]).await.unwrap();
    assert_eq!(
        out,
        vec![Val::List(vec![Val::Tuple(vec![s("GREETING"), s("hi")])])]
    );
}

#[tokio::test]
async fn guest_failures_keep_their_kinds() {
    let app = probe_in_worker(|m| m.timeout(Duration::from_millis(300))).await;
    let e = caps(&app, "panic", &[s("boom")]).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Trap, "{e}");
    assert_eq!(e.module(), Some("m"));
    let e = caps(&app, "spin", &[]).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Timeout, "{e}");
    let e = caps(&app, "exit", &[Val::U32(3)]).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Exit, "{e}");
    // Wrong arguments are refused before they reach the worker.
    let e = caps(&app, "length", &[Val::U32(1)]).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidArgs, "{e}");
    // The worker is still the same process and still serves.
    let out = caps(&app, "length", &[s("ok")]).await.unwrap();
    assert_eq!(out, vec![Val::U64(2)]);
}

#[tokio::test]
async fn memory_limit_holds_in_the_worker() {
    let app = probe_in_worker(|m| m.memory(8 << 20)).await;
    let out = caps(&app, "try-alloc", &[Val::U64(64 << 20)])
        .await
        .unwrap();
    assert!(matches!(&out[0], Val::Result(Err(_))), "{out:?}");
    let e = caps(&app, "bomb", &[]).await.unwrap_err();
    assert!(
        matches!(e.kind(), ErrorKind::MemoryLimit | ErrorKind::Trap),
        "{e}"
    );
}

/// calc (importer) -> adder (provider), each with the given placement.
async fn calc_app(calc: Placement, adder: Placement) -> membrane::App {
    worker_runtime()
        .load_spec(
            AppSpec::new()
                .module(
                    "calc",
                    ModuleSpec::from_file(guests::CALC)
                        .link("membrane-test:placement/math", "adder")
                        .placement(calc),
                )
                .module(
                    "adder",
                    ModuleSpec::from_file(guests::ADDER)
                        .placement(adder)
                        .restart(RestartPolicy::default()),
                ),
        )
        .await
        .expect("app loads")
}

const CALC: &str = "membrane-test:placement/calc";

#[tokio::test]
async fn links_across_every_pair_of_placements() {
    use Placement::*;
    for (c, a) in [
        (Isolated, Process),
        (Process, Isolated),
        (Process, Process),
        (Isolated, Isolated),
    ] {
        let app = calc_app(c, a).await;
        let out = app
            .call("calc", &format!("{CALC}#add"), &[Val::U32(40), Val::U32(2)])
            .await
            .unwrap();
        assert_eq!(u32s(&out), 42, "{c} -> {a}");
        let out = app
            .call_blocking("calc", &format!("{CALC}#add"), &[Val::U32(1), Val::U32(2)])
            .unwrap();
        assert_eq!(u32s(&out), 3, "{c} -> {a} (blocking)");
        let bytes: Vec<Val> = (0..1024u32).map(|i| Val::U8(i as u8)).collect();
        let out = app
            .call("calc", &format!("{CALC}#echo"), &[Val::List(bytes.clone())])
            .await
            .unwrap();
        assert_eq!(out, vec![Val::List(bytes)], "{c} -> {a}");
        let out = app
            .call("calc", &format!("{CALC}#loop-add"), &[Val::U32(100)])
            .await
            .unwrap();
        assert_eq!(out, vec![Val::U64((1..=100).sum())], "{c} -> {a}");
        // A provider's failure reaches the importer's caller with its kind, counted
        // against the provider.
        let e = app
            .call("calc", &format!("{CALC}#fail"), &[s("no")])
            .await
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Trap, "{c} -> {a}: {e}");
        let status = app.status();
        assert_eq!(status["adder"].recent_failures, 1, "{c} -> {a}: {status:?}");
        assert_eq!(status["calc"].recent_failures, 0, "{c} -> {a}: {status:?}");
    }
}

#[tokio::test]
async fn deadlines_pass_along_into_the_worker() {
    // The importer's 200 ms bounds the provider's call in the worker.
    let app = worker_runtime()
        .load_spec(
            AppSpec::new()
                .module(
                    "calc",
                    ModuleSpec::from_file(guests::CALC)
                        .link("membrane-test:placement/math", "adder")
                        .timeout(Duration::from_millis(200)),
                )
                .module(
                    "adder",
                    in_process(ModuleSpec::from_file(guests::ADDER)).timeout(HANG_GUARD),
                ),
        )
        .await
        .unwrap();
    // The nap is 100 times the importer's deadline and the provider's own deadline is
    // longer still: ending before the nap would is the deadline passed along (an ordering,
    // which a busy machine does not turn around).
    let t = Instant::now();
    let e = app
        .call("calc", &format!("{CALC}#nap"), &[Val::U64(20_000)])
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Timeout, "{e}");
    assert!(t.elapsed() < Duration::from_secs(20), "{:?}", t.elapsed());
}

fn process_manifest(dir: &std::path::Path, extra: &str) -> std::path::PathBuf {
    write_manifest(
        dir,
        &format!(
            "[modules.m]\ncomponent = {:?}\nplacement = \"process\"\n{extra}",
            guests::PROBE
        ),
    )
}

/// `membrane` with the documented switch that simulates a kernel without Landlock.
fn membrane_without_landlock(args: &[&str]) -> std::process::Output {
    membrane_command()
        .args(args)
        .env("MEMBRANE_SANDBOX_LANDLOCK", "off")
        .output()
        .expect("membrane runs")
}

#[test]
fn check_refuses_a_process_module_on_a_kernel_without_landlock() {
    let tmp = tempfile::tempdir().unwrap();
    let m = process_manifest(tmp.path(), "");
    let path = m.to_str().unwrap();
    assert!(membrane(&["check", path]).status.success());
    let o = membrane_without_landlock(&["check", path]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(err.contains("allow_weaker_sandbox"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    // Accepted in the manifest, the module starts with the layers this kernel has, and
    // serves.
    let m = process_manifest(tmp.path(), "allow_weaker_sandbox = true\n");
    let path = m.to_str().unwrap();
    let o = membrane_without_landlock(&["check", path]);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = membrane_without_landlock(&["call", path, "m", &format!("{CAPS}#length"), "\"abc\""]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stdout(&o).trim(), "3");
}

#[tokio::test]
async fn a_link_to_a_host_interface_is_refused_with_the_key_to_change() {
    let rt = worker_runtime();
    rt.provide(
        membrane::HostInterface::new("membrane-test:placement/math@0.1.0")
            .func("add", |(a, b): (u32, u32)| Ok((a + b,)))
            .func("echo", |(b,): (Vec<u8>,)| Ok((b,)))
            .func("nap", |(ms,): (u64,)| Ok((ms,)))
            .func("fail", |(_m,): (String,)| Ok(()))
            .func("bump", |(): ()| Ok((1u64,))),
    )
    .unwrap();
    let spec = |p| {
        AppSpec::new().module(
            "m",
            ModuleSpec::from_file(guests::CALC)
                .link("membrane-test:placement/math", "host")
                .placement(p),
        )
    };
    // Isolated, the host serves the link; in a worker it cannot yet.
    rt.load_spec(spec(Placement::Isolated))
        .await
        .expect("isolated loads");
    let e = rt
        .load_spec(spec(Placement::Process))
        .await
        .err()
        .expect("refused");
    let p = e
        .problems()
        .iter()
        .chain(std::iter::once(&e))
        .find(|p| p.key() == Some("modules.m.placement"))
        .unwrap_or_else(|| panic!("{e}"));
    assert_eq!(p.kind(), ErrorKind::Link);
    assert_eq!(p.module(), Some("m"));
}

#[test]
fn graph_and_status_show_the_placement() {
    let tmp = tempfile::tempdir().unwrap();
    let m = process_manifest(tmp.path(), "");
    let o = membrane(&["graph", m.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("placement process"), "{}", stdout(&o));
}

#[tokio::test]
async fn status_names_the_placement_and_the_worker() {
    let app = probe_in_worker(|m| m).await;
    let st = &app.status()["m"];
    assert_eq!(st.placement, Placement::Process);
    assert_eq!(
        st.worker_pid,
        membrane::process::workers::worker_pid(&app, "m").unwrap()
    );
    assert!(st.worker_pid.is_some());
}

/// A module in a worker cannot import resources yet: refused at load, with the key. (The
/// other direction, a provider in a worker, is in `resources`, with every placement.)
#[tokio::test]
async fn an_importer_in_a_worker_cannot_take_resources() {
    let e = worker_runtime()
        .load_spec(
            AppSpec::new()
                .module(
                    "relay",
                    in_process(
                        ModuleSpec::from_file(guests::RELAY)
                            .link("membrane-test:chain/work@1.2.0", "worker"),
                    ),
                )
                .module("worker", ModuleSpec::from_file(guests::WORKER)),
        )
        .await
        .err()
        .expect("refused");
    let p = e
        .problems()
        .iter()
        .chain(std::iter::once(&e))
        .find(|p| p.key() == Some("modules.relay.placement"))
        .unwrap_or_else(|| panic!("{e}"));
    assert_eq!(p.kind(), ErrorKind::Link);
}

#[tokio::test]
async fn a_live_upgrade_does_not_move_a_module_into_or_out_of_a_worker() {
    let app = calc_app(Placement::Isolated, Placement::Isolated).await;
    let e = app
        .upgrade(
            "adder",
            ModuleSpec::from_file(guests::ADDER).placement(Placement::Process),
        )
        .await
        .expect_err("refused");
    let p = e
        .problems()
        .iter()
        .chain(std::iter::once(&e))
        .find(|p| p.key() == Some("modules.adder.placement"))
        .unwrap_or_else(|| panic!("{e}"));
    assert_eq!(p.kind(), ErrorKind::Manifest);
    // Nothing changed: the link still works, in the host.
    let out = app
        .call("calc", &format!("{CALC}#add"), &[Val::U32(2), Val::U32(3)])
        .await
        .unwrap();
    assert_eq!(u32s(&out), 5);
    assert_eq!(app.status()["adder"].placement, Placement::Isolated);
    // A process module upgraded in place (same placement) gets a new worker.
    let app = calc_app(Placement::Isolated, Placement::Process).await;
    let old = membrane::process::workers::worker_pid(&app, "adder")
        .unwrap()
        .unwrap();
    app.upgrade(
        "adder",
        ModuleSpec::from_file(guests::ADDER)
            .placement(Placement::Process)
            .timeout(Duration::from_secs(5)),
    )
    .await
    .expect("upgrades");
    let out = app
        .call("calc", &format!("{CALC}#add"), &[Val::U32(2), Val::U32(3)])
        .await
        .unwrap();
    assert_eq!(u32s(&out), 5);
    assert_ne!(
        membrane::process::workers::worker_pid(&app, "adder").unwrap(),
        Some(old)
    );
}
