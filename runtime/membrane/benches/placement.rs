//! `placement = "process"`: the cost of a call into a module in a sandboxed worker process,
//! beside what it replaces (a service over loopback HTTP) and a tokio `spawn_blocking` hop,
//! all in the same run; a worker's start and its idle memory.
//!
//! `cargo bench -p membrane --bench placement` (the `membrane` binary is the worker; it is
//! built by `cargo bench` as a target of this package).
#![allow(missing_docs)] // criterion_group! defines undocumented public functions

mod common;

use std::hint::black_box;
use std::time::{Duration, Instant};

use common::*;
use criterion::{Criterion, criterion_group, criterion_main};
use membrane::{AppSpec, Config, ModuleSpec, Placement, Runtime, Val};

const MATH: &str = "membrane-test:placement/math";

fn worker_runtime() -> Runtime {
    let mut config = Config::default();
    config.worker_program = Some(env!("CARGO_BIN_EXE_membrane").into());
    config.cache_dir = Some(std::env::temp_dir().join("membrane-bench-placement-cache"));
    Runtime::new(config).expect("runtime")
}

async fn adder(rt: &Runtime, placement: Placement) -> membrane::App {
    rt.load_spec(
        AppSpec::new().module(
            "adder",
            ModuleSpec::from_file(membrane_test_artifacts::ADDER)
                .placement(placement)
                .concurrency(4, 64),
        ),
    )
    .await
    .expect("loads")
}

fn process_calls(c: &mut Criterion) {
    let tokio = tokio_rt();
    let rt = worker_runtime();
    let process = tokio.block_on(adder(&rt, Placement::Process));
    let isolated = tokio.block_on(adder(&rt, Placement::Isolated));
    let add = format!("{MATH}#add");
    let echo = format!("{MATH}#echo");
    let args = [Val::U32(40), Val::U32(2)];
    let kib: Vec<Val> = (0..1024u32).map(|i| Val::U8(i as u8)).collect();
    let kib = [Val::List(kib)];
    let task_rt = current_rt();

    let mut g = c.benchmark_group("placement");
    g.bench_function("isolated_add_blocking", |b| {
        b.iter(|| {
            isolated
                .call_blocking("adder", &add, black_box(&args))
                .unwrap()
        })
    });
    g.bench_function("process_add_blocking", |b| {
        b.iter(|| {
            process
                .call_blocking("adder", &add, black_box(&args))
                .unwrap()
        })
    });
    g.bench_function("process_add_async", |b| {
        b.iter(|| {
            task_rt
                .block_on(process.call("adder", &add, black_box(&args)))
                .unwrap()
        })
    });
    g.bench_function("isolated_echo_1k_blocking", |b| {
        b.iter(|| {
            isolated
                .call_blocking("adder", &echo, black_box(&kib))
                .unwrap()
        })
    });
    g.bench_function("process_echo_1k_blocking", |b| {
        b.iter(|| {
            process
                .call_blocking("adder", &echo, black_box(&kib))
                .unwrap()
        })
    });
    g.bench_function("spawn_blocking_hop", |b| {
        b.iter(|| {
            task_rt
                .block_on(tokio.spawn_blocking(|| black_box(40u32) + 2))
                .unwrap()
        })
    });
    let server_rt = tokio_rt();
    let addr = server_rt.block_on(http::serve(isolated.clone()));
    let client_rt = current_rt();
    let mut client = client_rt.block_on(http::connect(addr));
    g.bench_function("http_loopback_add", |b| {
        b.iter(|| client_rt.block_on(client.add(black_box(40), 2)))
    });
    g.finish();
}

/// Starting a worker (cached compile) and its memory when idle, printed, not sampled by
/// criterion: each start is a process.
fn worker_start(_c: &mut Criterion) {
    let tokio = tokio_rt();
    let rt = worker_runtime();
    // Once to fill the compile cache.
    drop(tokio.block_on(adder(&rt, Placement::Process)));
    let mut starts = Vec::new();
    let mut rss = Vec::new();
    for _ in 0..20 {
        let t = Instant::now();
        let app = tokio.block_on(adder(&rt, Placement::Process));
        let loaded = t.elapsed();
        let isolated_t = Instant::now();
        drop(tokio.block_on(adder(&rt, Placement::Isolated)));
        // The load's own work (compile cache, link plan) is the same for both placements.
        starts.push(loaded.saturating_sub(isolated_t.elapsed()));
        app.call_blocking("adder", &format!("{MATH}#add"), &[Val::U32(1), Val::U32(2)])
            .unwrap();
        std::thread::sleep(Duration::from_millis(50));
        let pid = membrane::process::workers::worker_pid(&app, "adder")
            .unwrap()
            .unwrap();
        rss.push(rss_kib(pid));
    }
    // kill -9 of the worker in the middle of a call: how long until the call fails, and
    // until the next call has succeeded (a new worker started and answered).
    // No circuit in the way: each crash is followed by a good call.
    let mut policy = membrane::RestartPolicy::default();
    policy.max = u32::MAX;
    let app = tokio
        .block_on(
            rt.load_spec(
                AppSpec::new().module(
                    "adder",
                    ModuleSpec::from_file(membrane_test_artifacts::ADDER)
                        .placement(Placement::Process)
                        .restart(policy),
                ),
            ),
        )
        .expect("loads");
    let nap = format!("{MATH}#nap");
    let add = format!("{MATH}#add");
    app.call_blocking("adder", &add, &[Val::U32(1), Val::U32(2)])
        .unwrap();
    let (mut failed, mut recovered) = (Vec::new(), Vec::new());
    for _ in 0..20 {
        let pid = membrane::process::workers::worker_pid(&app, "adder")
            .unwrap()
            .unwrap();
        let caller = {
            let (app, nap) = (app.clone(), nap.clone());
            std::thread::spawn(move || {
                let r = app.call_blocking("adder", &nap, &[Val::U64(10_000)]);
                (r.is_err(), Instant::now())
            })
        };
        std::thread::sleep(Duration::from_millis(100));
        let t = Instant::now();
        std::process::Command::new("kill")
            .args(["-9", &pid.to_string()])
            .status()
            .unwrap();
        let (err, at) = caller.join().unwrap();
        assert!(err, "the call in flight must fail");
        failed.push(at.duration_since(t));
        app.call_blocking("adder", &add, &[Val::U32(1), Val::U32(2)])
            .unwrap();
        recovered.push(t.elapsed());
    }
    failed.sort();
    recovered.sort();
    println!(
        "placement/kill_9_in_flight_fails_after: median {:?}, max {:?}; next_call_succeeds_after: median {:?}, max {:?}",
        failed[failed.len() / 2],
        failed[failed.len() - 1],
        recovered[recovered.len() / 2],
        recovered[recovered.len() - 1]
    );
    starts.sort();
    rss.sort();
    println!(
        "placement/worker_start (load with a process module minus the same load isolated): median {:?}, max {:?}",
        starts[starts.len() / 2],
        starts[starts.len() - 1]
    );
    println!(
        "placement/worker_idle_rss (after one call): median {} KiB, max {} KiB",
        rss[rss.len() / 2],
        rss[rss.len() - 1]
    );
}

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

mod http {
    use http_body_util::{BodyExt, Full};
    use hyper::body::Bytes;
    use hyper_util::rt::TokioIo;
    use membrane::Val;

    pub struct Client(hyper::client::conn::http1::SendRequest<Full<Bytes>>);

    impl Client {
        pub async fn add(&mut self, a: u32, b: u32) -> u32 {
            let req = hyper::Request::post("/add")
                .body(Full::new(Bytes::from(format!("{a} {b}"))))
                .unwrap();
            self.0.ready().await.unwrap();
            let res = self.0.send_request(req).await.unwrap();
            let body = res.into_body().collect().await.unwrap().to_bytes();
            std::str::from_utf8(&body).unwrap().parse().unwrap()
        }
    }

    /// A service whose handler makes the same call into an in-process module.
    pub async fn serve(app: membrane::App) -> std::net::SocketAddr {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            loop {
                let (stream, _) = listener.accept().await.unwrap();
                stream.set_nodelay(true).unwrap();
                let app = app.clone();
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(
                        move |req: hyper::Request<hyper::body::Incoming>| {
                            let app = app.clone();
                            async move {
                                let body = req.into_body().collect().await?.to_bytes();
                                let text = std::str::from_utf8(&body).unwrap();
                                let (a, b) = text.split_once(' ').unwrap();
                                let args =
                                    [Val::U32(a.parse().unwrap()), Val::U32(b.parse().unwrap())];
                                let out = app
                                    .call("adder", "membrane-test:placement/math#add", &args)
                                    .await
                                    .unwrap();
                                let Val::U32(n) = out[0] else { unreachable!() };
                                Ok::<_, hyper::Error>(hyper::Response::new(Full::new(Bytes::from(
                                    n.to_string(),
                                ))))
                            }
                        },
                    );
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        addr
    }

    pub async fn connect(addr: std::net::SocketAddr) -> Client {
        let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        stream.set_nodelay(true).unwrap();
        let (send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .unwrap();
        tokio::spawn(conn);
        Client(send)
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default().measurement_time(Duration::from_secs(3)).warm_up_time(Duration::from_secs(1));
    targets = process_calls, worker_start
}
criterion_main!(benches);
