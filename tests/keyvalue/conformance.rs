//! The same guest, the same calls, the same answers on both stores: each test here runs
//! once on the embedded store (`embedded::…`) and once on NATS JetStream (`nats::…`,
//! skipped loudly without nats-server).

use super::*;

in_a_worker_process!(
    a_guest_reads_and_writes_its_granted_buckets,
    any_key_works_and_long_keys_are_refused,
    keys_are_listed_in_pages,
    increments_count_in_decimal_and_refuse_what_is_not_a_number,
    batches_read_and_write_many_keys,
    a_write_past_a_quota_fails_in_the_guest_and_a_delete_frees_room,
    data_outlives_the_app,
);

on_both_stores!(
    a_guest_reads_and_writes_its_granted_buckets,
    any_key_works_and_long_keys_are_refused,
    keys_are_listed_in_pages,
    increments_count_in_decimal_and_refuse_what_is_not_a_number,
    batches_read_and_write_many_keys,
    ungranted_buckets_and_writes_to_read_only_ones_are_denied,
    a_write_past_a_quota_fails_in_the_guest_and_a_delete_frees_room,
    data_outlives_the_app,
    a_live_upgrade_and_a_rollback_keep_the_data,
);

async fn a_guest_reads_and_writes_its_granted_buckets(store: Store) {
    let app = store.app(writer()).await;
    assert_eq!(get(&app, "notes", "a").await, Ok(None));
    assert_eq!(
        call(&app, "exists", &[s("notes"), s("a")]).await,
        Ok(Some(Val::Bool(false)))
    );
    set(&app, "notes", "a", "first").await.unwrap();
    set(&app, "notes", "a", "second").await.unwrap();
    assert_eq!(get(&app, "notes", "a").await, Ok(Some("second".into())));
    assert_eq!(
        call(&app, "exists", &[s("notes"), s("a")]).await,
        Ok(Some(Val::Bool(true)))
    );
    call(&app, "delete", &[s("notes"), s("a")]).await.unwrap();
    assert_eq!(get(&app, "notes", "a").await, Ok(None));
    assert_eq!(
        call(&app, "exists", &[s("notes"), s("a")]).await,
        Ok(Some(Val::Bool(false)))
    );
    // Deleting what is absent is not an error; a value that is empty is a value.
    call(&app, "delete", &[s("notes"), s("a")]).await.unwrap();
    set(&app, "notes", "empty", "").await.unwrap();
    assert_eq!(get(&app, "notes", "empty").await, Ok(Some(String::new())));
}

async fn any_key_works_and_long_keys_are_refused(store: Store) {
    let app = store.app(writer()).await;
    let longest = "ж".repeat(512); // 1,024 bytes: the bound, on every store
    let keys = [
        "",
        " ",
        "with space",
        "dots.and/slash",
        ".leading",
        "trailing.",
        "a..b",
        "*",
        ">",
        "=",
        "=3D",
        "ünïcødé",
        "tab\there",
        longest.as_str(),
    ];
    for (i, key) in keys.iter().enumerate() {
        set(&app, "notes", key, &i.to_string()).await.unwrap();
    }
    for (i, key) in keys.iter().enumerate() {
        assert_eq!(
            get(&app, "notes", key).await,
            Ok(Some(i.to_string())),
            "{key:?}"
        );
    }
    // Listed as written, each once.
    let page = call(&app, "keys", &[s("notes"), Val::Option(None)])
        .await
        .unwrap();
    let Some(Val::Tuple(parts)) = page else {
        panic!("{page:?}")
    };
    let mut listed: Vec<Val> = match &parts[0] {
        Val::List(l) => l.clone(),
        other => panic!("{other:?}"),
    };
    let mut expected: Vec<Val> = keys.iter().map(|k| s(k)).collect();
    let text = |v: &Val| match v {
        Val::String(t) => t.clone(),
        other => panic!("{other:?}"),
    };
    listed.sort_by_key(text);
    expected.sort_by_key(text);
    assert_eq!(listed, expected);
    // One byte more than the bound.
    let e = set(&app, "notes", &format!("{longest}x"), "v")
        .await
        .unwrap_err();
    assert!(e.contains("longer than 1024"), "{e}");
}

async fn keys_are_listed_in_pages(store: Store) {
    // 2,500 writes are 2,500 durable commits (and, in a worker process, as many round trips
    // to the host): seconds on a busy disk. The test is about paging, not speed, so its
    // calls get a deadline no busy machine reaches.
    let app = store
        .app(writer().timeout(std::time::Duration::from_secs(600)))
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
    let mut pages = 0;
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
        pages += 1;
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
    assert_eq!(pages, 3);
    let expected: Vec<Val> = (0..n).map(|i| s(&format!("k{i:05}"))).collect();
    assert_eq!(all, expected);
}

async fn increments_count_in_decimal_and_refuse_what_is_not_a_number(store: Store) {
    let app = store.app(writer()).await;
    // Absent counts from 0; the value is ASCII decimal, readable as a value.
    assert_eq!(increment(&app, "notes", "n", 5).await, Ok(5));
    assert_eq!(increment(&app, "notes", "n", 5).await, Ok(10));
    assert_eq!(get(&app, "notes", "n").await, Ok(Some("10".into())));
    set(&app, "notes", "n", "41").await.unwrap();
    assert_eq!(increment(&app, "notes", "n", 1).await, Ok(42));
    // Not a number: refused, the value left as it was.
    set(&app, "notes", "word", "forty").await.unwrap();
    let e = increment(&app, "notes", "word", 1).await.unwrap_err();
    assert!(e.contains("not a decimal integer"), "{e}");
    assert_eq!(get(&app, "notes", "word").await, Ok(Some("forty".into())));
    // Past a 64-bit integer: refused, the value left as it was.
    set(&app, "notes", "big", &i64::MAX.to_string())
        .await
        .unwrap();
    let e = increment(&app, "notes", "big", 1).await.unwrap_err();
    assert!(e.contains("range of a 64-bit integer"), "{e}");
    let e = increment(&app, "notes", "other", u64::MAX)
        .await
        .unwrap_err();
    assert!(e.contains("range of a 64-bit integer"), "{e}");
    assert_eq!(get(&app, "notes", "other").await, Ok(None));
    assert_eq!(
        get(&app, "notes", "big").await,
        Ok(Some(i64::MAX.to_string()))
    );
}

async fn batches_read_and_write_many_keys(store: Store) {
    let app = store.app(writer()).await;
    let pairs = Val::List(vec![
        Val::Tuple(vec![s("x"), s("1")]),
        Val::Tuple(vec![s("y z"), s("2")]),
    ]);
    call(&app, "set-many", &[s("notes"), pairs]).await.unwrap();
    let got = call(
        &app,
        "get-many",
        &[s("notes"), Val::List(vec![s("x"), s("nope"), s("y z")])],
    )
    .await
    .unwrap();
    let opt = |v: Option<&str>| Val::Option(v.map(|t| Box::new(s(t))));
    assert_eq!(
        got,
        Some(Val::List(vec![opt(Some("1")), opt(None), opt(Some("2"))]))
    );
}

async fn ungranted_buckets_and_writes_to_read_only_ones_are_denied(store: Store) {
    let app = store
        .app(
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
        increment(&app, "shared", "n", 1).await,
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
    let app = store.app(kv_probe()).await;
    assert_eq!(
        get(&app, "notes", "k").await,
        Err("access-denied".to_string())
    );
}

async fn a_write_past_a_quota_fails_in_the_guest_and_a_delete_frees_room(store: Store) {
    let app = store
        .app(kv_probe().bucket("tiny", BucketAccess::ReadWrite))
        .await;
    let e = set(&app, "tiny", "big", "123456789").await.unwrap_err();
    assert!(
        e.starts_with("other: ") && e.contains("larger than bucket \"tiny\""),
        "{e}"
    );
    set(&app, "tiny", "a", "1").await.unwrap();
    set(&app, "tiny", "b", "2").await.unwrap();
    let e = set(&app, "tiny", "c", "3").await.unwrap_err();
    assert!(e.contains("holds its most keys (2)"), "{e}");
    // A full bucket still takes an overwrite that does not grow it.
    set(&app, "tiny", "b", "22").await.unwrap();
    // The module keeps serving; a delete makes room.
    call(&app, "delete", &[s("tiny"), s("a")]).await.unwrap();
    set(&app, "tiny", "c", "3").await.unwrap();
    assert_eq!(get(&app, "tiny", "c").await, Ok(Some("3".into())));
}

async fn data_outlives_the_app(store: Store) {
    let app = store.app(writer()).await;
    set(&app, "notes", "kept", "yes").await.unwrap();
    drop(app);
    let app = store.app(writer()).await;
    assert_eq!(get(&app, "notes", "kept").await, Ok(Some("yes".into())));
}

async fn a_live_upgrade_and_a_rollback_keep_the_data(store: Store) {
    let app = store.app(writer()).await;
    set(&app, "notes", "k", "before").await.unwrap();
    app.upgrade("m", writer()).await.unwrap();
    assert_eq!(app.status()["m"].generation, 2);
    assert_eq!(get(&app, "notes", "k").await, Ok(Some("before".into())));
    set(&app, "notes", "k", "during").await.unwrap();
    app.rollback("m").unwrap();
    assert_eq!(get(&app, "notes", "k").await, Ok(Some("during".into())));
}
