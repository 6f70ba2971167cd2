//! Links: modules connected only through type-checked WIT interfaces.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use membrane::{AppSpec, ErrorKind, HostInterface, ModuleSpec, Val};

use crate::common::*;

/// A component importing `acme:kv/store@{version}` with the given interface body.
fn importer(version: &str, body: &str) -> Vec<u8> {
    synth(
        &format!(
            "package test:api;\n\
             package acme:kv@{version} {{ interface store {{ {body} }} }}\n\
             world w {{ import acme:kv/store@{version}; }}"
        ),
        "test:api/w",
    )
}

/// A component exporting `acme:kv/store@{version}` with the given interface body.
fn provider(version: &str, body: &str) -> Vec<u8> {
    synth(
        &format!(
            "package test:store;\n\
             package acme:kv@{version} {{ interface store {{ {body} }} }}\n\
             world w {{ export acme:kv/store@{version}; }}"
        ),
        "test:store/w",
    )
}

async fn link_pair(imp: Vec<u8>, prov: Vec<u8>) -> membrane::Result<membrane::App> {
    runtime()
        .load_spec(
            AppSpec::new()
                .module(
                    "api",
                    ModuleSpec::from_bytes(imp).link("acme:kv/store", "store"),
                )
                .module("store", ModuleSpec::from_bytes(prov)),
        )
        .await
}

async fn mismatch(imp_body: &str, prov_body: &str) -> String {
    let e = link_pair(importer("0.1.0", imp_body), provider("0.1.0", prov_body))
        .await
        .err()
        .expect("the link must be refused");
    assert_eq!(e.kind(), ErrorKind::Link, "{e}");
    e.to_string()
}

#[tokio::test]
async fn matching_interfaces_link() {
    let body = "record entry { key: string, value: list<u8> } \
                get: func(key: string) -> option<entry>; \
                put: func(e: entry) -> result<_, string>;";
    let app = link_pair(importer("0.1.0", body), provider("0.1.0", body))
        .await
        .unwrap();
    assert_eq!(
        app.links(),
        &[membrane::LinkInfo {
            importer: "api".into(),
            import: "acme:kv/store@0.1.0".into(),
            provider: "store".into(),
            export: "acme:kv/store@0.1.0".into(),
            fused: false,
        }]
    );
}

#[tokio::test]
async fn every_kind_of_type_mismatch_is_named() {
    let cases: &[(&str, &str, &str)] = &[
        (
            "get: func(key: string) -> option<string>;",
            "get: func(key: string) -> option<list<u8>>;",
            "api imports acme:kv/store#get: result 0: expected option<string>, store exports option<list<u8>>",
        ),
        (
            "get: func(key: string) -> string;",
            "get: func(key: u32) -> string;",
            "param 0 (`key`): expected string, store exports u32",
        ),
        (
            "get: func(key: string);",
            "get: func(key: string, more: u8);",
            "expected 1 parameter(s), store exports 2",
        ),
        (
            "record r { a: u32, b: string } get: func() -> r;",
            "record r { a: u32, c: string } get: func() -> r;",
            "result 0: expected record { a: u32, b: string }, store exports record { a: u32, c: string }",
        ),
        (
            "record r { a: u32, b: string } get: func() -> r;",
            "record r { a: u32, b: u64 } get: func() -> r;",
            "first difference at `b`: string vs u64",
        ),
        (
            "variant v { x(u32), y } get: func() -> v;",
            "variant v { x(u64), y } get: func() -> v;",
            "first difference at `x`: u32 vs u64",
        ),
        (
            "variant v { x(u32), y } get: func() -> v;",
            "variant v { x(u32), z } get: func() -> v;",
            "expected variant { x(u32), y }, store exports variant { x(u32), z }",
        ),
        (
            "enum e { a, b } get: func() -> e;",
            "enum e { a, b, c } get: func() -> e;",
            "expected enum { a, b }",
        ),
        (
            "flags f { a, b } get: func() -> f;",
            "flags f { b, a } get: func() -> f;",
            "expected flags { a, b }",
        ),
        (
            "get: func() -> list<u32>;",
            "get: func() -> list<s32>;",
            "first difference at `element`: u32 vs s32",
        ),
        (
            "get: func() -> result<u32, string>;",
            "get: func() -> result<u32>;",
            "first difference at `err`: string vs no payload",
        ),
        (
            "get: func() -> tuple<u32, u8>;",
            "get: func() -> tuple<u32>;",
            "expected tuple<u32, u8>",
        ),
        (
            "resource r { m: func(); } get: func() -> r;",
            "resource r { m: func(); } get: func() -> option<r>;",
            "expected own<r>, store exports option<own<r>>",
        ),
        (
            "resource r { m: func(); } resource s { m: func(); } get: func(x: borrow<r>);",
            "resource r { m: func(); } resource s { m: func(); } get: func(x: borrow<s>);",
            "expected borrow<r>, store exports borrow<s>",
        ),
        (
            "get: func(); put: func();",
            "get: func();",
            "`store` exports no function `put`",
        ),
        (
            "resource r { m: func(); }",
            "",
            "`store` exports no such resource",
        ),
    ];
    for (imp, prov, expected) in cases {
        let msg = mismatch(imp, prov).await;
        assert!(
            msg.contains(expected),
            "{imp} vs {prov}:\n  got: {msg}\n  want: {expected}"
        );
    }
}

#[tokio::test]
async fn check_reports_every_mismatch() {
    let e = link_pair(
        importer("0.1.0", "get: func() -> u32; put: func(x: string);"),
        provider("0.1.0", "get: func() -> u64; put: func(x: u8);"),
    )
    .await
    .err()
    .expect("refused");
    let exports: Vec<_> = e.problems().iter().map(|p| p.export()).collect();
    assert_eq!(
        exports,
        [
            Some("acme:kv/store@0.1.0#get"),
            Some("acme:kv/store@0.1.0#put")
        ]
    );
    assert!(
        e.problems().iter().all(
            |p| p.module() == Some("api") && p.key() == Some("modules.api.links.acme:kv/store")
        )
    );
}

#[tokio::test]
async fn semver_rules() {
    let body = "get: func() -> u32;";
    for (want, have, ok) in [
        ("1.2.0", "1.4.1", true),
        ("1.2.0", "1.2.0", true),
        ("1.2.0", "2.0.0", false),
        ("1.4.0", "1.2.0", false),
        ("0.1.0", "0.1.5", true),
        ("0.1.0", "0.2.0", false),
    ] {
        let r = link_pair(importer(want, body), provider(have, body)).await;
        match (ok, r) {
            (true, Ok(_)) => {}
            (false, Err(e)) => {
                assert_eq!(e.kind(), ErrorKind::Link);
                let msg = e.to_string();
                assert!(
                    msg.contains(&format!("imports `acme:kv/store@{want}`")),
                    "{msg}"
                );
                assert!(msg.contains(&format!("exports version {have}")), "{msg}");
            }
            (ok, r) => panic!(
                "{want} served by {have}: expected ok={ok}, got {:?}",
                r.err()
            ),
        }
    }
}

/// A link key at a version the import cannot use is one problem that names both
/// versions, not "not linked" plus a warning that the link is unused.
#[tokio::test]
async fn a_link_key_at_another_version_names_both() {
    let body = "get: func() -> u32;";
    let e = runtime()
        .load_spec(
            AppSpec::new()
                .module(
                    "api",
                    ModuleSpec::from_bytes(importer("0.1.0", body))
                        .link("acme:kv/store@0.2.0", "store"),
                )
                .module("store", ModuleSpec::from_file(guests::TYPES)),
        )
        .await
        .err()
        .unwrap();
    assert_eq!(e.kind(), ErrorKind::Link);
    assert_eq!(e.module(), Some("api"));
    assert_eq!(e.export(), Some("acme:kv/store@0.1.0"));
    assert_eq!(e.key(), Some("modules.api.links.acme:kv/store@0.2.0"));
    assert!(
        e.message()
            .contains("its link names `acme:kv/store@0.2.0`, a version the import cannot use")
            && e.message().contains("write the key as `acme:kv/store`"),
        "{e}"
    );
}

#[tokio::test]
async fn missing_provider_unlinked_import_and_unused_link() {
    let body = "get: func() -> u32;";
    let e = runtime()
        .load_spec(AppSpec::new().module(
            "api",
            ModuleSpec::from_bytes(importer("0.1.0", body)).link("acme:kv/store", "nope"),
        ))
        .await
        .err()
        .unwrap();
    assert_eq!(e.kind(), ErrorKind::Link);
    assert_eq!(e.module(), Some("api"));
    assert_eq!(e.key(), Some("modules.api.links.acme:kv/store"));

    let e = runtime()
        .load_spec(AppSpec::new().module("api", ModuleSpec::from_bytes(importer("0.1.0", body))))
        .await
        .err()
        .unwrap();
    assert_eq!(e.kind(), ErrorKind::Link);
    assert_eq!(e.export(), Some("acme:kv/store@0.1.0"));
    assert_eq!(e.key(), Some("modules.api.links"));

    let e = runtime()
        .load_spec(
            AppSpec::new()
                .module(
                    "api",
                    ModuleSpec::from_bytes(importer("0.1.0", body)).link("acme:kv/store", "store"),
                )
                .module("store", ModuleSpec::from_file(guests::TYPES)),
        )
        .await
        .err()
        .unwrap();
    assert_eq!(e.kind(), ErrorKind::Link);
    assert_eq!(e.module(), Some("api"));
    assert_eq!(e.key(), Some("modules.api.links.acme:kv/store"));

    let app = runtime()
        .load_spec(
            AppSpec::new()
                .module(
                    "p",
                    ModuleSpec::from_file(guests::PROBE).link("acme:kv/store", "p2"),
                )
                .module("p2", ModuleSpec::from_file(guests::TYPES)),
        )
        .await
        .unwrap();
    assert_eq!(app.warnings().len(), 1);
    assert!(
        app.warnings()[0].contains("does not import it"),
        "{:?}",
        app.warnings()
    );
}

#[tokio::test]
async fn cycles_are_refused() {
    let a = synth(
        "package t:x; interface x { f: func(); } interface y { g: func(); } world a { import x; export y; } world b { import y; export x; }",
        "t:x/a",
    );
    let b = synth(
        "package t:x; interface x { f: func(); } interface y { g: func(); } world a { import x; export y; } world b { import y; export x; }",
        "t:x/b",
    );
    let e = runtime()
        .load_spec(
            AppSpec::new()
                .module("a", ModuleSpec::from_bytes(a).link("t:x/x", "b"))
                .module("b", ModuleSpec::from_bytes(b).link("t:x/y", "a")),
        )
        .await
        .err()
        .unwrap();
    assert_eq!(e.kind(), ErrorKind::Link);
    assert_eq!(e.module(), Some("a"));
    assert_eq!(e.key(), Some("modules.a.links"));
}

const FRONT: &str = "membrane-test:chain/front";
const RELAY: &str = "membrane-test:chain/relay";

/// front -> relay -> worker, each with its own limits.
async fn chain(worker_timeout: Duration) -> membrane::App {
    runtime()
        .load_spec(
            AppSpec::new()
                .module(
                    "front",
                    ModuleSpec::from_file(guests::FRONT)
                        .link("membrane-test:chain/relay", "relay")
                        .timeout(Duration::from_secs(10)),
                )
                .module(
                    "relay",
                    ModuleSpec::from_file(guests::RELAY)
                        .link("membrane-test:chain/work@1.2.0", "worker")
                        .timeout(Duration::from_secs(10)),
                )
                .module(
                    "worker",
                    ModuleSpec::from_file(guests::WORKER).timeout(worker_timeout),
                ),
        )
        .await
        .expect("chain loads")
}

#[tokio::test]
async fn three_module_chain() {
    let app = chain(Duration::from_secs(5)).await;
    let out = app
        .call("front", &format!("{FRONT}#echo"), &[s("hi")])
        .await
        .unwrap();
    assert_eq!(out[0], s("front:relay:worker:hi"));
    let out = app
        .call(
            "front",
            &format!("{FRONT}#add"),
            &[Val::U64(40), Val::U64(2)],
        )
        .await
        .unwrap();
    assert_eq!(out[0], Val::U64(42));
    assert_eq!(app.links().len(), 2);
}

#[tokio::test]
async fn a_looping_provider_times_out_under_its_own_limit() {
    let app = chain(Duration::from_millis(200)).await;
    let start = std::time::Instant::now();
    let e = app
        .call("relay", &format!("{RELAY}#spin"), &[])
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Timeout, "{}", membrane::chain(&e));
    // The worker's 200ms stopped it, not the relay's 10s.
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "{:?}",
        start.elapsed()
    );
    // The caller's error names the caller; its cause names the provider.
    assert_eq!(e.module(), Some("relay"));
    let cause = std::error::Error::source(&e)
        .and_then(|c| c.downcast_ref::<membrane::Error>())
        .expect("the provider's error");
    assert_eq!(cause.module(), Some("worker"));
    assert_eq!(cause.kind(), ErrorKind::Timeout);
    // Both sides were replaced; the next call succeeds.
    let out = app
        .call(
            "relay",
            &format!("{RELAY}#add"),
            &[Val::U64(1), Val::U64(2)],
        )
        .await
        .unwrap();
    assert_eq!(out[0], Val::U64(3));
}

#[tokio::test]
async fn a_trapping_provider_fails_the_call_not_the_host() {
    let app = chain(Duration::from_secs(5)).await;
    let e = app
        .call("relay", &format!("{RELAY}#fail"), &[s("boom")])
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Trap, "{}", membrane::chain(&e));
    assert_eq!(
        (e.module(), e.export()),
        (Some("relay"), Some("membrane-test:chain/relay@1.2.0#fail"))
    );
    let cause = std::error::Error::source(&e)
        .and_then(|c| c.downcast_ref::<membrane::Error>())
        .expect("the provider's error");
    assert_eq!(
        (cause.module(), cause.export()),
        (Some("worker"), Some("membrane-test:chain/work@1.2.0#fail"))
    );
    let out = app
        .call("front", &format!("{FRONT}#echo"), &[s("again")])
        .await
        .unwrap();
    assert_eq!(out[0], s("front:relay:worker:again"));
}

#[tokio::test]
async fn host_provided_interface() {
    let rt = runtime();
    let map: Arc<Mutex<std::collections::BTreeMap<String, String>>> = Default::default();
    let (m1, m2, m3) = (map.clone(), map.clone(), map.clone());
    rt.provide(
        HostInterface::new("acme:kv/store@0.1.0")
            .func("get", move |(k,): (String,)| {
                Ok((m1.lock().unwrap().get(&k).cloned(),))
            })
            .func("set", move |(k, v): (String, String)| {
                m2.lock().unwrap().insert(k, v);
                Ok((Ok::<(), String>(()),))
            })
            .func("keys", move |(): ()| {
                Ok((m3.lock().unwrap().keys().cloned().collect::<Vec<_>>(),))
            }),
    )
    .unwrap();
    let app = rt
        .load_spec(AppSpec::new().module(
            "cli",
            ModuleSpec::from_file(guests::NEEDS_KV).link("acme:kv/store", "host"),
        ))
        .await
        .unwrap();
    assert_eq!(app.run(vec![], false).await.unwrap(), 0);
    assert_eq!(
        map.lock().unwrap().get("greeting").map(String::as_str),
        Some("hi")
    );

    // A module without the link cannot reach it.
    let e = rt
        .load_spec(AppSpec::new().module("cli", ModuleSpec::from_file(guests::NEEDS_KV)))
        .await
        .err()
        .unwrap();
    assert_eq!(e.kind(), ErrorKind::Link);

    // Wrong Rust types are a load error.
    let rt = runtime();
    rt.provide(
        HostInterface::new("acme:kv/store@0.1.0")
            .func("get", |(_k,): (String,)| Ok((7u32,)))
            .func("set", |(_k, _v): (String, String)| {
                Ok((Ok::<(), String>(()),))
            })
            .func("keys", |(): ()| Ok((Vec::<String>::new(),))),
    )
    .unwrap();
    let e = rt
        .load_spec(AppSpec::new().module(
            "cli",
            ModuleSpec::from_file(guests::NEEDS_KV).link("acme:kv/store", "host"),
        ))
        .await
        .err()
        .unwrap();
    assert_eq!(e.kind(), ErrorKind::Link, "{e}");
    assert_eq!(e.module(), Some("cli"));

    // A host interface the app needs but nobody registered.
    let e = runtime()
        .load_spec(AppSpec::new().module(
            "cli",
            ModuleSpec::from_file(guests::NEEDS_KV).link("acme:kv/store", "host"),
        ))
        .await
        .err()
        .unwrap();
    assert_eq!(e.kind(), ErrorKind::Link);
    assert_eq!(e.key(), Some("modules.cli.links.acme:kv/store"));
}

/// Dynamic host functions (the C and Python hosts' way in): values as `Val`, a declared
/// signature checked against the importer's at load, results checked at call.
#[tokio::test]
async fn dynamic_host_functions() {
    let map: Arc<Mutex<std::collections::BTreeMap<String, String>>> = Default::default();
    let (m1, m2, m3) = (map.clone(), map.clone(), map.clone());
    let kv = |get_sig: &str| {
        let (m1, m2, m3) = (m1.clone(), m2.clone(), m3.clone());
        HostInterface::new("acme:kv/store@0.1.0")
            .func_dynamic("get", get_sig, move |_ty, args, results| {
                let Val::String(k) = &args[0] else {
                    unreachable!("the signature was checked at load")
                };
                results[0] = Val::Option(
                    m1.lock()
                        .unwrap()
                        .get(k)
                        .map(|v| Box::new(Val::String(v.clone()))),
                );
                Ok(())
            })
            .func_dynamic(
                "set",
                "func(key: string, value: string) -> result<_, string>",
                move |ty, args, results| {
                    assert_eq!(ty.params().len(), 2);
                    if let [Val::String(k), Val::String(v)] = args {
                        m2.lock().unwrap().insert(k.clone(), v.clone());
                    }
                    results[0] = Val::Result(Ok(None));
                    Ok(())
                },
            )
            .func_dynamic(
                "keys",
                "func() -> list<string>",
                move |_ty, _args, results| {
                    let keys = m3
                        .lock()
                        .unwrap()
                        .keys()
                        .cloned()
                        .map(Val::String)
                        .collect();
                    results[0] = Val::List(keys);
                    Ok(())
                },
            )
    };
    let load = |rt: membrane::Runtime| async move {
        rt.load_spec(AppSpec::new().module(
            "cli",
            ModuleSpec::from_file(guests::NEEDS_KV).link("acme:kv/store", "host"),
        ))
        .await
    };

    let rt = runtime();
    rt.provide(kv("func(string) -> option<string>")).unwrap();
    let app = load(rt).await.unwrap();
    assert_eq!(app.run(vec![], false).await.unwrap(), 0);
    assert_eq!(
        map.lock().unwrap().get("greeting").map(String::as_str),
        Some("hi")
    );

    // A declared signature that is not the importer's is refused at load, naming both.
    let rt = runtime();
    rt.provide(kv("func(key: string) -> option<u32>")).unwrap();
    let e = load(rt)
        .await
        .err()
        .expect("a wrong signature must be refused");
    assert_eq!(e.kind(), ErrorKind::Link, "{e}");
    assert_eq!(e.module(), Some("cli"));
    assert_eq!(e.export(), Some("acme:kv/store@0.1.0#get"));
    let text = e.to_string();
    assert!(text.contains("func(string) -> option<string>"), "{text}");
    assert!(text.contains("option<u32>"), "{text}");

    // A function that fills a result with a value of the wrong type fails the guest's
    // call (the command exits non-zero), not the host.
    let rt = runtime();
    rt.provide(kv("func(string) -> option<string>").func_dynamic(
        "get",
        "func(string) -> option<string>",
        |_ty, _args, results| {
            results[0] = Val::U32(7);
            Ok(())
        },
    ))
    .unwrap();
    let app = load(rt).await.unwrap();
    let r = app.run(vec![], false).await;
    assert!(!matches!(r, Ok(0)), "{r:?}");
}
