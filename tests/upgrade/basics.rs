//! Upgrades and downgrades of a linked provider, the gate, racing upgrades, typed handles,
//! a call that crosses the upgraded module twice, and the drain time.

use std::sync::Arc;
use std::time::Duration;

use membrane::{ErrorKind, GenerationState, ModuleSpec, UpgradePolicy, Val};

use super::{API, FRONT, greet, hello, linked};
use crate::common::{guests, text_of};

fn sha256_of(path: &str) -> String {
    use std::process::Command;
    let out = Command::new("sha256sum").arg(path).output().unwrap();
    String::from_utf8(out.stdout).unwrap()[..64].to_string()
}

#[tokio::test]
async fn upgrade_then_downgrade_a_linked_provider() {
    let app = linked(greet(guests::GREET_V1)).await;
    assert_eq!(hello(&app).await.unwrap(), "v1 hello x");
    let st = &app.status()["greet"];
    assert_eq!(st.generation, 1);
    assert_eq!(st.hash, sha256_of(guests::GREET_V1));
    assert_eq!(st.last_upgrade, None);

    let r = app.upgrade("greet", greet(guests::GREET_V2)).await.unwrap();
    assert_eq!((r.from, r.to), (1, 2));
    assert_eq!(r.hash, sha256_of(guests::GREET_V2));
    assert!(!r.state_moved);
    assert_eq!(hello(&app).await.unwrap(), "v2 hello x");
    // Direct calls and the blocking path see the new version too.
    let direct = app
        .call("greet", &format!("{API}#version"), &[])
        .await
        .unwrap();
    assert_eq!(text_of(&direct[0]), "v2");
    let st = &app.status()["greet"];
    assert_eq!(st.generation, 2);
    assert!(matches!(st.state, GenerationState::Probation { .. }));
    let last = st.last_upgrade.clone().unwrap();
    assert!(last.ok);
    assert_eq!((last.from, last.to), (1, 2));

    // A downgrade is an upgrade to the older component.
    let r = app.upgrade("greet", greet(guests::GREET_V1)).await.unwrap();
    assert_eq!((r.from, r.to), (2, 3));
    assert_eq!(hello(&app).await.unwrap(), "v1 hello x");
    let blocking = {
        let app = app.clone();
        tokio::task::spawn_blocking(move || {
            app.call_blocking("greet", &format!("{API}#version"), &[])
        })
        .await
        .unwrap()
        .unwrap()
    };
    assert_eq!(text_of(&blocking[0]), "v1");
    assert_eq!(app.status()["greet"].hash, sha256_of(guests::GREET_V1));
}

#[tokio::test]
async fn the_importer_can_be_upgraded_too() {
    let app = linked(greet(guests::GREET_V1)).await;
    let front = ModuleSpec::from_file(guests::GREET_FRONT)
        .link(API, "greet")
        .link("acme:greet/tally", "greet")
        .concurrency(2, 16);
    let r = app.upgrade_with("front", front, wider()).await.unwrap();
    assert_eq!((r.from, r.to), (1, 2));
    assert_eq!(hello(&app).await.unwrap(), "v1 hello x");
    assert_eq!(app.spec("front").unwrap().limits.instances, 2);
    assert_eq!(app.links().len(), 2);
}

/// Refused upgrades: the problem is named, nothing changes, the old version serves.
async fn refused(component: &str) -> membrane::Error {
    let app = linked(greet(guests::GREET_V1)).await;
    assert_eq!(hello(&app).await.unwrap(), "v1 hello x");
    let e = app.upgrade("greet", greet(component)).await.unwrap_err();
    assert_eq!(hello(&app).await.unwrap(), "v1 hello x");
    let st = &app.status()["greet"];
    assert_eq!(st.generation, 1);
    assert_eq!(st.state, GenerationState::Serving);
    let last = st.last_upgrade.clone().unwrap();
    assert!(!last.ok);
    assert_eq!((last.from, last.to), (1, 1));
    e
}

#[tokio::test]
async fn the_gate_refuses_a_version_without_a_function_an_importer_uses() {
    let e = refused(guests::GREET_DROPPED).await;
    assert_eq!(e.kind(), ErrorKind::Link);
    assert_eq!(e.module(), Some("front"));
    let text = membrane::chain(&e);
    assert!(text.contains("hello"), "{text}");
}

#[tokio::test]
async fn the_gate_refuses_a_changed_type() {
    let e = refused(guests::GREET_CHANGED).await;
    assert_eq!(e.kind(), ErrorKind::Link);
    assert_eq!(e.module(), Some("front"));
    let text = membrane::chain(&e);
    assert!(text.contains("hello"), "{text}");
}

#[tokio::test]
async fn the_gate_refuses_a_major_version_bump() {
    let e = refused(guests::GREET_MAJOR).await;
    assert_eq!(e.kind(), ErrorKind::Link);
    let text = membrane::chain(&e);
    assert!(text.contains("2.0.0"), "{text}");
}

#[tokio::test]
async fn the_gate_refuses_bad_declarations_and_components_listing_every_problem() {
    let app = linked(greet(guests::GREET_V1)).await;
    // A zero timeout and a rollback ratio out of range: both reported, with their keys.
    let bad = greet(guests::GREET_V2)
        .timeout(Duration::ZERO)
        .upgrade(UpgradePolicy::default().rollback_ratio(0.0));
    let e = app.upgrade("greet", bad).await.unwrap_err();
    let mut keys: Vec<_> = e.problems().iter().map(|p| p.key()).collect();
    keys.sort();
    assert_eq!(
        keys,
        [
            Some("modules.greet.limits.timeout"),
            Some("modules.greet.upgrade.rollback_ratio")
        ],
        "{}",
        membrane::chain(&e)
    );
    // A missing file.
    let e = app
        .upgrade("greet", greet("/nonexistent/greet.wasm"))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound, "{}", membrane::chain(&e));
    // Not a component.
    let e = app
        .upgrade("greet", ModuleSpec::from_bytes(b"\0asm garbage".to_vec()))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidComponent);
    // An import nobody serves.
    let e = app
        .upgrade("greet", greet(guests::NEEDS_KV))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Link);
    assert_eq!(hello(&app).await.unwrap(), "v1 hello x");
    assert_eq!(app.status()["greet"].generation, 1);
    // Unknown modules.
    let e = app
        .upgrade("nope", greet(guests::GREET_V2))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound);
}

#[tokio::test]
async fn a_compatible_minor_version_passes_the_gate() {
    let app = linked(greet(guests::GREET_V1)).await;
    app.upgrade("greet", greet(guests::GREET_MINOR))
        .await
        .unwrap();
    assert_eq!(app.status()["greet"].generation, 2);
    let v = app
        .call("greet", "acme:greet/api@1.1.0#version", &[])
        .await
        .unwrap();
    assert!(text_of(&v[0]).starts_with("v1.1"), "{v:?}");
    hello(&app).await.unwrap();
}

#[tokio::test]
async fn racing_upgrades_of_one_module_never_leave_a_half_state() {
    let app = linked(greet(guests::GREET_V1)).await;
    // The second upgrade's new variable is a wider grant, accepted: what may refuse either
    // upgrade is then only the race (a Denied here depended on which one came first).
    let (a, b) = tokio::join!(
        app.upgrade("greet", greet(guests::GREET_V2)),
        app.upgrade_with("greet", greet(guests::GREET_V1).env("X", "1"), wider()),
    );
    let mut oks = 0;
    for r in [a, b] {
        match r {
            Ok(_) => oks += 1,
            Err(e) => assert_eq!(e.kind(), ErrorKind::Conflict, "{}", membrane::chain(&e)),
        }
    }
    assert!(oks >= 1);
    let st = &app.status()["greet"];
    assert_eq!(st.generation, 1 + oks as u64);
    // Whichever won serves, whole.
    let version = app
        .call("greet", &format!("{API}#version"), &[])
        .await
        .unwrap();
    let v = text_of(&version[0]);
    let expected = if st.hash == sha256_of(guests::GREET_V2) {
        "v2"
    } else {
        "v1"
    };
    assert_eq!(v, expected);
}

#[tokio::test]
async fn typed_handles_follow_the_current_generation() {
    let app = linked(greet(guests::GREET_V1)).await;
    let version = app
        .typed::<(), (String,)>("greet", &format!("{API}#version"))
        .unwrap();
    assert_eq!(version.call(()).await.unwrap().0, "v1");
    app.upgrade("greet", greet(guests::GREET_V2)).await.unwrap();
    assert_eq!(version.call(()).await.unwrap().0, "v2");
    let v = version.clone();
    let blocking = tokio::task::spawn_blocking(move || v.call_blocking(()))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(blocking.0, "v2");
}

/// `front#twice` crosses into greet, pauses, and crosses again; the upgrade lands in the
/// pause. The test waits for the first crossing (greet counted it) instead of guessing when
/// it happened, and the new version is compiled before the call starts, so the upgrade is
/// milliseconds of work against a pause of seconds: a window that stays wide on a busy
/// machine. That the upgrade did land inside it is checked, not assumed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upgrade_between_two_crossings_of_one_call() {
    // Compiles v2 into the shared cache: the upgrade below then only loads it.
    drop(linked(greet(guests::GREET_V2)).await);
    let app = linked(greet(guests::GREET_V1)).await;
    let call = {
        let app = app.clone();
        tokio::spawn(async move {
            app.call(
                "front",
                &format!("{FRONT}#twice"),
                &[Val::String("x".into()), Val::U32(5000)],
            )
            .await
        })
    };
    crate::common::eventually("the first crossing", || app.status()["greet"].calls == 1).await;
    app.upgrade("greet", greet(guests::GREET_V2)).await.unwrap();
    assert!(
        !call.is_finished(),
        "the upgrade outlasted the call's 5 s pause: no crossing was left to see it"
    );
    let out = call.await.unwrap().unwrap();
    let Val::List(items) = &out[0] else {
        panic!("{out:?}")
    };
    let texts: Vec<String> = items.iter().map(text_of).collect();
    assert_eq!(texts, ["v1 hello x", "v2 hello x"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_still_running_at_the_drain_time_is_ended_as_unavailable() {
    let probe = |env: &str| {
        ModuleSpec::from_file(guests::PROBE)
            .env("V", env)
            .timeout(Duration::from_secs(20))
            .upgrade(
                UpgradePolicy::default()
                    .drain(Duration::from_millis(300))
                    .probation(Duration::ZERO),
            )
    };
    let app = super::runtime()
        .load_spec(membrane::AppSpec::new().module("m", probe("1")))
        .await
        .unwrap();
    let app = Arc::new(app);
    let spinning = {
        let app = app.clone();
        tokio::spawn(async move { crate::common::caps(&app, "spin", &[]).await })
    };
    super::eventually("the call runs", || app.status()["m"].busy == 1).await;
    let started = std::time::Instant::now();
    // The new version's variable is a wider grant: accepted.
    app.upgrade_with("m", probe("2"), wider()).await.unwrap();
    let e = spinning.await.unwrap().unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unavailable, "{}", membrane::chain(&e));
    assert!(started.elapsed() < Duration::from_secs(15));
    let st = &app.status()["m"];
    assert_eq!(st.ended, 1);
    super::eventually("nothing drains", || app.status()["m"].draining == 0).await;
    // The new generation serves.
    let v = crate::common::caps(&app, "get-env", &[Val::String("V".into())])
        .await
        .unwrap();
    assert_eq!(membrane::to_wave(&v[0]).unwrap(), "some(\"2\")");
}

#[tokio::test]
async fn the_gate_refuses_a_new_grant_that_reaches_another_modules_component() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("greet.wasm");
    std::fs::copy(guests::GREET_V1, &file).unwrap();
    let app = linked(greet(file.to_str().unwrap())).await;
    let front = ModuleSpec::from_file(guests::GREET_FRONT)
        .link(API, "greet")
        .link("acme:greet/tally", "greet")
        .dir(dir.path(), "/data", membrane::DirMode::ReadWrite);
    // Even with wider grants accepted, the gate refuses a grant that reaches host code.
    let e = app.upgrade_with("front", front, wider()).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Denied, "{}", membrane::chain(&e));
    assert_eq!(e.module(), Some("front"));
    assert_eq!(app.status()["front"].generation, 1);
}

/// Consent to wider grants and higher limits, for the upgrades that raise them.
fn wider() -> membrane::UpgradeOptions {
    membrane::UpgradeOptions::new().accept_wider_grants()
}
