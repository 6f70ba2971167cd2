//! A module's state moves to its new version through `membrane:lifecycle/snapshot`.

use membrane::{AppSpec, ErrorKind, ModuleSpec};

use crate::common::{guests, runtime, text_of};

const COUNTER: &str = "acme:counter/api";

fn counter(component: &str) -> ModuleSpec {
    ModuleSpec::from_file(component).concurrency(1, 8)
}

async fn call(app: &membrane::App, func: &str) -> String {
    let out = app
        .call("c", &format!("{COUNTER}#{func}"), &[])
        .await
        .unwrap();
    text_of(&out[0])
}

async fn counted_to_three() -> membrane::App {
    let app = runtime()
        .load_spec(AppSpec::new().module("c", counter(guests::COUNTER_V1)))
        .await
        .unwrap();
    for _ in 0..3 {
        call(&app, "incr").await;
    }
    assert_eq!(call(&app, "get").await, "3");
    app
}

#[tokio::test]
async fn the_state_moves_when_both_versions_export_the_snapshot() {
    let app = counted_to_three().await;
    let r = app.upgrade("c", counter(guests::COUNTER_V2)).await.unwrap();
    assert!(r.state_moved);
    assert_eq!(call(&app, "version").await, "v2");
    assert_eq!(call(&app, "get").await, "3");
    assert_eq!(call(&app, "incr").await, "4");
    // And back.
    let r = app.upgrade("c", counter(guests::COUNTER_V1)).await.unwrap();
    assert!(r.state_moved);
    assert_eq!(call(&app, "get").await, "4");
}

#[tokio::test]
async fn a_failed_restore_is_a_failed_gate_and_keeps_the_state() {
    let app = counted_to_three().await;
    let e = app
        .upgrade("c", counter(guests::COUNTER_BAD))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Link, "{}", membrane::chain(&e));
    assert_eq!(
        e.export(),
        Some("membrane:lifecycle/snapshot@0.1.0#restore")
    );
    assert_eq!(app.status()["c"].generation, 1);
    assert_eq!(call(&app, "get").await, "3");
}

#[tokio::test]
async fn no_state_moves_when_a_version_lacks_the_snapshot_or_has_more_instances() {
    let app = counted_to_three().await;
    let r = app
        .upgrade("c", counter(guests::COUNTER_PLAIN))
        .await
        .unwrap();
    assert!(!r.state_moved);
    assert_eq!(call(&app, "get").await, "0");

    let app = counted_to_three().await;
    let r = app
        .upgrade_with(
            "c",
            counter(guests::COUNTER_V2).concurrency(2, 8),
            membrane::UpgradeOptions::new().accept_wider_grants(),
        )
        .await
        .unwrap();
    assert!(!r.state_moved);
    assert_eq!(call(&app, "get").await, "0");
}
