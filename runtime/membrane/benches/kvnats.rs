//! The `guest`, `nats` and `contention` sections of the key-value bench (see keyvalue.rs).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use async_nats::jetstream;
use membrane::{
    App, AppSpec, BucketAccess, BucketSpec, KeyValueSpec, ModuleSpec, NatsSpec, Placement, Runtime,
    Val,
};

use super::common::*;
use super::nats::Nats;

const PROBE: &str = "membrane-test:kv/probe";
const N: usize = 2_000;

fn s(v: &str) -> Val {
    Val::String(v.into())
}

/// Microseconds per operation of `n` runs of `op`.
async fn per_op<F, Fut>(n: usize, mut op: F) -> f64
where
    F: FnMut(usize) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let start = Instant::now();
    for i in 0..n {
        op(i).await;
    }
    start.elapsed().as_secs_f64() * 1e6 / n as f64
}

/// A guest's get (of a 100-byte value), set and increment through `app`'s module `m`.
async fn guest_ops(app: &App, label: &str) {
    let call = |func: &'static str, args: Vec<Val>| {
        let app = app.clone();
        async move {
            let out = app
                .call("m", &format!("{PROBE}#{func}"), &args)
                .await
                .unwrap();
            assert!(
                matches!(out.first(), Some(Val::Result(Ok(_)))),
                "{func}: {out:?}"
            );
        }
    };
    let value = "x".repeat(100);
    call("set", vec![s("b"), s("k"), s(&value)]).await;
    let get = per_op(N, |_| call("get", vec![s("b"), s("k")])).await;
    let set = per_op(N, |i| {
        call("set", vec![s("b"), s(&format!("k{i}")), s(&value)])
    })
    .await;
    let inc = per_op(N, |_| call("increment", vec![s("b"), s("n"), Val::U64(1)])).await;
    println!("{label}: guest get {get:.1} us, set {set:.1} us, increment {inc:.1} us");
}

/// One call of an export that does nothing with the store: the call's own cost.
async fn call_floor(app: &App, label: &str) {
    let t = per_op(N, |_| async {
        let out = app
            .call("m", &format!("{PROBE}#get"), &[s("not-granted"), s("k")])
            .await
            .unwrap();
        std::hint::black_box(out);
    })
    .await;
    println!("{label}: a call that is denied before the store (the call's floor) {t:.1} us");
}

fn granted() -> ModuleSpec {
    ModuleSpec::from_file(guests::KV_PROBE).bucket("b", BucketAccess::ReadWrite)
}

pub fn guest_embedded() {
    let rt = current_rt();
    rt.block_on(async {
        for placement in [Placement::Isolated, Placement::Process] {
            let dir = tempfile::tempdir().unwrap();
            let mut config = membrane::Config::default();
            config.worker_program = Some(env!("CARGO_BIN_EXE_membrane").into());
            let app = Runtime::new(config)
                .unwrap()
                .load_spec(
                    AppSpec::new()
                        .keyvalue(
                            KeyValueSpec::embedded(dir.path().join("kv.redb"))
                                .bucket("b", BucketSpec::new()),
                        )
                        .module("m", granted().placement(placement)),
                )
                .await
                .unwrap();
            let label = format!("embedded, {placement}");
            call_floor(&app, &label).await;
            guest_ops(&app, &label).await;
        }
    });
}

fn nats_app_spec(server: &Nats, name: &str) -> AppSpec {
    AppSpec::new()
        .name(name)
        .nats(NatsSpec::new([server.url.clone()]))
        .keyvalue(KeyValueSpec::nats().bucket("b", BucketSpec::new()))
}

pub fn nats_paths() {
    let server = Nats::with_jetstream();
    let rt = tokio_rt();
    rt.block_on(async {
        // Raw: async-nats on the stream Membrane made (the app below makes it first).
        let app = Runtime::new(membrane::Config::default())
            .unwrap()
            .load_spec(nats_app_spec(&server, "bench").module("m", granted()))
            .await
            .unwrap();
        let client = async_nats::connect(&server.url).await.unwrap();
        let js = jetstream::new(client);
        let stream = js.get_stream("KV_bench_b").await.unwrap();
        let value = bytes::Bytes::from(vec![b'x'; 100]);
        js.publish("$KV.bench_b.k", value.clone())
            .await
            .unwrap()
            .await
            .unwrap();
        let get = per_op(N, |_| async {
            std::hint::black_box(
                stream
                    .direct_get_last_for_subject("$KV.bench_b.k")
                    .await
                    .unwrap(),
            );
        })
        .await;
        let put = per_op(N, |i| {
            let js = js.clone();
            let value = value.clone();
            async move {
                js.publish(format!("$KV.bench_b.r{i}"), value)
                    .await
                    .unwrap()
                    .await
                    .unwrap();
            }
        })
        .await;
        println!("nats, raw async-nats: direct get {get:.1} us, publish+ack {put:.1} us");
        call_floor(&app, "nats, isolated").await;
        guest_ops(&app, "nats, isolated").await;

        // Remote: the caller's calls go over NATS to a host in this process, whose guest
        // reaches the bucket over its own connection.
        let host = Runtime::new(membrane::Config::default())
            .unwrap()
            .load_spec(
                nats_app_spec(&server, "benchr")
                    .module("m", granted().placement(Placement::Remote))
                    .host(["m"]),
            )
            .await
            .unwrap();
        let serving = membrane::remote::RemoteHost::start(&host).await.unwrap();
        let caller = Runtime::new(membrane::Config::default())
            .unwrap()
            .load_spec(
                nats_app_spec(&server, "benchr")
                    .module("m", granted().placement(Placement::Remote)),
            )
            .await
            .unwrap();
        call_floor(&caller, "nats, remote").await;
        guest_ops(&caller, "nats, remote").await;
        serving.shutdown().await;
    });
}

pub fn contention() {
    let server = Nats::with_jetstream();
    let rt = tokio_rt();
    rt.block_on(async {
        let a = Runtime::new(membrane::Config::default())
            .unwrap()
            .load_spec(nats_app_spec(&server, "cas").module("m", granted()))
            .await
            .unwrap();
        let b = Runtime::new(membrane::Config::default())
            .unwrap()
            .load_spec(nats_app_spec(&server, "cas").module("m", granted()))
            .await
            .unwrap();
        // Raw: two connections, each 500 increments by compare-and-swap, retried.
        let retries = Arc::new(AtomicU64::new(0));
        let start = Instant::now();
        let mut tasks = Vec::new();
        for _ in 0..2 {
            let client = async_nats::connect(&server.url).await.unwrap();
            let js = jetstream::new(client);
            let stream = js.get_stream("KV_cas_b").await.unwrap();
            let retries = retries.clone();
            tasks.push(tokio::spawn(async move {
                for _ in 0..500 {
                    loop {
                        let (n, rev) =
                            match stream.direct_get_last_for_subject("$KV.cas_b.raw").await {
                                Ok(m) => (
                                    std::str::from_utf8(&m.payload)
                                        .unwrap()
                                        .parse::<i64>()
                                        .unwrap(),
                                    m.sequence,
                                ),
                                Err(_) => (0, 0),
                            };
                        let mut headers = async_nats::HeaderMap::new();
                        headers.insert(
                            "Nats-Expected-Last-Subject-Sequence",
                            rev.to_string().as_str(),
                        );
                        let sent = js
                            .publish_with_headers(
                                "$KV.cas_b.raw",
                                headers,
                                (n + 1).to_string().into(),
                            )
                            .await
                            .unwrap()
                            .await;
                        if sent.is_ok() {
                            break;
                        }
                        retries.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        let raw = 1000.0 / start.elapsed().as_secs_f64();
        println!(
            "contention, raw CAS from two connections: 1000 increments, {raw:.0}/s, {} retries",
            retries.load(Ordering::Relaxed)
        );
        // Through guests: two apps (two connections), two tasks each, 250 increments each.
        let start = Instant::now();
        let mut tasks = Vec::new();
        for app in [a.clone(), a.clone(), b.clone(), b.clone()] {
            tasks.push(tokio::spawn(async move {
                for _ in 0..250 {
                    let out = app
                        .call(
                            "m",
                            &format!("{PROBE}#increment"),
                            &[s("b"), s("guest"), Val::U64(1)],
                        )
                        .await
                        .unwrap();
                    assert!(matches!(out.first(), Some(Val::Result(Ok(_)))), "{out:?}");
                }
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        let guest = 1000.0 / start.elapsed().as_secs_f64();
        let out = a
            .call("m", &format!("{PROBE}#get"), &[s("b"), s("guest")])
            .await
            .unwrap();
        println!(
            "contention, guests of two apps: 1000 increments, {guest:.0}/s, counter now {out:?}"
        );
    });
}
