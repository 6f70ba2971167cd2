//! Links between WASI 0.3 modules and to and from WASI 0.2 modules: values cross, the async
//! flag of a function does not matter, streams and futures are refused at load.

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
async fn a_stream_across_a_link_is_refused_at_load() {
    let Err(e) = runtime()
        .load_spec(
            AppSpec::new()
                .module("lib", ModuleSpec::from_file(guests::P3_LIB))
                .module(
                    "relay",
                    ModuleSpec::from_file(guests::P3_RELAY).link(CALC, "lib"),
                ),
        )
        .await
    else {
        panic!("a stream across a link loaded");
    };
    assert_eq!(e.kind(), ErrorKind::Link, "{e}");
    let p = e
        .problems()
        .iter()
        .find(|p| p.export() == Some(&format!("{CALC}#count-bytes")[..]))
        .unwrap_or_else(|| panic!("no problem names count-bytes: {e:?}"));
    assert_eq!(p.module(), Some("relay"));
    assert!(p.message().contains("stream"), "{p}");
    assert!(p.key().unwrap().starts_with("modules.relay.links"), "{p:?}");
}
