//! Limits added for hostile guests (fuel, host-call bytes, output) and supervision.

use std::time::Duration;

use membrane::{AppSpec, ErrorKind, Health, ModuleSpec, RestartPolicy, Runtime, Val};

use crate::common::*;

#[tokio::test]
async fn fuel_stops_a_loop_deterministically() {
    let mut config = crate::common::config();
    config.fuel = true;
    let rt = Runtime::new(config).unwrap();
    let app = rt
        .load_spec(AppSpec::new().module("m", ModuleSpec::from_file(guests::PROBE).fuel(5_000_000)))
        .await
        .unwrap();
    let e = caps(&app, "spin", &[]).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::OutOfFuel, "{}", membrane::chain(&e));
    // A small call fits in the budget, which is refilled for every call.
    for _ in 0..3 {
        assert_eq!(
            caps(&app, "length", &[s("abc")]).await.unwrap()[0],
            Val::U64(3)
        );
    }
    // Fuel on a runtime that does not meter it is a load error that says what to change.
    let e = runtime()
        .load_spec(AppSpec::new().module("m", ModuleSpec::from_file(guests::PROBE).fuel(1)))
        .await
        .err()
        .unwrap();
    assert_eq!(e.kind(), ErrorKind::Manifest);
    assert_eq!(e.key(), Some("modules.m.limits.fuel"));
}

#[tokio::test]
async fn hostcall_limit_caps_bytes_passed_to_the_host() {
    // WASI streams already cut writes into small pieces; a linked call hands the host a
    // whole value at once, so that is where the limit bites.
    let app = runtime()
        .load_spec(
            AppSpec::new()
                .module(
                    "relay",
                    ModuleSpec::from_file(guests::RELAY)
                        .link("membrane-test:chain/work", "worker")
                        .hostcall(1 << 20),
                )
                .module("worker", ModuleSpec::from_file(guests::WORKER)),
        )
        .await
        .unwrap();
    let echo = "membrane-test:chain/relay#echo";
    let e = app
        .call("relay", echo, &[s(&"z".repeat(2 << 20))])
        .await
        .unwrap_err();
    assert_eq!(
        e.kind(),
        ErrorKind::HostcallLimit,
        "{}",
        membrane::chain(&e)
    );
    assert_eq!(e.module(), Some("relay"));
    let out = app
        .call("relay", echo, &[s(&"z".repeat(1000))])
        .await
        .unwrap();
    assert_eq!(out[0], s(&format!("relay:worker:{}", "z".repeat(1000))));
}

#[test]
fn output_past_the_limit_is_dropped_and_counted() {
    let tmp = tempfile::tempdir().unwrap();
    let m = write_manifest(
        tmp.path(),
        &format!(
            "[modules.p]\ncomponent = {:?}\ngrants = {{ stdout = \"inherit\" }}\nlimits = {{ output = \"1KiB\" }}\n",
            guests::PROBE
        ),
    );
    let text = format!("\"{}\"", "o".repeat(10_000));
    let o = membrane(&[
        "call",
        m.to_str().unwrap(),
        "p",
        &format!("{CAPS}#print"),
        &text,
        "false",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(
        stdout(&o).matches('o').count(),
        1024,
        "only the first KiB is written"
    );
    assert!(stderr(&o).contains("dropped=8976"), "{}", stderr(&o));
}

#[tokio::test]
async fn repeated_failures_open_the_circuit_and_a_good_trial_closes_it() {
    let policy = {
        let mut p = RestartPolicy::default();
        p.max = 2;
        p.within = Duration::from_secs(60);
        // Long against the few calls below that must see the circuit open, which a busy
        // machine stretches; waited out once.
        p.backoff = Duration::from_secs(1);
        p
    };
    let app = runtime()
        .load_spec(
            AppSpec::new()
                .module("m", ModuleSpec::from_file(guests::PROBE).restart(policy))
                .module("good", ModuleSpec::from_file(guests::TYPES)),
        )
        .await
        .unwrap();
    for _ in 0..3 {
        let e = caps(&app, "panic", &[s("again")]).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Trap);
    }
    // Open: even a healthy call fails fast.
    let e = caps(&app, "length", &[s("x")]).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unavailable, "{e}");
    assert!(matches!(
        app.status()["m"].health,
        Health::Unavailable { .. }
    ));
    // The rest of the app is unaffected.
    assert_eq!(
        app.call("good", "hello", &[s("g")]).await.unwrap()[0],
        s("hello, g")
    );
    // After the back-off, one trial call is let through; it succeeds and closes the circuit.
    tokio::time::sleep(policy.backoff + Duration::from_millis(50)).await;
    assert_eq!(app.status()["m"].health, Health::Trial);
    assert_eq!(
        caps(&app, "length", &[s("xy")]).await.unwrap()[0],
        Val::U64(2)
    );
    assert_eq!(app.status()["m"].health, Health::Healthy);
    assert_eq!(app.status()["m"].recent_failures, 0);
}

#[tokio::test]
async fn a_failed_trial_reopens_with_a_longer_backoff() {
    let mut policy = RestartPolicy::default();
    policy.max = 0;
    // The back-off is the subject: long against the moments between the failed trial and
    // the status read below, which a busy machine stretches (at 200 ms it failed so).
    let backoff = Duration::from_secs(1);
    policy.backoff = backoff;
    let app = probe(|m| m.restart(policy)).await;
    caps(&app, "panic", &[s("1")]).await.unwrap_err();
    assert_eq!(
        caps(&app, "length", &[s("x")]).await.unwrap_err().kind(),
        ErrorKind::Unavailable
    );
    // Waiting out the back-off is what opens the trial: a later wake-up changes nothing.
    tokio::time::sleep(backoff + Duration::from_millis(50)).await;
    assert_eq!(
        caps(&app, "panic", &[s("trial")]).await.unwrap_err().kind(),
        ErrorKind::Trap
    );
    match app.status()["m"].health {
        // Longer than the first back-off: it grew.
        Health::Unavailable { retry_in } => assert!(retry_in > backoff, "{retry_in:?}"),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn restart_policy_in_the_manifest() {
    let tmp = tempfile::tempdir().unwrap();
    let m = write_manifest(
        tmp.path(),
        &format!(
            "[modules.p]\ncomponent = {:?}\nrestart = {{ max = 3, within = \"10s\", backoff = \"2s\" }}\nlimits = {{ hostcall = \"1MiB\", output = \"4KiB\" }}\n",
            guests::PROBE
        ),
    );
    let app = runtime().load(&m).await.unwrap();
    let spec = app.spec("p").unwrap();
    assert_eq!(spec.restart.max, 3);
    assert_eq!(spec.restart.within, Duration::from_secs(10));
    assert_eq!(spec.restart.backoff, Duration::from_secs(2));
    assert_eq!(
        (spec.limits.hostcall, spec.limits.output),
        (1 << 20, 4 << 10)
    );
    let bad = write_manifest(
        tmp.path(),
        &format!(
            "[modules.p]\ncomponent = {:?}\nrestart = {{ within = \"0s\" }}\n",
            guests::PROBE
        ),
    );
    let e = runtime().load(&bad).await.err().unwrap();
    assert_eq!(e.kind(), ErrorKind::Manifest);
    assert_eq!(e.key(), Some("modules.p.restart.within"));
    assert_eq!(e.location().map(|l| l.line), Some(3));
}

#[test]
fn the_app_sets_its_wasm_stack() {
    let tmp = tempfile::tempdir().unwrap();
    let call = |stack: &str| {
        let m = write_manifest(
            tmp.path(),
            &format!(
                "[app]\nstack = {stack:?}\n[modules.p]\ncomponent = {:?}\n",
                guests::PROBE
            ),
        );
        membrane(&[
            "call",
            m.to_str().unwrap(),
            "p",
            &format!("{CAPS}#recurse"),
            "3000",
        ])
    };
    let o = call("1MiB");
    assert_eq!(stdout(&o), "3000\n", "{}", stderr(&o));
    assert_clean_failure(&call("64KiB"), "error[stack-overflow]");
    assert_clean_failure(&call("16KiB"), "outside 64KiB..=1MiB");
}

#[tokio::test]
async fn an_app_stack_the_runtime_was_not_built_for_is_refused() {
    let e = runtime()
        .load_spec(
            AppSpec::new()
                .stack(256 << 10)
                .module("p", ModuleSpec::from_file(guests::PROBE)),
        )
        .await
        .err()
        .unwrap();
    assert_eq!(e.kind(), ErrorKind::Manifest);
    assert_eq!(e.key(), Some("app.stack"));
}

#[tokio::test]
async fn a_failing_provider_does_not_take_its_callers_out_of_service() {
    let mut strict = RestartPolicy::default();
    strict.max = 1;
    strict.backoff = Duration::from_secs(30);
    let app = runtime()
        .load_spec(
            AppSpec::new()
                .module(
                    "relay",
                    ModuleSpec::from_file(guests::RELAY)
                        .link("membrane-test:chain/work", "worker")
                        .restart(strict),
                )
                .module(
                    "worker",
                    ModuleSpec::from_file(guests::WORKER).restart(strict),
                ),
        )
        .await
        .unwrap();
    for _ in 0..2 {
        let e = app
            .call("relay", "membrane-test:chain/relay#fail", &[s("x")])
            .await
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Trap);
    }
    let status = app.status();
    assert_eq!(status["relay"].health, Health::Healthy);
    assert!(
        matches!(status["worker"].health, Health::Unavailable { .. }),
        "{:?}",
        status["worker"]
    );
    // The relay answers; what it needs from the worker fails fast as Unavailable.
    let e = app
        .call(
            "relay",
            "membrane-test:chain/relay#add",
            &[Val::U64(1), Val::U64(2)],
        )
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unavailable, "{}", membrane::chain(&e));
    assert_eq!(app.status()["relay"].health, Health::Healthy);
}
