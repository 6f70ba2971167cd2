//! The memory a call's future takes, on the paths every call between modules uses.
//!
//! wasmtime boxes the future of an async host function on every call, so a linked call's
//! future is allocated and copied once per call. glibc serves chunks up to 1,032 bytes from
//! its per-thread cache; past that every linked call goes through the main allocator and
//! copies kilobytes (issue 24 found 1,768 bytes, +6% instructions per call). Since WASI 0.3
//! support, wasmtime's own call future is past that line by itself (issue 26), so these
//! checks bound what Membrane adds to it, and fail when a change grows a hot future long
//! before a benchmark shows it.
//!
//! And the heap allocations of one linked call, on both paths: a figure that does not
//! depend on the machine's speed (the allocator is counted per thread, `common/allocs.rs`),
//! so an allocation added to every call is seen here rather than as a slower benchmark.

use membrane::{AppSpec, ModuleSpec, Val};

use crate::common::allocs::allocations;
use crate::common::*;

/// What a linked call's future may hold beyond wasmtime's own call future (its admission
/// guard, budget, span and lease). Before WASI 0.3 support, wasmtime's part was small
/// enough for the whole to stay under glibc's largest per-thread cache chunk (1,032 bytes);
/// the `component-model-async` feature grew wasmtime's part past it (BENCHMARKS.md, issue 26).
const MEMBRANE_PART_MAX: usize = 640;

const API: &str = "membrane-bench:calls/api";
const DRIVER: &str = "membrane-bench:calls/driver";

/// Allocations per linked call, at most. On the async path both are wasmtime's: it boxes the
/// future of every async host function (the importer's forwarder), and `call_async` boxes
/// the closure of the fiber it runs the provider on (`Fiber::new`). Membrane's own part of
/// the call allocates nothing, on either path.
const ASYNC_ALLOCATIONS: u64 = 2;
const SYNC_ALLOCATIONS: u64 = 0;
/// A resource method across a link adds wasmtime's borrow bookkeeping: each of the two
/// stores lifts a `borrow` handle and records it in a fresh list of the call's scope
/// (`ResourceTables::resource_lift_borrow`), one allocation each.
const METHOD_BORROWS: u64 = 2;

async fn linked() -> membrane::App {
    runtime()
        .load_spec(
            AppSpec::new()
                .module(
                    "driver",
                    ModuleSpec::from_file(guests::BENCH_DRIVER)
                        .link(API, "provider")
                        .link("membrane-bench:calls/res", "provider"),
                )
                .module("provider", ModuleSpec::from_file(guests::BENCH_PROVIDER)),
        )
        .await
        .unwrap()
}

/// The allocations of one `loop-inc` call making `n` linked calls, on this thread.
fn counted(call: impl Fn(u32) -> Vec<Val>, n: u32) -> u64 {
    let before = allocations();
    let out = call(n);
    let after = allocations();
    assert_eq!(out, [Val::U64(n as u64)], "the driver counted its calls");
    after - before
}

/// Allocations per linked call: a call making 1,001 linked calls against one making 1.
fn per_linked_call(call: impl Fn(u32) -> Vec<Val>) -> f64 {
    call(10); // instances made, caches filled
    let one = counted(&call, 1);
    let many = counted(&call, 1_001);
    many.saturating_sub(one) as f64 / 1_000.0
}

#[test]
fn linked_calls_and_methods_allocate_nothing_of_membranes_own() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let app = rt.block_on(linked());
    let f = format!("{DRIVER}#loop-inc");
    let on_task = per_linked_call(|n| rt.block_on(app.call("driver", &f, &[Val::U32(n)])).unwrap());
    let blocking = per_linked_call(|n| app.call_blocking("driver", &f, &[Val::U32(n)]).unwrap());
    let f = format!("{DRIVER}#loop-bump");
    let res_on_task =
        per_linked_call(|n| rt.block_on(app.call("driver", &f, &[Val::U32(n)])).unwrap());
    let res_blocking =
        per_linked_call(|n| app.call_blocking("driver", &f, &[Val::U32(n)]).unwrap());
    eprintln!(
        "allocations per linked call: async {on_task}, sync {blocking}; \
         per resource method: async {res_on_task}, sync {res_blocking}"
    );
    assert!(
        on_task <= ASYNC_ALLOCATIONS as f64,
        "a linked call on the async path allocates {on_task} times; at most {ASYNC_ALLOCATIONS} (wasmtime's two boxes)"
    );
    assert!(
        blocking <= SYNC_ALLOCATIONS as f64,
        "a linked call on the sync path allocates {blocking} times; at most {SYNC_ALLOCATIONS}"
    );
    let (res_async_max, res_sync_max) = (
        ASYNC_ALLOCATIONS + METHOD_BORROWS,
        SYNC_ALLOCATIONS + METHOD_BORROWS,
    );
    assert!(
        res_on_task <= res_async_max as f64,
        "a resource method across a link, async path: {res_on_task} allocations; at most {res_async_max}"
    );
    assert!(
        res_blocking <= res_sync_max as f64,
        "a resource method across a link, sync path: {res_blocking} allocations; at most {res_sync_max}"
    );
}

fn size_of_future<F: std::future::Future>(_: &F) -> usize {
    std::mem::size_of::<F>()
}

/// The size of the future `f` returns, without calling it.
fn size_of_output<A, B, Fut, F: FnOnce(A, B) -> Fut>(_: &F) -> usize {
    std::mem::size_of::<Fut>()
}

#[tokio::test]
async fn the_futures_of_linked_calls_hold_little_beyond_wasmtimes_own() {
    let app = runtime()
        .load_spec(AppSpec::new().module("provider", ModuleSpec::from_file(guests::BENCH_PROVIDER)))
        .await
        .unwrap();
    let generation = app.module("provider").unwrap().current();
    let inc = generation.function(&format!("{API}#inc")).unwrap();

    // A typed link forwarder's call (link/trampoline.rs) and a dynamic one's
    // (link/forward.rs), as the importer's host function builds them; never polled.
    let typed = generation.invoke_typed_async::<(u64,), (u64,)>(&inc, (41,), None, None);
    let mut results = [Val::U64(0)];
    let dynamic = generation.invoke_into_async(&inc, &[Val::U64(41)], &mut results, None);
    let sizes = [
        ("invoke_typed_async", size_of_future(&typed)),
        ("invoke_into_async", size_of_future(&dynamic)),
    ];
    drop((typed, dynamic));
    // wasmtime's own call futures, which Membrane's hold: with the `component-model-async`
    // feature (WASI 0.3 modules), each also holds the branch that drives a call in a
    // concurrent Store, even on an engine without concurrency support.
    let raw_typed = |f: wasmtime::component::TypedFunc<(u64,), (u64,)>,
                     mut s: wasmtime::Store<()>| async move {
        f.call_async(&mut s, (41,)).await
    };
    let raw_dynamic = |f: wasmtime::component::Func, mut s: wasmtime::Store<()>| async move {
        let mut r = [Val::U64(0)];
        f.call_async(&mut s, &[Val::U64(41)], &mut r).await
    };
    let floors = [size_of_output(&raw_typed), size_of_output(&raw_dynamic)];
    for ((path, size), floor) in sizes.into_iter().zip(floors) {
        eprintln!("the future of {path}: {size} bytes, of which wasmtime's call: {floor}");
        let ours = size.saturating_sub(floor);
        assert!(
            ours < MEMBRANE_PART_MAX,
            "the future of {path} takes {size} bytes, {ours} more than wasmtime's own call \
             ({floor}): past {MEMBRANE_PART_MAX}, box the rare branch that grew it"
        );
    }

    // And the calls still work, for the sizes to mean anything.
    let (r,) = generation
        .invoke_typed_async::<(u64,), (u64,)>(&inc, (41,), None, None)
        .await
        .unwrap();
    assert_eq!(r, 42);
    let mut results = [Val::U64(0)];
    generation
        .invoke_into_async(&inc, &[Val::U64(41)], &mut results, None)
        .await
        .unwrap();
    assert_eq!(results[0], Val::U64(42));
}
