//! Issue 13: the cost of one cross-module call through a fused link (`placement = "fused"`
//! on both sides: one component, the call stays inside it) against the same link isolated
//! (each module its own Store, the host forwards the call), and a native Rust call.
//!
//! The driver guest calls the provider's `inc` in a loop (`loop-inc(n)`), so one
//! measurement of `n` calls costs one entry into the driver plus `n` linked calls; with
//! `n` in the thousands and more, the entry vanishes in the per-call figure. Also a method
//! call on a resource (`loop-bump`). Run with `cargo bench -p membrane --bench fused`;
//! BENCHMARKS.md has the figures, and the run ends with a same-run summary.
#![allow(missing_docs)] // criterion_group! defines undocumented public functions

mod common;

use std::hint::black_box;
use std::time::{Duration, Instant};

use common::*;
use criterion::{Criterion, criterion_group};
use membrane::{AppSpec, Config, ModuleSpec, Placement, Runtime, Val};

/// driver -> provider, both with `placement`.
fn app(tokio: &tokio::runtime::Runtime, placement: Placement) -> membrane::App {
    let rt = Runtime::new(Config::default()).unwrap();
    tokio
        .block_on(
            rt.load_spec(
                AppSpec::new()
                    .module(
                        "driver",
                        ModuleSpec::from_file(guests::BENCH_DRIVER)
                            .link(API, "provider")
                            .link("membrane-bench:calls/res", "provider")
                            .placement(placement)
                            .timeout(Duration::from_secs(600)),
                    )
                    .module(
                        "provider",
                        ModuleSpec::from_file(guests::BENCH_PROVIDER)
                            .placement(placement)
                            .timeout(Duration::from_secs(600)),
                    ),
            ),
        )
        .unwrap()
}

/// The time of `iters` linked calls of `func` (`loop-inc` or `loop-bump`), made from inside
/// the driver in loops of at most a million, the driver entered on the synchronous path.
fn linked(app: &membrane::App, func: &str, iters: u64) -> Duration {
    let func = format!("{DRIVER}#{func}");
    let mut left = iters;
    let mut total = Duration::ZERO;
    while left > 0 {
        let n = left.min(1_000_000) as u32;
        let start = Instant::now();
        app.call_blocking("driver", &func, &[Val::U32(n)]).unwrap();
        total += start.elapsed();
        left -= u64::from(n);
    }
    total
}

#[inline(never)]
fn native_inc(x: u64) -> u64 {
    x.wrapping_add(1)
}

fn calls(c: &mut Criterion) {
    let tokio = tokio_rt();
    let isolated = app(&tokio, Placement::Isolated);
    let fused = app(&tokio, Placement::Fused);
    let mut g = c.benchmark_group("fused_link_u64");
    g.bench_function("native_call", |b| {
        let f: fn(u64) -> u64 = black_box(native_inc);
        b.iter(|| f(black_box(41)))
    });
    g.bench_function("isolated_link", |b| {
        b.iter_custom(|iters| linked(&isolated, "loop-inc", iters))
    });
    g.bench_function("fused_link", |b| {
        b.iter_custom(|iters| linked(&fused, "loop-inc", iters))
    });
    g.finish();
    let mut g = c.benchmark_group("fused_link_resource_method");
    g.bench_function("isolated_link", |b| {
        b.iter_custom(|iters| linked(&isolated, "loop-bump", iters))
    });
    g.bench_function("fused_link", |b| {
        b.iter_custom(|iters| linked(&fused, "loop-bump", iters))
    });
    g.finish();
}

/// One figure per configuration in the same run: the best of five loops of `n` calls.
fn summary() {
    let tokio = tokio_rt();
    let isolated = app(&tokio, Placement::Isolated);
    let fused = app(&tokio, Placement::Fused);
    let per_call = |f: &dyn Fn(u64) -> Duration, n: u64| {
        (0..5)
            .map(|_| f(n).as_secs_f64() * 1e9 / n as f64)
            .fold(f64::INFINITY, f64::min)
    };
    let native = per_call(
        &|n| {
            let f: fn(u64) -> u64 = black_box(native_inc);
            let start = Instant::now();
            let mut x = 0;
            for _ in 0..n {
                x = f(black_box(x));
            }
            black_box(x);
            start.elapsed()
        },
        100_000_000,
    );
    let iso = per_call(&|n| linked(&isolated, "loop-inc", n), 1_000_000);
    let fus = per_call(&|n| linked(&fused, "loop-inc", n), 10_000_000);
    let iso_bump = per_call(&|n| linked(&isolated, "loop-bump", n), 1_000_000);
    let fus_bump = per_call(&|n| linked(&fused, "loop-bump", n), 10_000_000);
    println!("\nsame-run summary (best of 5, ns per call):");
    println!("  native call            {native:8.2}");
    println!(
        "  inc, isolated link     {iso:8.2}\n  inc, fused link        {fus:8.2}   ({:.0}x cheaper than isolated)",
        iso / fus
    );
    println!(
        "  bump, isolated link    {iso_bump:8.2}\n  bump, fused link       {fus_bump:8.2}   ({:.0}x cheaper than isolated)",
        iso_bump / fus_bump
    );
}

criterion_group! {
    name = benches;
    config = Criterion::default().measurement_time(Duration::from_secs(3)).warm_up_time(Duration::from_secs(1));
    targets = calls
}

fn main() {
    benches();
    Criterion::default().configure_from_args().final_summary();
    // `cargo test --benches` runs this binary with `--bench` absent: keep that quick.
    if std::env::args().any(|a| a == "--bench") {
        summary();
    }
}
