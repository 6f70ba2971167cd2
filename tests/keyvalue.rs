//! `grants.keyvalue` and the embedded store: a real guest using `wasi:keyvalue`
//! (0.2.0-draft) against the app's redb file.

use std::path::Path;

use membrane::{AppSpec, BucketAccess, BucketSpec, KeyValueSpec, ModuleSpec, Placement, Val};

use crate::common::*;

const PROBE: &str = "membrane-test:kv/probe";

fn kv_probe() -> ModuleSpec {
    ModuleSpec::from_file(guests::KV_PROBE)
}

fn store_at(path: &Path) -> KeyValueSpec {
    KeyValueSpec::embedded(path)
        .bucket("notes", BucketSpec::new())
        .bucket("shared", BucketSpec::new())
        .bucket("tiny", BucketSpec::new().keys(2).value(8))
}

async fn app_with(path: &Path, module: ModuleSpec) -> membrane::App {
    runtime()
        .load_spec(AppSpec::new().keyvalue(store_at(path)).module("m", module))
        .await
        .unwrap()
}

fn s(v: &str) -> Val {
    Val::String(v.into())
}

/// Calls `func` and returns its `result` as `Ok(value)` or `Err(text)`.
async fn call(app: &membrane::App, func: &str, args: &[Val]) -> Result<Option<Val>, String> {
    let out = app
        .call("m", &format!("{PROBE}#{func}"), args)
        .await
        .unwrap();
    match out.into_iter().next() {
        Some(Val::Result(Ok(v))) => Ok(v.map(|b| *b)),
        Some(Val::Result(Err(Some(e)))) => match *e {
            Val::String(t) => Err(t),
            other => panic!("not a string error: {other:?}"),
        },
        other => panic!("not a result: {other:?}"),
    }
}

async fn get(app: &membrane::App, bucket: &str, key: &str) -> Result<Option<String>, String> {
    call(app, "get", &[s(bucket), s(key)])
        .await
        .map(|v| match v {
            Some(Val::Option(None)) => None,
            Some(Val::Option(Some(b))) => match *b {
                Val::String(t) => Some(t),
                other => panic!("{other:?}"),
            },
            other => panic!("{other:?}"),
        })
}

async fn set(app: &membrane::App, bucket: &str, key: &str, value: &str) -> Result<(), String> {
    call(app, "set", &[s(bucket), s(key), s(value)])
        .await
        .map(|_| ())
}

#[tokio::test]
async fn a_guest_reads_and_writes_its_granted_buckets() {
    let dir = tempfile::tempdir().unwrap();
    let app = app_with(
        &dir.path().join("state.redb"),
        kv_probe().bucket("notes", BucketAccess::ReadWrite),
    )
    .await;
    assert_eq!(get(&app, "notes", "a").await, Ok(None));
    for key in ["a", "", "with space", "dots.and/slash", "ünïcødé"] {
        set(&app, "notes", key, "v").await.unwrap();
        assert_eq!(
            get(&app, "notes", key).await,
            Ok(Some("v".into())),
            "{key:?}"
        );
    }
    assert_eq!(
        call(&app, "exists", &[s("notes"), s("a")]).await,
        Ok(Some(Val::Bool(true)))
    );
    call(&app, "delete", &[s("notes"), s("a")]).await.unwrap();
    assert_eq!(
        call(&app, "exists", &[s("notes"), s("a")]).await,
        Ok(Some(Val::Bool(false)))
    );
    // Counters: ASCII decimal, readable as a value.
    for expected in [5u64, 10] {
        assert_eq!(
            call(&app, "increment", &[s("notes"), s("n"), Val::U64(5)]).await,
            Ok(Some(Val::U64(expected)))
        );
    }
    assert_eq!(get(&app, "notes", "n").await, Ok(Some("10".into())));
    let e = call(&app, "increment", &[s("notes"), s("ünïcødé"), Val::U64(1)])
        .await
        .unwrap_err();
    assert!(e.contains("not a decimal integer"), "{e}");
    // Batches.
    let pairs = Val::List(vec![
        Val::Tuple(vec![s("x"), s("1")]),
        Val::Tuple(vec![s("y"), s("2")]),
    ]);
    call(&app, "set-many", &[s("notes"), pairs]).await.unwrap();
    let got = call(
        &app,
        "get-many",
        &[s("notes"), Val::List(vec![s("x"), s("nope"), s("y")])],
    )
    .await
    .unwrap();
    let opt = |v: Option<&str>| Val::Option(v.map(|t| Box::new(s(t))));
    assert_eq!(
        got,
        Some(Val::List(vec![opt(Some("1")), opt(None), opt(Some("2"))]))
    );
}

#[tokio::test]
async fn keys_are_listed_in_pages() {
    let dir = tempfile::tempdir().unwrap();
    let app = app_with(
        &dir.path().join("state.redb"),
        kv_probe().bucket("notes", BucketAccess::ReadWrite),
    )
    .await;
    let n = 2_500;
    let pairs = Val::List(
        (0..n)
            .map(|i| Val::Tuple(vec![s(&format!("k{i:05}")), s("v")]))
            .collect(),
    );
    call(&app, "set-many", &[s("notes"), pairs]).await.unwrap();
    let mut all = Vec::new();
    let mut cursor = None;
    loop {
        let page = call(
            &app,
            "keys",
            &[
                s("notes"),
                Val::Option(cursor.map(|c| Box::new(Val::U64(c)))),
            ],
        )
        .await
        .unwrap();
        let Some(Val::Tuple(parts)) = page else {
            panic!("{page:?}")
        };
        let Val::List(keys) = &parts[0] else { panic!() };
        assert!(keys.len() <= 1000);
        all.extend(keys.iter().cloned());
        match &parts[1] {
            Val::Option(Some(c)) => {
                let Val::U64(c) = **c else { panic!() };
                cursor = Some(c);
            }
            _ => break,
        }
    }
    let expected: Vec<Val> = (0..n).map(|i| s(&format!("k{i:05}"))).collect();
    assert_eq!(all, expected);
}

#[tokio::test]
async fn ungranted_buckets_and_writes_to_read_only_ones_are_denied() {
    let dir = tempfile::tempdir().unwrap();
    let app = app_with(
        &dir.path().join("state.redb"),
        kv_probe()
            .bucket("notes", BucketAccess::ReadWrite)
            .bucket("shared", BucketAccess::ReadOnly),
    )
    .await;
    // A bucket of the app the module was not granted, and one the app does not have: the
    // same answer, which says nothing about whether it exists.
    for bucket in ["tiny", "absent"] {
        assert_eq!(
            get(&app, bucket, "k").await,
            Err("access-denied".to_string())
        );
    }
    assert_eq!(get(&app, "shared", "k").await, Ok(None));
    assert_eq!(
        set(&app, "shared", "k", "v").await,
        Err("access-denied".to_string())
    );
    assert_eq!(
        call(&app, "increment", &[s("shared"), s("n"), Val::U64(1)]).await,
        Err("access-denied".to_string())
    );
    let metrics = app.metrics_text();
    let denied = metrics
        .lines()
        .find(|l| {
            l.starts_with("membrane_denials_total")
                && l.contains("capability=\"keyvalue\"")
                && l.contains("module=\"m\"")
        })
        .unwrap_or_else(|| panic!("{metrics}"));
    assert!(denied.ends_with(" 4"), "{denied}");

    // Without any grant, every bucket is denied.
    drop(app);
    let app = app_with(&dir.path().join("state.redb"), kv_probe()).await;
    assert_eq!(
        get(&app, "notes", "k").await,
        Err("access-denied".to_string())
    );
}

#[tokio::test]
async fn a_write_past_a_quota_fails_in_the_guest_and_a_delete_frees_room() {
    let dir = tempfile::tempdir().unwrap();
    let app = app_with(
        &dir.path().join("state.redb"),
        kv_probe().bucket("tiny", BucketAccess::ReadWrite),
    )
    .await;
    let e = set(&app, "tiny", "big", "123456789").await.unwrap_err();
    assert!(
        e.starts_with("other: ") && e.contains("larger than bucket"),
        "{e}"
    );
    set(&app, "tiny", "a", "1").await.unwrap();
    set(&app, "tiny", "b", "2").await.unwrap();
    let e = set(&app, "tiny", "c", "3").await.unwrap_err();
    assert!(e.contains("most keys (2)"), "{e}");
    // The module keeps serving; a delete makes room.
    call(&app, "delete", &[s("tiny"), s("a")]).await.unwrap();
    set(&app, "tiny", "c", "3").await.unwrap();
}

#[tokio::test]
async fn data_outlives_the_app_and_one_process_owns_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state").join("notes.redb");
    let module = || kv_probe().bucket("notes", BucketAccess::ReadWrite);
    let app = app_with(&path, module()).await;
    set(&app, "notes", "kept", "yes").await.unwrap();
    // A second app on the same file while the first holds it.
    let e = runtime()
        .load_spec(
            AppSpec::new()
                .keyvalue(store_at(&path))
                .module("m", module()),
        )
        .await
        .err()
        .expect("one owner");
    assert_eq!(e.key(), Some("app.keyvalue.path"), "{e}");
    assert!(e.to_string().contains("in use"), "{e}");
    drop(app);
    let app = app_with(&path, module()).await;
    assert_eq!(get(&app, "notes", "kept").await, Ok(Some("yes".into())));
}

#[tokio::test]
async fn a_live_upgrade_keeps_the_data() {
    let dir = tempfile::tempdir().unwrap();
    let app = app_with(
        &dir.path().join("state.redb"),
        kv_probe().bucket("notes", BucketAccess::ReadWrite),
    )
    .await;
    set(&app, "notes", "k", "before").await.unwrap();
    app.upgrade("m", kv_probe().bucket("notes", BucketAccess::ReadWrite))
        .await
        .unwrap();
    assert_eq!(app.status()["m"].generation, 2);
    assert_eq!(get(&app, "notes", "k").await, Ok(Some("before".into())));
}

#[tokio::test]
async fn placements_that_cannot_reach_the_store_yet_are_refused_at_load() {
    let dir = tempfile::tempdir().unwrap();
    let e = worker_runtime()
        .load_spec(
            AppSpec::new()
                .keyvalue(store_at(&dir.path().join("state.redb")))
                .module(
                    "m",
                    kv_probe()
                        .placement(Placement::Process)
                        .bucket("notes", BucketAccess::ReadWrite),
                ),
        )
        .await
        .err()
        .expect("refused");
    let keys: Vec<_> = std::iter::once(&e)
        .chain(e.problems())
        .filter_map(|p| p.key())
        .collect();
    assert!(keys.contains(&"modules.m.grants.keyvalue"), "{keys:?}: {e}");
}
