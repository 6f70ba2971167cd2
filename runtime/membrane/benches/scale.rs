//! Start-up and scale: cold start of a 100-module app (empty and warm cache), calls per
//! second with 1, 2 and 8 callers, resident memory per idle instance, and `membrane call`
//! end to end. A plain harness (these are one-shot or wall-clock measurements):
//! `cargo bench -p membrane --bench scale`. BENCHMARKS.md has the figures.
#![allow(missing_docs)] // criterion_group! defines undocumented public functions

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use common::*;
use membrane::{AppSpec, Config, ModuleSpec, Runtime, Val};

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

/// 100 distinct components: the provider with a different custom section each, so that
/// every one has its own content hash and its own cache entry.
fn hundred_modules() -> AppSpec {
    let base = std::fs::read(guests::BENCH_PROVIDER).unwrap();
    let mut spec = AppSpec::new();
    for i in 0..100 {
        let mut bytes = base.clone();
        let name = format!("membrane-bench-{i}");
        let mut payload = vec![name.len() as u8];
        payload.extend_from_slice(name.as_bytes());
        bytes.push(0); // custom section id
        bytes.push(payload.len() as u8); // size (< 128, one LEB byte)
        bytes.extend_from_slice(&payload);
        spec = spec.module(format!("m{i}"), ModuleSpec::from_bytes(bytes));
    }
    spec
}

fn cold_start(tokio: &tokio::runtime::Runtime) {
    let runs = 3;
    let mut empty = Vec::new();
    let mut warm = Vec::new();
    let mut engine = Vec::new();
    for _ in 0..runs {
        let dir = tempfile::tempdir().unwrap();
        let config = || {
            let mut c = Config::default();
            c.cache_dir = Some(dir.path().to_path_buf());
            c
        };
        let spec = hundred_modules();
        let start = Instant::now();
        let rt = Runtime::new(config()).unwrap();
        let app = tokio.block_on(rt.load_spec(spec)).unwrap();
        empty.push(start.elapsed());
        drop((app, rt));
        let spec = hundred_modules();
        let start = Instant::now();
        let rt = Runtime::new(config()).unwrap();
        engine.push(start.elapsed());
        let app = tokio.block_on(rt.load_spec(spec)).unwrap();
        warm.push(start.elapsed());
        drop((app, rt));
    }
    println!(
        "runtime_new (engine, pooling reservation, WASI linker) median {:?}",
        median(engine)
    );
    println!(
        "cold_start_100_modules empty_cache median {:?} (runs {runs})",
        median(empty)
    );
    println!(
        "cold_start_100_modules warm_cache median {:?} (runs {runs})",
        median(warm)
    );
}

/// Warm starts only (after one fill), for profiling: `--bench scale -- warm_start`.
fn warm_start(tokio: &tokio::runtime::Runtime) {
    let dir = tempfile::tempdir().unwrap();
    let config = || {
        let mut c = Config::default();
        c.cache_dir = Some(dir.path().to_path_buf());
        c
    };
    drop(
        tokio
            .block_on(Runtime::new(config()).unwrap().load_spec(hundred_modules()))
            .unwrap(),
    );
    let runs: Vec<Duration> = (0..10)
        .map(|_| {
            let spec = hundred_modules();
            let start = Instant::now();
            let rt = Runtime::new(config()).unwrap();
            let app = tokio.block_on(rt.load_spec(spec)).unwrap();
            let took = start.elapsed();
            drop((app, rt));
            took
        })
        .collect();
    println!("warm_start_100_modules median {:?} (runs 10)", median(runs));
}

fn throughput(tokio: &tokio::runtime::Runtime) {
    let app = tokio.block_on(async {
        Runtime::new(Config::default())
            .unwrap()
            .load_spec(AppSpec::new().module("p", ModuleSpec::from_file(guests::BENCH_PROVIDER)))
            .await
            .unwrap()
    });
    let func = format!("{API}#inc");
    for callers in [1usize, 2, 8] {
        let stop = Arc::new(AtomicBool::new(false));
        let count = Arc::new(AtomicU64::new(0));
        let tasks: Vec<_> = (0..callers)
            .map(|_| {
                let (app, stop, count, func) =
                    (app.clone(), stop.clone(), count.clone(), func.clone());
                tokio.spawn(async move {
                    while !stop.load(Ordering::Relaxed) {
                        app.call("p", &func, &[Val::U64(1)]).await.unwrap();
                        count.fetch_add(1, Ordering::Relaxed);
                    }
                })
            })
            .collect();
        std::thread::sleep(Duration::from_millis(500));
        let before = count.load(Ordering::Relaxed);
        let start = Instant::now();
        std::thread::sleep(Duration::from_secs(3));
        let done = count.load(Ordering::Relaxed) - before;
        let secs = start.elapsed().as_secs_f64();
        stop.store(true, Ordering::Relaxed);
        for t in tasks {
            tokio.block_on(t).unwrap();
        }
        println!(
            "throughput callers {callers} {:.0} calls/s",
            done as f64 / secs
        );
    }
}

fn rss_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap();
    let pages: u64 = statm.split_whitespace().nth(1).unwrap().parse().unwrap();
    pages * 4096
}

fn idle_memory(tokio: &tokio::runtime::Runtime) {
    let n = 5000;
    let mut config = Config::default();
    config.instance_slots = n as u32 + 10;
    let rt = Runtime::new(config).unwrap();
    let app = tokio
        .block_on(rt.load_spec(AppSpec::new().module(
            "p",
            ModuleSpec::from_file(guests::BENCH_PROVIDER).concurrency(n, 0),
        )))
        .unwrap();
    // One call first, so that lazily initialised host state is not counted.
    tokio
        .block_on(app.call("p", &format!("{API}#inc"), &[Val::U64(1)]))
        .unwrap();
    let before = rss_bytes();
    let start = Instant::now();
    let idle = tokio.block_on(app.prewarm("p", n)).unwrap();
    let took = start.elapsed();
    let per = (rss_bytes() - before) as f64 / idle as f64;
    println!(
        "idle_instances {idle} resident {:.1} KiB each -> {:.0} per GiB (prewarm took {took:?}, {:?} each)",
        per / 1024.0,
        (1u64 << 30) as f64 / per,
        took / idle as u32
    );
}

fn cli_call() {
    let exe =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/release/membrane");
    if !exe.exists() {
        println!("cli_call skipped: build the command first (cargo build --release -p membrane)");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let manifest = dir.path().join("membrane.toml");
    std::fs::write(
        &manifest,
        format!("[modules.p]\ncomponent = {:?}\n", guests::BENCH_PROVIDER),
    )
    .unwrap();
    let cache = dir.path().join("cache");
    let run = || {
        let start = Instant::now();
        let o = std::process::Command::new(&exe)
            .args([
                "call",
                manifest.to_str().unwrap(),
                "p",
                "membrane-bench:calls/api#inc",
                "41",
            ])
            .env("MEMBRANE_CACHE_DIR", &cache)
            .output()
            .unwrap();
        assert_eq!(String::from_utf8_lossy(&o.stdout), "42\n");
        start.elapsed()
    };
    let cold = run();
    let warm = median((0..15).map(|_| run()).collect());
    println!("cli_call empty_cache {cold:?} warm_cache median {warm:?}");
}

fn main() {
    // `cargo bench` passes `--bench`; a filter argument selects one part.
    let filter: Option<String> = std::env::args().skip(1).find(|a| !a.starts_with('-'));
    let want = |name: &str| filter.as_deref().is_none_or(|f| name.contains(f));
    if let Ok(filter) = tracing_subscriber::EnvFilter::try_from_env("MEMBRANE_LOG") {
        tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_writer(std::io::stderr)
            .init();
    }
    let tokio = tokio_rt();
    if want("cold_start") {
        cold_start(&tokio);
    }
    if filter.as_deref() == Some("warm_start") {
        warm_start(&tokio);
    }
    if want("throughput") {
        throughput(&tokio);
    }
    if want("idle_memory") {
        idle_memory(&tokio);
    }
    if want("cli_call") {
        cli_call();
    }
}
