//! WASI 0.3 modules with `placement = "process"`: in a worker, one call at a time per
//! connection, as providers to 0.3 and 0.2 importers and as importers themselves; a
//! CPU loop and a wait past the deadline end in Timeout and the worker serves on; a stream
//! or a future into or out of a worker is refused at load.

use std::time::Duration;

use membrane::{AppSpec, ErrorKind, ModuleSpec, Placement, Val};

use super::*;

const PLAIN: &str = "membrane:p3lib/plain-calc";
const ASYNC_PLAIN: &str = "membrane:p3lib/async-plain";

async fn load(spec: AppSpec) -> App {
    worker_runtime()
        .load_spec(spec)
        .await
        .unwrap_or_else(|e| panic!("{}", membrane::chain(&e)))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_p3_provider_in_a_worker_serves_p3_and_p2_importers() {
    let app = load(
        AppSpec::new()
            .module(
                "calc",
                ModuleSpec::from_file(guests::P3_PLAIN_CALC).placement(Placement::Process),
            )
            .module(
                "user",
                ModuleSpec::from_file(guests::P3_PLAIN_USER).link(PLAIN, "calc"),
            )
            .module(
                "p2user",
                ModuleSpec::from_file(guests::P2_CALC_USER).link(PLAIN, "calc"),
            ),
    )
    .await;
    assert!(app.status()["calc"].worker_pid.is_some());
    let out = app
        .call("calc", &format!("{PLAIN}#upper"), &[s("worker")])
        .await
        .unwrap();
    assert_eq!(out, vec![s("WORKER")]);
    let add = "membrane:p3lib/relay-plain@0.1.0#add-twice";
    let args: Vec<_> = (0..16u32).map(|i| [Val::U32(i), Val::U32(1)]).collect();
    let calls = args.iter().map(|a| app.call("user", add, a));
    for (i, out) in futures_util::future::join_all(calls)
        .await
        .into_iter()
        .enumerate()
    {
        assert_eq!(out.unwrap(), vec![Val::U32(i as u32 + 2)]);
    }
    let twice = "membrane:p3lib/plain-user@0.1.0#add-twice";
    let out = app.call("p2user", twice, &[Val::U32(2), Val::U32(3)]).await;
    assert_eq!(out.unwrap(), vec![Val::U32(8)]);
}

/// The worker's links: a 0.3 importer's plain and `async func` imports reach providers in
/// the host process.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_p3_importer_in_a_worker_calls_plain_and_async_imports() {
    let app = load(
        AppSpec::new()
            .module("lib", ModuleSpec::from_file(guests::P3_LIB))
            .module("plain", ModuleSpec::from_file(guests::P2_PLAIN_CALC))
            .module(
                "async-user",
                ModuleSpec::from_file(guests::P3_ASYNC_USER)
                    .link(ASYNC_PLAIN, "lib")
                    .placement(Placement::Process),
            )
            .module(
                "plain-user",
                ModuleSpec::from_file(guests::P3_PLAIN_USER)
                    .link(PLAIN, "plain")
                    .placement(Placement::Process),
            ),
    )
    .await;
    let out = app
        .call(
            "async-user",
            "membrane:p3lib/relay-async@0.1.0#add-twice",
            &[Val::U32(2), Val::U32(3)],
        )
        .await;
    assert_eq!(out.unwrap(), vec![Val::U32(8)]);
    let out = app
        .call(
            "async-user",
            "membrane:p3lib/relay-async@0.1.0#shout",
            &[s("up")],
        )
        .await;
    assert_eq!(out.unwrap(), vec![s("UP")]);
    let out = app
        .call(
            "plain-user",
            "membrane:p3lib/relay-plain@0.1.0#add-twice",
            &[Val::U32(1), Val::U32(1)],
        )
        .await;
    assert_eq!(out.unwrap(), vec![Val::U32(3)]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_p3_call_past_its_deadline_in_a_worker_times_out_and_the_worker_serves_on() {
    let app = load(
        AppSpec::new().module(
            "m",
            ModuleSpec::from_file(guests::P3_LIB)
                .placement(Placement::Process)
                .timeout(Duration::from_millis(500)),
        ),
    )
    .await;
    let pid = app.status()["m"].worker_pid;
    // On the CPU: the epoch clock interrupts it.
    let e = calc(&app, "spin", &[]).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Timeout, "{e}");
    // Waiting: the worker's own timer ends it.
    let e = calc(&app, "sleep", &[Val::U32(600_000)]).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Timeout, "{e}");
    // The same worker answers the next call.
    let out = calc(&app, "add", &[Val::U32(40), Val::U32(2)]).await;
    assert_eq!(out.unwrap(), vec![Val::U32(42)]);
    let out = calc(&app, "sleep", &[Val::U32(1)]).await;
    assert_eq!(out.unwrap(), vec![Val::U32(1)]);
    assert_eq!(app.status()["m"].worker_pid, pid);
}

/// Streams and futures cannot cross into or out of a worker: each function that passes
/// one is refused, naming the module in the worker.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_or_future_link_with_a_worker_is_refused_at_load() {
    for (lib, relay, refused) in [
        (Placement::Process, Placement::Isolated, "lib"),
        (Placement::Isolated, Placement::Process, "relay"),
    ] {
        let Err(e) = worker_runtime()
            .load_spec(
                AppSpec::new()
                    .module("lib", ModuleSpec::from_file(guests::P3_LIB).placement(lib))
                    .module(
                        "relay",
                        ModuleSpec::from_file(guests::P3_RELAY)
                            .link(CALC, "lib")
                            .placement(relay),
                    ),
            )
            .await
        else {
            panic!("a stream link with a worker loaded");
        };
        let problems: Vec<_> = std::iter::once(&e)
            .chain(e.problems())
            .filter(|p| p.key() == Some(&format!("modules.{refused}.placement")))
            .collect();
        let mut exports: Vec<_> = problems.iter().filter_map(|p| p.export()).collect();
        exports.sort();
        let passing = ["count-bytes", "later", "repeat", "tick", "upper-later"];
        assert_eq!(exports, passing.map(|f| format!("{CALC}#{f}")), "{e:?}");
        assert!(
            problems.iter().all(|p| p.kind() == ErrorKind::Link
                && p.module() == Some(refused)
                && p.to_string().contains("worker")),
            "{e:?}"
        );
    }
}

/// A 0.3 module in a worker sees what it is granted and nothing else, under the worker's
/// OS sandbox as well as the WASI grants.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_p3_module_in_a_worker_sees_only_its_grants() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("hello.txt"), "from the host").unwrap();
    let outside = tempfile::tempdir().unwrap();
    std::fs::write(outside.path().join("secret.txt"), "secret").unwrap();
    let app = load(
        AppSpec::new()
            .module("lib", ModuleSpec::from_file(guests::P3_LIB))
            .module(
                "m",
                ModuleSpec::from_file(guests::P3_ASYNC_USER)
                    .link(ASYNC_PLAIN, "lib")
                    .placement(Placement::Process)
                    .env("GREETING", "hi")
                    .dir(dir.path(), "/data", membrane::DirMode::ReadOnly),
            ),
    )
    .await;
    let f = |name: &str| format!("membrane:p3lib/relay-async@0.1.0#{name}");
    let some = |v: Val| Val::Option(Some(Box::new(v)));
    let out = app.call("m", &f("env"), &[s("GREETING")]).await.unwrap();
    assert_eq!(out, vec![some(s("hi"))]);
    for name in ["PATH", "HOME", "MEMBRANE_WORKER_FD"] {
        let out = app.call("m", &f("env"), &[s(name)]).await.unwrap();
        assert_eq!(out, vec![Val::Option(None)], "{name}");
    }
    let ok = |v: Val| Val::Result(Ok(Some(Box::new(v))));
    let out = app.call("m", &f("read"), &[s("/data/hello.txt")]).await;
    assert_eq!(out.unwrap(), vec![ok(s("from the host"))]);
    for path in [
        format!("/data/../{}/secret.txt", outside.path().display()),
        format!("{}/secret.txt", outside.path().display()),
    ] {
        let out = app.call("m", &f("read"), &[s(&path)]).await.unwrap();
        assert!(matches!(&out[..], [Val::Result(Err(_))]), "{path}: {out:?}");
    }
}
