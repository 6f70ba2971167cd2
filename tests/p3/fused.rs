//! WASI 0.3 modules with `placement = "fused"`: composed with their fused providers at load
//! into one component, which runs on the 0.3 executor; streams and futures between the
//! members are plain component-model values inside the composition.

use membrane::{AppSpec, ModuleSpec, Placement, Val};

use super::*;

const PLAIN: &str = "membrane:p3lib/plain-calc";
const ASYNC_PLAIN: &str = "membrane:p3lib/async-plain";

async fn fused(importer: &str, link: &str, provider: &str) -> App {
    runtime()
        .load_spec(
            AppSpec::new()
                .module(
                    "calc",
                    ModuleSpec::from_file(provider).placement(Placement::Fused),
                )
                .module(
                    "user",
                    ModuleSpec::from_file(importer)
                        .link(link, "calc")
                        .placement(Placement::Fused),
                ),
        )
        .await
        .unwrap_or_else(|e| panic!("{importer} + {provider}: {}", membrane::chain(&e)))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn p3_modules_fuse_with_p3_and_p2_members() {
    let app = fused(guests::P3_ASYNC_USER, ASYNC_PLAIN, guests::P3_LIB).await;
    assert!(app.links().iter().any(|l| l.fused), "{:?}", app.links());
    let add = "membrane:p3lib/relay-async@0.1.0#add-twice";
    let out = app.call("user", add, &[Val::U32(2), Val::U32(3)]).await;
    assert_eq!(out.unwrap(), vec![Val::U32(8)]);
    // A 0.3 importer fused with a 0.2 provider of the same (plain) functions.
    let app = fused(guests::P3_PLAIN_USER, PLAIN, guests::P2_PLAIN_CALC).await;
    let add = "membrane:p3lib/relay-plain@0.1.0#add-twice";
    let out = app.call("user", add, &[Val::U32(1), Val::U32(1)]).await;
    assert_eq!(out.unwrap(), vec![Val::U32(3)]);
}

/// Inside a composition the types must be equal, async flag included (a host-forwarded
/// link ignores it): a plain import fused with an async export is refused with the way out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plain_import_fused_with_an_async_export_is_refused_at_load() {
    let Err(e) = runtime()
        .load_spec(
            AppSpec::new()
                .module(
                    "calc",
                    ModuleSpec::from_file(guests::P3_PLAIN_CALC).placement(Placement::Fused),
                )
                .module(
                    "user",
                    ModuleSpec::from_file(guests::P3_PLAIN_USER)
                        .link(PLAIN, "calc")
                        .placement(Placement::Fused),
                ),
        )
        .await
    else {
        panic!("a plain import fused with an async export loaded");
    };
    let text = membrane::chain(&e);
    assert!(text.contains("placement = \"isolated\""), "{text}");
    assert!(text.contains("async function"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streams_and_futures_pass_inside_a_fused_composition() {
    let app = fused(guests::P3_RELAY, CALC, guests::P3_LIB).await;
    let relay = "membrane:p3lib/relay@0.1.0";
    let out = app
        .call("user", &format!("{relay}#count-via"), &[Val::U64(200_000)])
        .await;
    assert_eq!(out.unwrap(), vec![Val::U64(200_000)]);
    let out = app
        .call("user", &format!("{relay}#sum-repeat"), &[Val::U64(300_000)])
        .await;
    assert_eq!(out.unwrap(), vec![Val::U64(300_000)]);
    let out = app
        .call(
            "user",
            &format!("{relay}#later-via"),
            &[Val::U32(9), Val::U32(5)],
        )
        .await;
    assert_eq!(out.unwrap(), vec![Val::U32(9)]);
}
