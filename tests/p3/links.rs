//! Links between WASI 0.3 modules and to and from WASI 0.2 modules: values cross, the async
//! flag of a function does not matter, `stream<u8>` and futures of simple values cross,
//! what cannot cross is refused at load.

use membrane::{AppSpec, ErrorKind, ModuleSpec, Val};

use super::*;

const PLAIN: &str = "membrane:p3lib/plain-calc";

async fn linked(importer: &str, provider: &str) -> App {
    runtime()
        .load_spec(
            AppSpec::new()
                .module("calc", ModuleSpec::from_file(provider))
                .module("user", ModuleSpec::from_file(importer).link(PLAIN, "calc")),
        )
        .await
        .unwrap_or_else(|e| panic!("{importer} -> {provider}: {}", membrane::chain(&e)))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn p3_to_p3_p3_to_p2_and_p2_to_p3() {
    let add = "membrane:p3lib/relay-plain@0.1.0#add-twice";
    for provider in [guests::P2_PLAIN_CALC, guests::P3_PLAIN_CALC] {
        let app = linked(guests::P3_PLAIN_USER, provider).await;
        let out = app.call("user", add, &[Val::U32(2), Val::U32(3)]).await;
        assert_eq!(out.unwrap(), vec![Val::U32(8)], "{provider}");
        // Calls at once through the one importer instance.
        let args: Vec<_> = (0..16u32).map(|i| [Val::U32(i), Val::U32(1)]).collect();
        let calls = args.iter().map(|a| app.call("user", add, a));
        for (i, out) in futures_util::future::join_all(calls)
            .await
            .into_iter()
            .enumerate()
        {
            assert_eq!(out.unwrap(), vec![Val::U32(i as u32 + 2)]);
        }
    }
    let app = linked(guests::P2_CALC_USER, guests::P3_PLAIN_CALC).await;
    let twice = "membrane:p3lib/plain-user@0.1.0#add-twice";
    let out = app.call("user", twice, &[Val::U32(2), Val::U32(3)]).await;
    assert_eq!(out.unwrap(), vec![Val::U32(8)]);
    let shout = "membrane:p3lib/plain-user@0.1.0#shout";
    let out = app.call("user", shout, &[Val::String("hi".into())]).await;
    assert_eq!(out.unwrap(), vec![Val::String("HI".into())]);
    // A synchronous importer instance reaches the 0.3 provider too.
    let out = tokio::task::spawn_blocking(move || {
        app.call_blocking("user", twice, &[Val::U32(1), Val::U32(1)])
    })
    .await
    .unwrap();
    assert_eq!(out.unwrap(), vec![Val::U32(3)]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streams_cross_a_link_between_p3_modules_both_ways() {
    let app = runtime()
        .load_spec(
            AppSpec::new()
                .module("lib", ModuleSpec::from_file(guests::P3_LIB))
                .module(
                    "relay",
                    ModuleSpec::from_file(guests::P3_RELAY).link(CALC, "lib"),
                ),
        )
        .await
        .unwrap_or_else(|e| panic!("{}", membrane::chain(&e)));
    let relay = "membrane:p3lib/relay@0.1.0";
    let out = app
        .call(
            "relay",
            &format!("{relay}#add-via"),
            &[Val::U32(40), Val::U32(2)],
        )
        .await
        .unwrap();
    assert_eq!(out, vec![Val::U32(42)]);
    // Into the provider: the importer writes n bytes, the provider counts them.
    for n in [0u64, 1, 65_536, 65_537, 32 << 20] {
        let out = app
            .call("relay", &format!("{relay}#count-via"), &[Val::U64(n)])
            .await
            .unwrap();
        assert_eq!(out, vec![Val::U64(n)], "count-via {n}");
    }
    // Out of the provider: it returns a stream of n bytes the importer reads to its end.
    for n in [0u64, 3, 200_000, 32 << 20] {
        let out = app
            .call("relay", &format!("{relay}#sum-repeat"), &[Val::U64(n)])
            .await
            .unwrap();
        assert_eq!(out, vec![Val::U64(n)], "sum-repeat {n}");
    }
    // Several at once through one importer instance and one provider instance.
    let args: Vec<_> = (0..8u64).map(|i| [Val::U64(i * 100_000)]).collect();
    let count_via = format!("{relay}#count-via");
    let calls = args.iter().map(|a| app.call("relay", &count_via, a));
    for (i, out) in futures_util::future::join_all(calls)
        .await
        .into_iter()
        .enumerate()
    {
        assert_eq!(out.unwrap(), vec![Val::U64(i as u64 * 100_000)]);
    }
}

/// A stream across a link is pumped with backpressure: while the importer does not read, the
/// provider's writer stops after a few chunks (64 KiB each), not after the whole stream.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_reader_stops_the_writer_across_a_link() {
    // One instance of each, so `written` and `release` reach the instances of `hold-repeat`.
    let app = runtime()
        .load_spec(
            AppSpec::new()
                .module(
                    "lib",
                    ModuleSpec::from_file(guests::P3_LIB).concurrency(1, 0),
                )
                .module(
                    "relay",
                    ModuleSpec::from_file(guests::P3_RELAY)
                        .link(CALC, "lib")
                        .concurrency(1, 0),
                ),
        )
        .await
        .unwrap_or_else(|e| panic!("{}", membrane::chain(&e)));
    let n: u64 = 64 << 20;
    let hold = {
        let app = app.clone();
        tokio::spawn(async move {
            app.call(
                "relay",
                "membrane:p3lib/relay@0.1.0#hold-repeat",
                &[Val::U64(n)],
            )
            .await
        })
    };
    let written = || async {
        match app.call("lib", &format!("{CALC}#written"), &[]).await {
            Ok(v) => match v[..] {
                [Val::U64(w)] => w,
                _ => panic!("written: {v:?}"),
            },
            Err(e) => panic!("written: {}", membrane::chain(&e)),
        }
    };
    // Until the writer has stopped moving (the bound below holds at every moment anyway).
    let (mut last, mut still) = (0, 0);
    for _ in 0..1_000 {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        let now = written().await;
        still = if now == last && now > 0 { still + 1 } else { 0 };
        last = now;
        assert!(
            now <= 1 << 20,
            "the provider wrote {now} bytes of {n} while the importer read one chunk"
        );
        if still == 10 {
            break;
        }
    }
    assert_eq!(still, 10, "the writer never stopped: {last} bytes written");
    app.call("relay", "membrane:p3lib/relay@0.1.0#release", &[])
        .await
        .unwrap();
    let out = hold.await.unwrap().unwrap();
    assert_eq!(out, vec![Val::U64(n)]);
    assert_eq!(written().await, n);
}

/// lib (p3_lib) <- relay (p3_relay), with `f` applied to relay.
async fn lib_and_relay(f: impl FnOnce(ModuleSpec) -> ModuleSpec) -> App {
    runtime()
        .load_spec(
            AppSpec::new()
                .module("lib", ModuleSpec::from_file(guests::P3_LIB))
                .module(
                    "relay",
                    f(ModuleSpec::from_file(guests::P3_RELAY).link(CALC, "lib")),
                ),
        )
        .await
        .unwrap_or_else(|e| panic!("{}", membrane::chain(&e)))
}

const RELAY: &str = "membrane:p3lib/relay@0.1.0";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn futures_cross_a_link_between_p3_modules_both_ways() {
    let app = lib_and_relay(|m| m).await;
    // Out of the provider: a future its task resolves after the call returned.
    let out = app
        .call(
            "relay",
            &format!("{RELAY}#later-via"),
            &[Val::U32(7), Val::U32(20)],
        )
        .await
        .unwrap();
    assert_eq!(out, vec![Val::U32(7)]);
    // A future without a value.
    let out = app
        .call("relay", &format!("{RELAY}#tick-via"), &[Val::U32(5)])
        .await
        .unwrap();
    assert_eq!(out, vec![Val::Bool(true)]);
    // Into the provider: a future the importer resolves after the provider began to wait.
    let out = app
        .call(
            "relay",
            &format!("{RELAY}#upper-later-via"),
            &[s("across"), Val::U32(20)],
        )
        .await
        .unwrap();
    assert_eq!(out, vec![s("ACROSS")]);
    // Sixteen at once, each its own value.
    let later = format!("{RELAY}#later-via");
    let args: Vec<_> = (0..16u32)
        .map(|i| [Val::U32(i), Val::U32(16 - i)])
        .collect();
    let calls = args.iter().map(|a| app.call("relay", &later, a));
    for (i, out) in futures_util::future::join_all(calls)
        .await
        .into_iter()
        .enumerate()
    {
        assert_eq!(out.unwrap(), vec![Val::U32(i as u32)]);
    }
}

/// A call waiting for a future that resolves after its deadline gets Timeout at the
/// deadline; a call on the same importer that does not wait so long is answered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_future_resolved_after_the_deadline_times_the_call_out() {
    let app = lib_and_relay(|m| m.timeout(std::time::Duration::from_secs(2))).await;
    let later = format!("{RELAY}#later-via");
    let slow = app.call("relay", &later, &[Val::U32(1), Val::U32(600_000)]);
    let quick = app.call("relay", &later, &[Val::U32(2), Val::U32(1)]);
    let (slow, quick) = tokio::join!(slow, quick);
    assert_eq!(slow.unwrap_err().kind(), ErrorKind::Timeout);
    assert_eq!(quick.unwrap(), vec![Val::U32(2)]);
    // And the app goes on.
    let out = app.call("relay", &later, &[Val::U32(3), Val::U32(1)]).await;
    assert_eq!(out.unwrap(), vec![Val::U32(3)]);
}

/// What a link cannot carry is refused at load, each function named: a future of a record,
/// a future inside another value, a future in a plain (not async) function, a stream of
/// other than u8. Futures of simple values in an async function pass.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_cannot_cross_a_link_is_refused_at_load() {
    let wit = r#"
        package test:fut;
        interface f {
          record pair { a: u32, b: u32 }
          ok: async func(x: future<u32>) -> future<string>;
          rec: async func(x: future<pair>) -> u32;
          nested: async func(x: option<future<u32>>) -> u32;
          plain: func(x: future<u32>) -> u32;
          words: async func(x: stream<u32>) -> u32;
        }
        world importer { import f; }
        world provider { export f; }
    "#;
    let dir = tempfile::tempdir().unwrap();
    let importer = dir.path().join("importer.wasm");
    let provider = dir.path().join("provider.wasm");
    std::fs::write(&importer, synth(wit, "importer")).unwrap();
    std::fs::write(&provider, synth(wit, "provider")).unwrap();
    let Err(e) = runtime()
        .load_spec(
            AppSpec::new()
                .module("p", ModuleSpec::from_file(&provider))
                .module(
                    "i",
                    ModuleSpec::from_file(&importer).link("test:fut/f", "p"),
                ),
        )
        .await
    else {
        panic!("the app loaded");
    };
    assert_eq!(e.kind(), ErrorKind::Link, "{e}");
    let problems: Vec<_> = std::iter::once(&e).chain(e.problems()).collect();
    let mut refused: Vec<_> = problems.iter().filter_map(|p| p.export()).collect();
    refused.sort();
    assert_eq!(
        refused,
        [
            "test:fut/f#nested",
            "test:fut/f#plain",
            "test:fut/f#rec",
            "test:fut/f#words"
        ],
        "{e:?}"
    );
    for p in problems.iter().filter(|p| p.export().is_some()) {
        assert_eq!(p.module(), Some("i"));
        assert!(p.key().unwrap().starts_with("modules.i.links"), "{p:?}");
    }
    let plain = problems
        .iter()
        .find(|p| p.export() == Some("test:fut/f#plain"))
        .unwrap();
    assert!(plain.message().contains("not an `async func`"), "{plain}");
}
