//! Instruction counts of one call on each path, for when the machine is too noisy for
//! wall-clock figures: run under callgrind, which counts instructions, not time:
//!
//! ```sh
//! cargo bench -p membrane --bench callcost --no-run
//! valgrind --tool=callgrind --collect-atstart=no --toggle-collect=callcost::measured \
//!     target/release/deps/callcost-* PATH
//! ```
//!
//! where PATH is one of `raw-typed`, `raw-guarded` (`raw-typed` with epoch checks in the code,
//! the epoch deadline armed and the clock read twice per call), `kv-raw-get`, `kv-guest-get`
//! (the embedded key-value store read raw, and through a guest's `wasi:keyvalue`), `raw-val`, `typed-blocking`, `call-blocking`,
//! `raw-async`, `typed-async`, `call-async`, `cross-sync`, `cross-async` (one call of the
//! driver that makes N linked calls), `raw-cross-sync`, `raw-cross-async` (the same in raw
//! wasmtime: two stores, the import a host function calling the provider), `md-raw`, `md-raw-epochs` (with epoch checks in the code), `md-typed-blocking` (markdown of 20 KiB), `echo-raw-async`, `echo-call-async` (1 KiB echo), `raw-res` (the driver calling a host resource method N times in raw wasmtime), `raw-cross-res-sync` (the same
//! method of the provider's resource through a host proxy, in raw wasmtime), `cross-res-sync`, `cross-res-async` (N linked resource method calls), `inst-raw` (instantiate with raw wasmtime, on-demand
//! allocator), `inst-per-call` (N linked calls to a per-call provider). Each runs 1,000 calls to warm up and then
//! 20,000 (`--calls N`); callgrind counts only those 21,000 calls, so the total divided by
//! 21,000 is the instructions of one call. Without valgrind it prints the wall-clock time per
//! call.
#![allow(missing_docs)] // criterion_group! defines undocumented public functions

mod common;

use std::hint::black_box;
use std::time::Instant;

use common::*;
use membrane::{Lifecycle, Val};

/// The calls callgrind counts (`--toggle-collect=callcost::measured`).
#[inline(never)]
fn measured(run: &mut dyn FnMut(u64), n: u64) {
    run(n)
}

fn main() {
    let mut args = std::env::args().skip(1).filter(|a| a != "--bench");
    let path = args.next().unwrap_or_else(|| "typed-blocking".into());
    let calls: u64 = match (args.next().as_deref(), args.next()) {
        (Some("--calls"), Some(n)) => n.parse().unwrap(),
        _ => 20_000,
    };
    let rt = current_rt();
    let setup = raw_setup(false);
    let async_setup = raw_setup_with(false, false, true);
    // Valgrind cannot reserve the pooling allocator's address space: allocate on demand
    // (the call path is the same either way).
    let mut config = membrane::Config::default();
    config.instance_slots = std::env::var("SLOTS").map_or(0, |s| s.parse().unwrap());
    // METRICS=0 leaves calls out of the metrics, to measure what counting them costs.
    config.metrics = std::env::var("METRICS").map_or(true, |v| v != "0");
    let app = rt.block_on(linked_app_with(config.clone(), Lifecycle::Reuse));
    let per_call = rt.block_on(linked_app_with(config, Lifecycle::PerCall));
    let func = format!("{API}#inc");
    let typed = app.typed::<(u64,), (u64,)>("provider", &func).unwrap();
    let mut raw = setup.instantiate();
    let mut raw_res = raw_driver();
    let mut raw_cross_sync = raw_cross(false);
    let mut raw_cross_async = raw_cross(true);
    let mut raw_cross_res_sync = raw_cross_res();
    // The embedded key-value store, read raw and through a guest (`kv-raw-get`,
    // `kv-guest-get`: `get` of a 100-byte value; the guest opens the bucket on each call).
    let kv_dir = tempfile::tempdir().unwrap();
    let kv_app = rt.block_on(kv_app(&kv_dir.path().join("kv.redb")));
    let kv_store = membrane_core::keyvalue::embedded::Embedded::open(
        &kv_dir.path().join("raw.redb"),
        &[("b".to_string(), membrane::BucketSpec::new())].into(),
    )
    .unwrap();
    rt.block_on(membrane_core::keyvalue::backend::Backend::write(
        &kv_store,
        "b",
        membrane_core::keyvalue::backend::Write::Set {
            key: "k".into(),
            value: vec![b'x'; 100],
        },
    ))
    .unwrap();
    let kv_get = "membrane-test:kv/probe#get".to_string();
    let inc = setup.func::<(u64,), (u64,)>(&mut raw, "inc");
    let dyn_inc = setup.dyn_func(&mut raw, "inc");
    let mut araw = rt.block_on(async_setup.instantiate_async());
    let ainc = async_setup.func::<(u64,), (u64,)>(&mut araw, "inc");
    let md = setup.func::<(String,), (String,)>(&mut raw, "markdown");
    let epoch_setup = raw_setup_config(false, false, false, true);
    let mut eraw = epoch_setup.instantiate();
    let emd = epoch_setup.func::<(String,), (String,)>(&mut eraw, "markdown");
    let einc = epoch_setup.func::<(u64,), (u64,)>(&mut eraw, "inc");
    let md_typed = app
        .typed::<(String,), (String,)>("provider", &format!("{API}#markdown"))
        .unwrap();
    let aecho = async_setup.func::<(String,), (String,)>(&mut araw, "echo");
    let echo_func = format!("{API}#echo");
    let doc = markdown_doc();
    let kib = "x".repeat(1024);
    let mut run = |n: u64| match path.as_str() {
        "raw-typed" => (0..n).for_each(|_| {
            black_box(inc.call(&mut raw.store, (black_box(41),)).unwrap());
        }),
        // The least a runtime that bounds and times every call pays on top of `raw-typed`:
        // code built with epoch checks, the epoch deadline armed, and the clock read before
        // and after (for the call's duration).
        "raw-guarded" => (0..n).for_each(|_| {
            let start = Instant::now();
            eraw.store.set_epoch_deadline(1_000_000);
            black_box(einc.call(&mut eraw.store, (black_box(41),)).unwrap());
            black_box(start.elapsed());
        }),
        "kv-raw-get" => rt.block_on(async {
            for _ in 0..n {
                black_box(
                    membrane_core::keyvalue::backend::Backend::get(&kv_store, "b", "k")
                        .await
                        .unwrap(),
                );
            }
        }),
        "kv-guest-get" => rt.block_on(async {
            for _ in 0..n {
                black_box(
                    kv_app
                        .call(
                            "m",
                            &kv_get,
                            &[Val::String("b".into()), Val::String("k".into())],
                        )
                        .await
                        .unwrap(),
                );
            }
        }),
        "raw-val" => (0..n).for_each(|_| {
            let mut out = [Val::U64(0)];
            dyn_inc
                .call(&mut raw.store, &[Val::U64(black_box(41))], &mut out)
                .unwrap();
        }),
        "typed-blocking" => (0..n).for_each(|_| {
            black_box(typed.call_blocking((black_box(41),)).unwrap());
        }),
        "call-blocking" => (0..n).for_each(|_| {
            black_box(
                app.call_blocking("provider", &func, &[Val::U64(41)])
                    .unwrap(),
            );
        }),
        "raw-async" => rt.block_on(async {
            for _ in 0..n {
                black_box(
                    ainc.call_async(&mut araw.store, (black_box(41),))
                        .await
                        .unwrap(),
                );
            }
        }),
        "typed-async" => rt.block_on(async {
            for _ in 0..n {
                black_box(typed.call((black_box(41),)).await.unwrap());
            }
        }),
        "call-async" => rt.block_on(async {
            for _ in 0..n {
                black_box(app.call("provider", &func, &[Val::U64(41)]).await.unwrap());
            }
        }),
        "raw-cross-sync" => {
            let c = &mut raw_cross_sync;
            black_box(c.loop_inc.call(&mut c.store, (n as u32,)).unwrap());
        }
        "raw-cross-async" => {
            let c = &mut raw_cross_async;
            black_box(
                rt.block_on(c.loop_inc.call_async(&mut c.store, (n as u32,)))
                    .unwrap(),
            );
        }
        "cross-sync" => {
            let f = format!("{DRIVER}#loop-inc");
            black_box(
                app.call_blocking("driver", &f, &[Val::U32(n as u32)])
                    .unwrap(),
            );
        }
        "cross-async" => {
            let f = format!("{DRIVER}#loop-inc");
            black_box(
                rt.block_on(app.call("driver", &f, &[Val::U32(n as u32)]))
                    .unwrap(),
            );
        }
        "md-raw" => (0..n).for_each(|_| {
            black_box(md.call(&mut raw.store, (doc.clone(),)).unwrap());
        }),
        "md-raw-epochs" => (0..n).for_each(|_| {
            black_box(emd.call(&mut eraw.store, (doc.clone(),)).unwrap());
        }),
        "md-typed-blocking" => (0..n).for_each(|_| {
            black_box(md_typed.call_blocking((doc.clone(),)).unwrap());
        }),
        "echo-raw-async" => rt.block_on(async {
            for _ in 0..n {
                black_box(
                    aecho
                        .call_async(&mut araw.store, (kib.clone(),))
                        .await
                        .unwrap(),
                );
            }
        }),
        "echo-call-async" => rt.block_on(async {
            for _ in 0..n {
                black_box(
                    app.call("provider", &echo_func, &[Val::String(kib.clone())])
                        .await
                        .unwrap(),
                );
            }
        }),
        "raw-res" => {
            black_box(
                raw_res
                    .loop_bump
                    .call(&mut raw_res.store, (n as u32,))
                    .unwrap(),
            );
        }
        "raw-cross-res-sync" => {
            let c = &mut raw_cross_res_sync;
            black_box(c.loop_bump.call(&mut c.store, (n as u32,)).unwrap());
        }
        "cross-res-sync" => {
            let f = format!("{DRIVER}#loop-bump");
            black_box(
                app.call_blocking("driver", &f, &[Val::U32(n as u32)])
                    .unwrap(),
            );
        }
        "cross-res-async" => {
            let f = format!("{DRIVER}#loop-bump");
            black_box(
                rt.block_on(app.call("driver", &f, &[Val::U32(n as u32)]))
                    .unwrap(),
            );
        }
        "inst-raw" => (0..n).for_each(|_| drop(black_box(setup.instantiate()))),
        "inst-per-call" => {
            let f = format!("{DRIVER}#loop-inc");
            black_box(
                per_call
                    .call_blocking("driver", &f, &[Val::U32(n as u32)])
                    .unwrap(),
            );
        }
        other => panic!("unknown path {other}"),
    };
    measured(&mut run, 1_000);
    let start = Instant::now();
    measured(&mut run, calls);
    if calls > 0 {
        println!(
            "{path}: {:.1} ns per call",
            start.elapsed().as_nanos() as f64 / calls as f64
        );
    }
}
