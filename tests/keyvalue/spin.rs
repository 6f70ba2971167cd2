//! A guest built for Spin (`wasi:keyvalue@0.2.0-draft2`) runs unchanged beside one built
//! for wasmtime and wasmCloud (`0.2.0-draft`): the same grants, the same data, and this
//! version's compare-and-swap, on both stores.

use super::*;

const PROBE2: &str = "membrane-test:kv2/probe";

fn spin_probe() -> ModuleSpec {
    ModuleSpec::from_file(guests::KV_PROBE2)
}

/// Calls `func` of the Spin-style module `spin` and returns its `result`.
async fn call2(app: &membrane::App, func: &str, args: &[Val]) -> Result<Option<Val>, String> {
    call_in(app, "spin", &format!("{PROBE2}#{func}"), args).await
}

/// The app of the draft module `m` (read-write `notes`) and the draft2 module `spin`
/// (`notes` read-write, `shared` read-only).
async fn both(store: &Store) -> membrane::App {
    let spin = spin_probe()
        .bucket("notes", BucketAccess::ReadWrite)
        .bucket("shared", BucketAccess::ReadOnly);
    let (rt, spin, m) = match store {
        Store::Process(_) => (
            worker_runtime(),
            spin.placement(Placement::Process),
            writer().placement(Placement::Process),
        ),
        _ => (runtime(), spin, writer()),
    };
    rt.load_spec(store.spec().module("m", m).module("spin", spin))
        .await
        .unwrap()
}

on_both_stores!(
    both_versions_share_the_grants_and_the_data,
    compare_and_swap_wins_once_and_a_lost_race_gets_a_fresh_handle,
    concurrent_swaps_all_land,
);

in_a_worker_process!(
    both_versions_share_the_grants_and_the_data,
    compare_and_swap_wins_once_and_a_lost_race_gets_a_fresh_handle,
    concurrent_swaps_all_land,
);

async fn both_versions_share_the_grants_and_the_data(store: Store) {
    let app = both(&store).await;
    // Written by the draft guest, read by the draft2 one, and back.
    set(&app, "notes", "from-draft", "1").await.unwrap();
    let v = call2(&app, "get", &[s("notes"), s("from-draft")]).await;
    assert_eq!(v, Ok(Some(Val::Option(Some(Box::new(s("1")))))));
    call2(&app, "set", &[s("notes"), s("from-draft2"), s("2")])
        .await
        .unwrap();
    assert_eq!(
        get(&app, "notes", "from-draft2").await,
        Ok(Some("2".into()))
    );
    // Signed counters, the same ASCII decimal.
    let n = call2(&app, "increment", &[s("notes"), s("n"), Val::S64(-5)]).await;
    assert_eq!(n, Ok(Some(Val::S64(-5))));
    assert_eq!(get(&app, "notes", "n").await, Ok(Some("-5".into())));
    // Pages by key.
    let page = call2(&app, "keys", &[s("notes"), Val::Option(None)])
        .await
        .unwrap();
    let Some(Val::Tuple(parts)) = page else {
        panic!("{page:?}")
    };
    assert_eq!(
        parts[0],
        Val::List(vec![s("from-draft"), s("from-draft2"), s("n")])
    );
    assert_eq!(parts[1], Val::Option(None));
    // Batches in this version's shape.
    let got = call2(
        &app,
        "get-many",
        &[s("notes"), Val::List(vec![s("n"), s("absent")])],
    )
    .await
    .unwrap();
    assert_eq!(
        got,
        Some(Val::List(vec![
            Val::Tuple(vec![s("n"), Val::Option(Some(Box::new(s("-5"))))]),
            Val::Tuple(vec![s("absent"), Val::Option(None)]),
        ]))
    );
    // The same grants: a bucket not granted, and writes to a read-only one, are denied.
    assert_eq!(
        call2(&app, "get", &[s("tiny"), s("k")]).await,
        Err("access-denied".into())
    );
    assert_eq!(
        call2(&app, "set", &[s("shared"), s("k"), s("v")]).await,
        Err("access-denied".into())
    );
    assert_eq!(
        call2(&app, "cas-append", &[s("shared"), s("k"), s("x")]).await,
        Err("access-denied".into())
    );
}

async fn compare_and_swap_wins_once_and_a_lost_race_gets_a_fresh_handle(store: Store) {
    let app = both(&store).await;
    // Absent, then present: each swap on the entry it read.
    assert_eq!(
        call2(&app, "cas-append", &[s("notes"), s("log"), s("a")]).await,
        Ok(Some(Val::U32(1)))
    );
    assert_eq!(
        call2(&app, "cas-append", &[s("notes"), s("log"), s("b")]).await,
        Ok(Some(Val::U32(1)))
    );
    assert_eq!(get(&app, "notes", "log").await, Ok(Some("ab".into())));
    // A write between the read and the swap: the swap fails, and the fresh handle has
    // the value that won; a swap with it lands.
    for key in ["raced", "absent-then-raced"] {
        if key == "raced" {
            set(&app, "notes", key, "before").await.unwrap();
        }
        let seen = call2(
            &app,
            "cas-race",
            &[s("notes"), s(key), s("theirs"), s("mine")],
        )
        .await;
        assert_eq!(
            seen,
            Ok(Some(Val::Option(Some(Box::new(s("theirs")))))),
            "{key}"
        );
        assert_eq!(get(&app, "notes", key).await, Ok(Some("mine".into())));
    }
}

async fn concurrent_swaps_all_land(store: Store) {
    let app = std::sync::Arc::new(both(&store).await);
    let mut tasks = Vec::new();
    for t in 0..4 {
        let app = app.clone();
        tasks.push(tokio::spawn(async move {
            for i in 0..10 {
                let suffix = format!("{t}{i},");
                call2(&app, "cas-append", &[s("notes"), s("all"), s(&suffix)])
                    .await
                    .unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let all = get(&app, "notes", "all").await.unwrap().unwrap();
    let mut parts: Vec<&str> = all.split(',').filter(|p| !p.is_empty()).collect();
    parts.sort_unstable();
    let mut expected: Vec<String> = (0..4)
        .flat_map(|t| (0..10).map(move |i| format!("{t}{i}")))
        .collect();
    expected.sort_unstable();
    assert_eq!(parts, expected, "every swap landed once");
}
