//! Issue 29: Membrane's Rust calls of the work that `benches/python/bench.py` measures from
//! Python (the baseline of the Python package's target, "within 2x of the Rust call"):
//!
//! ```sh
//! cargo bench -p membrane --bench embedcalls --no-run
//! target/release/deps/embedcalls-* [--calls N] [--rounds R] [--loads L]
//! ```
//!
//! The components are the guests `adder` (`membrane-test:placement/math#add`, two u32 in,
//! a u32 out) and `bench_provider` (`membrane-bench:calls/api#echo`, a 1 KiB string in and
//! out), loaded with `Runtime::load_spec` on `Config::default()` (as the Python package
//! does) plus a compile cache directory. Each round times `--calls` calls (20,000) after
//! 1,000 to warm up, for each of: `App::call_blocking` with `Val` and `Typed::call_blocking`,
//! of `add` and of `echo`, and `App::call` with `Val` awaited on a current-thread tokio
//! runtime (`rust-async-*`); echo's calls include the clone of the 1 KiB `String` they pass
//! (an owned string, as a caller builds one). Then `--loads` loads (20) of an app of the
//! `adder` component from the compile cache. Prints one line per figure and round:
//! `<name> <round> <ns per call | ms per load>`.
#![allow(missing_docs)]

mod common;

use std::hint::black_box;
use std::time::Instant;

use common::guests;
use membrane::{AppSpec, Config, ModuleSpec, Runtime, Val};

const ADD: &str = "membrane-test:placement/math#add";
const ECHO: &str = "membrane-bench:calls/api#echo";

fn time_calls(calls: u64, mut f: impl FnMut()) -> f64 {
    (0..1_000).for_each(|_| f());
    let start = Instant::now();
    (0..calls).for_each(|_| f());
    start.elapsed().as_nanos() as f64 / calls as f64
}

fn main() {
    let mut calls = 20_000u64;
    let mut rounds = 1u32;
    let mut loads = 20u32;
    let mut args = std::env::args().skip(1).filter(|a| a != "--bench");
    while let Some(a) = args.next() {
        let n = args.next().expect("a number after the option");
        match a.as_str() {
            "--calls" => calls = n.parse().unwrap(),
            "--rounds" => rounds = n.parse().unwrap(),
            "--loads" => loads = n.parse().unwrap(),
            other => panic!("unknown option {other}"),
        }
    }
    let cache = tempfile::tempdir().unwrap();
    let mut config = Config::default();
    config.cache_dir = Some(cache.path().to_path_buf());
    let rt = Runtime::new(config).unwrap();
    let tokio = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let load = |name: &str, path: &str| {
        tokio
            .block_on(rt.load_spec(AppSpec::new().module(name, ModuleSpec::from_file(path))))
            .unwrap()
    };
    let adder = load("adder", guests::ADDER);
    let provider = load("provider", guests::BENCH_PROVIDER);
    let add = adder.typed::<(u32, u32), (u32,)>("adder", ADD).unwrap();
    let echo = provider
        .typed::<(String,), (String,)>("provider", ECHO)
        .unwrap();
    let kib = "x".repeat(1024);
    assert_eq!(add.call_blocking((41, 1)).unwrap(), (42,));
    assert_eq!(echo.call_blocking((kib.clone(),)).unwrap().0, kib);
    for round in 1..=rounds {
        let ns = time_calls(calls, || {
            black_box(
                adder
                    .call_blocking("adder", ADD, &[Val::U32(black_box(41)), Val::U32(1)])
                    .unwrap(),
            );
        });
        println!("rust-val-add {round} {ns:.1}");
        let ns = time_calls(calls, || {
            black_box(add.call_blocking((black_box(41), 1)).unwrap());
        });
        println!("rust-typed-add {round} {ns:.1}");
        let ns = time_calls(calls, || {
            black_box(
                provider
                    .call_blocking("provider", ECHO, &[Val::String(kib.clone())])
                    .unwrap(),
            );
        });
        println!("rust-val-echo {round} {ns:.1}");
        let ns = time_calls(calls, || {
            black_box(echo.call_blocking((kib.clone(),)).unwrap());
        });
        println!("rust-typed-echo {round} {ns:.1}");
        // `App::call` awaited in a task of a current-thread runtime: the async call's own
        // cost (a fiber), without the hops between threads of Python's `call_async`.
        let ns = tokio.block_on(async {
            let mut ns = 0.0;
            for (n, timed) in [(1_000, false), (calls, true)] {
                let start = Instant::now();
                for _ in 0..n {
                    let args = [Val::U32(black_box(41)), Val::U32(1)];
                    black_box(adder.call("adder", ADD, &args).await.unwrap());
                }
                if timed {
                    ns = start.elapsed().as_nanos() as f64 / n as f64;
                }
            }
            ns
        });
        println!("rust-async-add {round} {ns:.1}");
        let ns = tokio.block_on(async {
            let mut ns = 0.0;
            for (n, timed) in [(1_000, false), (calls, true)] {
                let start = Instant::now();
                for _ in 0..n {
                    let args = [Val::String(kib.clone())];
                    black_box(provider.call("provider", ECHO, &args).await.unwrap());
                }
                if timed {
                    ns = start.elapsed().as_nanos() as f64 / n as f64;
                }
            }
            ns
        });
        println!("rust-async-echo {round} {ns:.1}");
        // Loads from the compile cache (the first load above compiled and stored it).
        let start = Instant::now();
        for _ in 0..loads {
            drop(black_box(load("adder", guests::ADDER)));
        }
        let ms = start.elapsed().as_secs_f64() * 1e3 / f64::from(loads);
        println!("rust-load {round} {ms:.3}");
    }
}
