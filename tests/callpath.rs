//! The memory a call's future takes, on the paths every call between modules uses.
//!
//! wasmtime boxes the future of an async host function on every call, so a linked call's
//! future is allocated and copied once per call. glibc serves chunks up to 1,032 bytes from
//! its per-thread cache; past that every linked call goes through the main allocator and
//! copies kilobytes (issue 24 found 1,768 bytes, +6% instructions per call). These checks
//! fail when a change grows a hot future past that line, long before a benchmark shows it.

use membrane::{AppSpec, ModuleSpec, Val};

use crate::common::*;

/// glibc's largest per-thread cache chunk (tcache, 64 bins of 16 bytes), less its header.
const TCACHE_MAX: usize = 1_032;

const API: &str = "membrane-bench:calls/api";

fn size_of_future<F: std::future::Future>(_: &F) -> usize {
    std::mem::size_of::<F>()
}

#[tokio::test]
async fn the_futures_of_linked_calls_fit_the_allocators_thread_cache() {
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
    for (path, size) in sizes {
        assert!(
            size < TCACHE_MAX,
            "the future of {path} takes {size} bytes: past {TCACHE_MAX}, every linked call \
             allocates outside malloc's thread cache; box the rare branch that grew it"
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
