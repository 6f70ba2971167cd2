//! What only the NATS JetStream store does: one data set for many hosts, exact counters
//! across them, and calls that fail `Unavailable` while the server is away, without losing
//! a write it acknowledged.

use std::sync::Arc;

use super::*;

/// Two apps, each with its own NATS connection and store (two hosts), increment one key
/// `N` times each, all at once: the counter ends at exactly `2N`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn increments_from_two_hosts_are_exact() {
    let Some(store) = Store::nats() else { return };
    const N: u64 = 150;
    let a = Arc::new(store.app(writer()).await);
    let b = Arc::new(store.app(writer()).await);
    let mut tasks = Vec::new();
    for app in [a.clone(), b.clone()] {
        for _ in 0..3 {
            let app = app.clone();
            tasks.push(tokio::spawn(async move {
                for _ in 0..N / 3 {
                    increment(&app, "notes", "hits", 1).await.unwrap();
                }
            }));
        }
    }
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(
        get(&a, "notes", "hits").await,
        Ok(Some((2 * N).to_string()))
    );
    // And each host reads what the other wrote.
    set(&b, "notes", "from-b", "hello").await.unwrap();
    assert_eq!(get(&a, "notes", "from-b").await, Ok(Some("hello".into())));
}

/// Writes while the server is killed and started again: during the outage each call fails
/// `Unavailable` at once, the module keeps serving, and every write acknowledged before,
/// during or after is there once the server is back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_outage_fails_calls_and_loses_no_acknowledged_write() {
    let Some(mut store) = Store::nats() else {
        return;
    };
    let app = store.app(writer()).await;
    let mut acked = Vec::new();
    for i in 0..50 {
        let key = format!("k{i}");
        set(&app, "notes", &key, &i.to_string()).await.unwrap();
        acked.push(key);
    }
    let Store::Nats(server, _) = &mut store else {
        unreachable!()
    };
    server.kill();
    // The connection notices the server is gone; from then on calls fail at once.
    let mut failures = 0;
    let mut i = 50;
    loop {
        let key = format!("k{i}");
        match set(&app, "notes", &key, &i.to_string()).await {
            Ok(()) => acked.push(key),
            Err(e) => {
                assert!(e.contains("unavailable"), "{e}");
                failures += 1;
            }
        }
        i += 1;
        if failures == 5 {
            break;
        }
        assert!(i < 10_000, "writes kept succeeding with the server killed");
    }
    // The module kept serving: a call that does not touch the store answers.
    assert_eq!(
        get(&app, "absent-bucket", "k").await,
        Err("access-denied".to_string())
    );
    server.restart();
    // Back: the client reconnects on its own (with back-off); wait for the first write
    // that goes through.
    let mut attempts = 0;
    loop {
        let key = format!("k{i}");
        match set(&app, "notes", &key, "after").await {
            Ok(()) => {
                acked.push(key);
                break;
            }
            Err(e) => {
                assert!(e.contains("unavailable"), "{e}");
                attempts += 1;
                assert!(attempts < 20_000, "no write went through after the restart");
                tokio::time::sleep(std::time::Duration::from_millis(5)).await;
            }
        }
        i += 1;
    }
    for key in &acked {
        assert!(
            get(&app, "notes", key).await.unwrap().is_some(),
            "acknowledged {key} is gone"
        );
    }
}

/// A `remote` module granted a bucket runs on two `membrane host` processes; its callers'
/// increments, spread over both by NATS, add up exactly.
#[test]
fn a_remote_module_served_by_two_host_processes_shares_one_bucket() {
    let Some(_) = nats_server() else { return };
    let nats = Nats::with_jetstream();
    let name = crate::remote::app_name();
    let dir = tempfile::tempdir().unwrap();
    let manifest = write_manifest(
        dir.path(),
        &format!(
            "[app]\nname = {name:?}\nnats = {:?}\n\
             [app.keyvalue]\nbackend = \"nats\"\n\
             [app.keyvalue.buckets.counters]\nkeys = 100\n\
             [modules.m]\ncomponent = {:?}\nplacement = \"remote\"\n\
             grants.keyvalue = {{ counters = \"rw\" }}\n",
            nats.url,
            guests::KV_PROBE
        ),
    );
    let path = manifest.to_str().unwrap();
    let _a = crate::remote::host_proc(&["host", path, "--modules", "m"]);
    let _b = crate::remote::host_proc(&["host", path, "--modules", "m"]);
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let caller = Arc::new(runtime().load(&manifest).await.unwrap());
        const N: u64 = 60;
        let mut tasks = Vec::new();
        for _ in 0..4 {
            let app = caller.clone();
            tasks.push(tokio::spawn(async move {
                for _ in 0..N / 4 * 2 {
                    increment(&app, "counters", "n", 1).await.unwrap();
                }
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        assert_eq!(
            get(&caller, "counters", "n").await,
            Ok(Some((2 * N).to_string()))
        );
    });
}

/// A guest's operation waiting for NATS does not hold up the calls behind it: on a runtime
/// of one worker thread, a call that needs no store is answered while a write waits for a
/// server that is stopped (SIGSTOP), and the write goes through once it runs again.
#[test]
fn a_write_waiting_for_nats_does_not_stall_other_calls() {
    let Some(store) = Store::nats() else { return };
    let Store::Nats(server, _) = &store else {
        unreachable!()
    };
    let pid = rustix::process::Pid::from_raw(server.pid().unwrap() as i32).unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let app = Arc::new(store.app(writer()).await);
        set(&app, "notes", "warm", "up").await.unwrap();
        stop(pid).await;
        let a = {
            let app = app.clone();
            tokio::spawn(async move { set(&app, "notes", "k", "v").await })
        };
        eventually("the write is under way", || {
            app.status()["m"].busy == 1 || a.is_finished()
        })
        .await;
        if a.is_finished() {
            panic!("the write ended with the server stopped: {:?}", a.await);
        }
        // On the one worker thread, behind the waiting write.
        let b = {
            let app = app.clone();
            tokio::spawn(async move { get(&app, "absent", "k").await })
        };
        assert_eq!(b.await.unwrap(), Err("access-denied".to_string()));
        if a.is_finished() {
            panic!(
                "the write ended while the server was stopped: {:?}",
                a.await
            );
        }
        rustix::process::kill_process(pid, rustix::process::Signal::CONT).unwrap();
        a.await.unwrap().unwrap();
        assert_eq!(get(&app, "notes", "k").await, Ok(Some("v".into())));
    });
}

/// Tools that load the app without connecting (`membrane graph`) work on an app whose
/// buckets are on NATS, with no server there; `membrane check` connects and says so.
#[test]
fn tools_that_do_not_connect_load_an_app_with_buckets_on_nats() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = write_manifest(
        dir.path(),
        &format!(
            "[app]\nname = \"offline\"\nnats = \"nats://127.0.0.1:1\"\n\
             [app.keyvalue]\nbackend = \"nats\"\n[app.keyvalue.buckets]\nnotes = {{}}\n\
             [modules.m]\ncomponent = {:?}\ngrants = {{ keyvalue = {{ notes = \"rw\" }} }}\n",
            guests::KV_PROBE
        ),
    );
    let m = manifest.to_str().unwrap();
    let o = membrane(&["graph", m]);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = membrane(&["check", m]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("cannot connect to NATS"),
        "{}",
        stderr(&o)
    );
}

/// An operation waits for the store no longer than the guest's call may run: with the
/// server stopped, a call with a short timeout ends at its deadline instead of waiting for
/// the server (or for the client's own 5 s request timeout, whose error says otherwise).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wait_for_the_store_ends_at_the_calls_deadline() {
    let Some(store) = Store::nats() else { return };
    let Store::Nats(server, _) = &store else {
        unreachable!()
    };
    let pid = rustix::process::Pid::from_raw(server.pid().unwrap() as i32).unwrap();
    let app = store
        .app(writer().timeout(std::time::Duration::from_millis(300)))
        .await;
    stop(pid).await;
    let r = app
        .call("m", &format!("{PROBE}#set"), &[s("notes"), s("k"), s("v")])
        .await;
    rustix::process::kill_process(pid, rustix::process::Signal::CONT).unwrap();
    // Stopped at its next deadline check, or (when it had none before returning) with the
    // guest's own error.
    match r {
        Err(e) => assert_eq!(e.kind(), membrane::ErrorKind::Timeout, "{e}"),
        Ok(v) => assert!(
            format!("{v:?}").contains("deadline passed while it waited for the store"),
            "{v:?}"
        ),
    }
}

/// `replicas = 3` on a cluster of three servers: with one server killed mid-writes, the
/// app goes on with the other two (after at most a leader election and a reconnection,
/// during which calls fail `unavailable`), and no acknowledged write is lost.
#[test]
fn three_copies_on_a_cluster_survive_a_lost_server() {
    let Some(_) = nats_server() else { return };
    let mut servers = Nats::jetstream_cluster(3);
    let mut kv = buckets(KeyValueSpec::nats());
    kv.replicas = Some(3);
    let spec = AppSpec::new()
        .name(crate::remote::app_name())
        .nats(NatsSpec::new(servers.iter().map(|s| s.url.clone())))
        .keyvalue(kv)
        .module("m", writer());
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let app = runtime().load_spec(spec).await.unwrap();
        let mut acked = Vec::new();
        for i in 0..20 {
            let key = format!("k{i}");
            set(&app, "notes", &key, "v").await.unwrap();
            acked.push(key);
        }
        assert_eq!(increment(&app, "notes", "n", 5).await, Ok(5));
        servers[0].kill();
        let (mut i, mut failures) = (20, 0);
        while acked.len() < 40 {
            let key = format!("k{i}");
            match set(&app, "notes", &key, "v").await {
                Ok(()) => {
                    acked.push(key);
                    i += 1;
                }
                Err(e) => {
                    assert!(e.contains("unavailable"), "{e}");
                    failures += 1;
                    assert!(
                        failures < 3_000,
                        "no write went through with two servers left"
                    );
                    tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                }
            }
        }
        for key in &acked {
            assert_eq!(
                get(&app, "notes", key).await,
                Ok(Some("v".into())),
                "acknowledged {key}"
            );
        }
        assert_eq!(increment(&app, "notes", "n", 1).await, Ok(6));
    });
}

/// Stops the server (SIGSTOP) and waits until the kernel says every thread of it is
/// stopped: a signal is delivered a moment after it is sent, and a server thread still
/// running meanwhile could answer.
async fn stop(pid: rustix::process::Pid) {
    rustix::process::kill_process(pid, rustix::process::Signal::STOP).unwrap();
    let tasks = format!("/proc/{}/task", pid.as_raw_nonzero());
    eventually("the server is stopped", || {
        std::fs::read_dir(&tasks).is_ok_and(|threads| {
            threads.filter_map(Result::ok).all(|t| {
                std::fs::read_to_string(t.path().join("stat")).is_ok_and(|stat| {
                    // The state follows the command's closing parenthesis.
                    stat.rsplit_once(") ")
                        .is_some_and(|(_, rest)| rest.starts_with('T') || rest.starts_with('t'))
                })
            })
        })
    })
    .await;
}
