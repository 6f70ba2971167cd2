//! Calls of WASI 0.3 exports: the async ABI, many calls in one instance, a deadline per call.

use std::time::Duration;

use membrane::{ErrorKind, Val};

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_async_export_answers() {
    let app = p3_app(guests::P3_LIB, |m| m).await;
    let out = calc(&app, "add", &[Val::U32(2), Val::U32(40)])
        .await
        .unwrap();
    assert_eq!(out, vec![Val::U32(42)]);
    let out = calc(&app, "upper", &[Val::String("héllo".into())])
        .await
        .unwrap();
    assert_eq!(out, vec![Val::String("HÉLLO".into())]);
    // A plain (synchronous) export of the same component.
    let out = app
        .call(
            "m",
            "membrane:p3lib/sync-calc@0.1.0#double",
            &[Val::U32(21)],
        )
        .await
        .unwrap();
    assert_eq!(out, vec![Val::U32(42)]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sixteen_waiting_calls_share_one_instance() {
    let app = p3_app(guests::P3_LIB, |m| m.concurrency(1, 64)).await;
    let calls = (0..16).map(|_| calc(&app, "sleep", &[Val::U32(300)]));
    let out = futures_util::future::join_all(calls).await;
    for o in out {
        assert_eq!(o.unwrap(), vec![Val::U32(300)]);
    }
    let m = &app.status()["m"];
    assert_eq!(m.busy + m.idle, 1, "{m:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_call_times_out_while_its_neighbours_finish() {
    let app = p3_app(guests::P3_LIB, |m| {
        m.concurrency(1, 64).timeout(Duration::from_millis(500))
    })
    .await;
    let slow = calc(&app, "sleep", &[Val::U32(5_000)]);
    let quick = async {
        // Started after the slow one, on the same instance.
        tokio::task::yield_now().await;
        calc(&app, "sleep", &[Val::U32(50)]).await
    };
    let (slow, quick) = tokio::join!(slow, quick);
    assert_eq!(quick.unwrap(), vec![Val::U32(50)]);
    let e = slow.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Timeout, "{e}");
    assert_eq!(e.module(), Some("m"));
    // The instance took no more calls: the next call runs on a new one and answers.
    let out = calc(&app, "add", &[Val::U32(1), Val::U32(1)])
        .await
        .unwrap();
    assert_eq!(out, vec![Val::U32(2)]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cpu_loop_ends_its_instance_and_its_neighbours_fail_typed() {
    let app = p3_app(guests::P3_LIB, |m| {
        m.concurrency(1, 64).timeout(Duration::from_millis(300))
    })
    .await;
    // Would answer after 100 ms, but the loop holds the instance from then on.
    let neighbour = calc(&app, "sleep", &[Val::U32(100)]);
    let spin = async {
        tokio::task::yield_now().await;
        calc(&app, "spin", &[]).await
    };
    let (neighbour, spin) = tokio::join!(neighbour, spin);
    let e = spin.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Timeout, "{e}");
    let e = neighbour.unwrap_err();
    assert!(
        matches!(e.kind(), ErrorKind::Timeout | ErrorKind::Unavailable),
        "{e}"
    );
    // The module still serves.
    let out = calc(&app, "add", &[Val::U32(1), Val::U32(2)])
        .await
        .unwrap();
    assert_eq!(out, vec![Val::U32(3)]);
}

#[test]
fn a_blocking_call_reaches_a_p3_module() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let app = rt.block_on(p3_app(guests::P3_LIB, |m| m));
    let out = app
        .call_blocking("m", &format!("{CALC}#add"), &[Val::U32(5), Val::U32(6)])
        .unwrap();
    assert_eq!(out, vec![Val::U32(11)]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_a_p3_module_cannot_have_is_refused_at_load() {
    let cases: Vec<(&str, membrane::ModuleSpec)> = vec![
        (
            "modules.m.limits.fuel",
            membrane::ModuleSpec::from_file(guests::P3_LIB).fuel(1_000_000),
        ),
        (
            "modules.m.limits.concurrency",
            membrane::ModuleSpec::from_file(guests::P3_LIB).calls_per_instance(0),
        ),
    ];
    let mut config = config();
    config.fuel = true;
    config.worker_program = Some(env!("CARGO_BIN_EXE_membrane").into());
    let rt = membrane::Runtime::new(config).unwrap();
    for (key, m) in cases {
        let Err(e) = rt.load_spec(membrane::AppSpec::new().module("m", m)).await else {
            panic!("{key}: the app loaded");
        };
        let found = std::iter::once(&e)
            .chain(e.problems())
            .any(|p| p.key() == Some(key));
        assert!(found, "{key}: {e:?}");
    }
}

/// A placement that does not say it carries WASI 0.3 modules (`Boundary::carries_wasi_p3`)
/// refuses them at load, naming the placements that do (every built-in one does).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_placement_that_cannot_carry_p3_refuses_it_at_load() {
    struct NoP3;
    impl membrane::Boundary for NoP3 {
        fn placement(&self) -> membrane::Placement {
            membrane::Placement::Process
        }
    }
    let rt = runtime();
    rt.register_placement(std::sync::Arc::new(NoP3));
    let spec =
        membrane::ModuleSpec::from_file(guests::P3_LIB).placement(membrane::Placement::Process);
    let Err(e) = rt
        .load_spec(membrane::AppSpec::new().module("m", spec))
        .await
    else {
        panic!("a 0.3 module loaded in a placement that cannot carry it");
    };
    let p = std::iter::once(&e)
        .chain(e.problems())
        .find(|p| p.key() == Some("modules.m.placement"))
        .unwrap_or_else(|| panic!("{e:?}"));
    assert_eq!(p.module(), Some("m"));
    let carriers = p.message().split("one of").nth(1).unwrap_or_default();
    assert!(carriers.contains("\"isolated\""), "{p}");
    assert!(!carriers.contains("\"process\""), "{p}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_typed_handle_to_a_p3_module_is_refused_with_the_way_to_call_it() {
    let app = p3_app(guests::P3_LIB, |m| m).await;
    let Err(e) = app.typed::<(u32, u32), (u32,)>("m", &format!("{CALC}#add")) else {
        panic!("a typed handle to a WASI 0.3 module was made");
    };
    assert_eq!(e.kind(), ErrorKind::Unavailable, "{e}");
    assert!(e.to_string().contains("App::call"), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn past_instances_times_concurrency_and_the_queue_a_call_is_overloaded() {
    let app = p3_app(guests::P3_LIB, |m| {
        m.concurrency(1, 0).calls_per_instance(2)
    })
    .await;
    // The one instance, made and idle: a call takes room in it without waiting.
    calc(&app, "add", &[Val::U32(0), Val::U32(0)])
        .await
        .unwrap();
    // join! polls in order: the first two take both rooms, the third finds none, no free
    // slot for another instance and no queue.
    let (a, b, c) = tokio::join!(
        calc(&app, "sleep", &[Val::U32(300)]),
        calc(&app, "sleep", &[Val::U32(300)]),
        calc(&app, "add", &[Val::U32(1), Val::U32(1)]),
    );
    assert_eq!(a.unwrap(), vec![Val::U32(300)]);
    assert_eq!(b.unwrap(), vec![Val::U32(300)]);
    let e = c.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Overloaded, "{e}");
    assert_eq!(e.module(), Some("m"));
}
