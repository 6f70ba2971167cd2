//! `placement = "fused"`: an importer composed at load with its fused providers into one
//! component. The same results as isolated modules, resources across the fused link, a
//! chain of three, one fate and one set of limits, the grants rule, `membrane graph` and
//! `membrane check`, and live upgrades.

use std::time::{Duration, Instant};

use membrane::{AppSpec, Error, ErrorKind, LinkInfo, ModuleSpec, Placement, Val};

use crate::common::*;

const API: &str = "membrane-bench:calls/api";
const RES: &str = "membrane-bench:calls/res";
const DRIVER: &str = "membrane-bench:calls/driver";
const FRONT: &str = "membrane-test:chain/front";
const RELAY: &str = "membrane-test:chain/relay";

fn driver(placement: Placement) -> ModuleSpec {
    ModuleSpec::from_file(guests::BENCH_DRIVER)
        .link(API, "provider")
        .link(RES, "provider")
        .placement(placement)
}

fn provider(placement: Placement) -> ModuleSpec {
    ModuleSpec::from_file(guests::BENCH_PROVIDER).placement(placement)
}

/// bench_driver -> bench_provider, both with `placement`.
fn pair(placement: Placement) -> AppSpec {
    AppSpec::new()
        .module("driver", driver(placement))
        .module("provider", provider(placement))
}

/// Links served inside a composition are used: no warning says otherwise.
fn assert_no_unused_links(app: &membrane::App) {
    let unused: Vec<&String> = app
        .warnings()
        .iter()
        .filter(|w| w.contains("does not import"))
        .collect();
    assert!(unused.is_empty(), "{unused:?}");
}

async fn call(app: &membrane::App, module: &str, func: &str, args: &[Val]) -> Vec<Val> {
    app.call(module, func, args)
        .await
        .unwrap_or_else(|e| panic!("{func}: {}", membrane::chain(&e)))
}

#[tokio::test]
async fn a_fused_pair_gives_the_results_of_an_isolated_one() {
    let mut results = Vec::new();
    for placement in [Placement::Isolated, Placement::Fused] {
        let app = runtime().load_spec(pair(placement)).await.unwrap();
        let inc = call(
            &app,
            "driver",
            &format!("{DRIVER}#loop-inc"),
            &[Val::U32(1000)],
        )
        .await;
        let echo = call(
            &app,
            "driver",
            &format!("{DRIVER}#loop-echo"),
            &[Val::U32(10), s("abc")],
        )
        .await;
        // The provider stays a module of its own.
        let own = call(&app, "provider", &format!("{API}#inc"), &[Val::U64(41)]).await;
        results.push((inc, echo, own));
        assert_no_unused_links(&app);
        let fused = placement == Placement::Fused;
        let links: Vec<(String, bool)> = app
            .links()
            .into_iter()
            .map(|l| (l.import, l.fused))
            .collect();
        assert_eq!(
            links,
            [
                ("membrane-bench:calls/api@0.1.0".to_string(), fused),
                ("membrane-bench:calls/res@0.1.0".to_string(), fused)
            ]
        );
    }
    assert_eq!(results[0], results[1]);
    assert_eq!(
        results[1],
        (vec![Val::U64(1000)], vec![Val::U64(30)], vec![Val::U64(42)])
    );
}

#[tokio::test]
async fn an_unused_fused_link_is_still_a_warning() {
    let spec = AppSpec::new()
        .module(
            "driver",
            driver(Placement::Fused).link("membrane-test:chain/work", "provider"),
        )
        .module("provider", provider(Placement::Fused));
    let app = runtime().load_spec(spec).await.unwrap();
    let unused: Vec<&String> = app
        .warnings()
        .iter()
        .filter(|w| w.contains("does not import"))
        .collect();
    assert_eq!(unused.len(), 1, "{:?}", app.warnings());
    assert!(unused[0].contains("membrane-test:chain/work"), "{unused:?}");
}

#[tokio::test]
async fn resources_cross_a_fused_link() {
    let app = runtime().load_spec(pair(Placement::Fused)).await.unwrap();
    for _ in 0..3 {
        let out = call(
            &app,
            "driver",
            &format!("{DRIVER}#loop-bump"),
            &[Val::U32(500)],
        )
        .await;
        assert_eq!(out, [Val::U64(500)]);
    }
    // The provider's own instances serve their own resources.
    let direct = call(&app, "provider", &format!("{API}#echo"), &[s("x")]).await;
    assert_eq!(direct, [s("x")]);
}

/// front -> relay -> worker, all fused; each with its own timeout.
async fn fused_chain(relay_timeout: Duration, worker_timeout: Duration) -> membrane::App {
    runtime()
        .load_spec(
            AppSpec::new()
                .module(
                    "front",
                    ModuleSpec::from_file(guests::FRONT)
                        .link(RELAY, "relay")
                        .placement(Placement::Fused),
                )
                .module(
                    "relay",
                    ModuleSpec::from_file(guests::RELAY)
                        .link("membrane-test:chain/work@1.2.0", "worker")
                        .timeout(relay_timeout)
                        .placement(Placement::Fused),
                )
                .module(
                    "worker",
                    ModuleSpec::from_file(guests::WORKER)
                        .timeout(worker_timeout)
                        .placement(Placement::Fused),
                ),
        )
        .await
        .unwrap_or_else(|e| panic!("the chain loads: {}", membrane::chain(&e)))
}

#[tokio::test]
async fn a_fused_chain_of_three() {
    let app = fused_chain(Duration::from_secs(10), Duration::from_secs(10)).await;
    let out = call(&app, "front", &format!("{FRONT}#echo"), &[s("hi")]).await;
    assert_eq!(out, [s("front:relay:worker:hi")]);
    let out = call(
        &app,
        "front",
        &format!("{FRONT}#add"),
        &[Val::U64(40), Val::U64(2)],
    )
    .await;
    assert_eq!(out, [Val::U64(42)]);
    // The middle module is a fused importer too, with resources across its fused link.
    let out = call(
        &app,
        "relay",
        &format!("{RELAY}#counters"),
        &[Val::U32(100)],
    )
    .await;
    assert_eq!(out, [Val::U64((1..=100).sum())]);
    let out = call(&app, "relay", &format!("{RELAY}#hand-over"), &[Val::U64(5)]).await;
    assert_eq!(out, [Val::Tuple(vec![Val::U64(6), Val::U64(6)])]);
    let links: Vec<(String, String, bool)> = app
        .links()
        .into_iter()
        .map(|l: LinkInfo| (l.importer, l.provider, l.fused))
        .collect();
    assert_eq!(
        links,
        [
            ("front".to_string(), "relay".to_string(), true),
            ("relay".to_string(), "worker".to_string(), true)
        ]
    );
    assert_no_unused_links(&app);
}

/// Whether any error in `e`'s chain names `module`.
fn names_module(e: &Error, module: &str) -> bool {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(c) = cur {
        if c.downcast_ref::<Error>()
            .is_some_and(|m| m.module() == Some(module))
        {
            return true;
        }
        cur = c.source();
    }
    false
}

#[tokio::test]
async fn a_trap_in_the_fused_provider_fails_the_importers_call() {
    let app = fused_chain(Duration::from_secs(10), Duration::from_secs(10)).await;
    let e = app
        .call("relay", &format!("{RELAY}#fail"), &[s("boom")])
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Trap, "{}", membrane::chain(&e));
    assert_eq!(e.module(), Some("relay"));
    // One fate: the worker's part trapped inside the relay's instance; no call reached
    // the worker module (an isolated link's error has the worker's as its cause).
    assert!(!names_module(&e, "worker"), "{}", membrane::chain(&e));
    // The instance was discarded; the next call gets a new one.
    let out = call(&app, "front", &format!("{FRONT}#echo"), &[s("again")]).await;
    assert_eq!(out, [s("front:relay:worker:again")]);
    // The worker module's own instances were never involved.
    let out = call(
        &app,
        "worker",
        "membrane-test:chain/work@1.2.0#add",
        &[Val::U64(1), Val::U64(2)],
    )
    .await;
    assert_eq!(out, [Val::U64(3)]);
}

#[tokio::test]
async fn the_fused_importers_limits_govern_the_whole_composition() {
    // The worker's own timeout is 100ms, but inside the relay's composition the relay's
    // 1.5 s applies. The two are told apart at 1.4 s: a deadline is never early, and the
    // 100 ms one would need fourteen times its length on a busy machine to pass it.
    let app = fused_chain(Duration::from_millis(1500), Duration::from_millis(100)).await;
    let apart = Duration::from_millis(1400);
    let start = Instant::now();
    let e = app
        .call("relay", &format!("{RELAY}#spin"), &[])
        .await
        .unwrap_err();
    let took = start.elapsed();
    assert_eq!(e.kind(), ErrorKind::Timeout, "{}", membrane::chain(&e));
    assert_eq!(e.module(), Some("relay"));
    assert!(took >= apart, "{took:?}");
    assert!(took < HANG_GUARD, "{took:?}");
    // The worker module itself keeps its own limit.
    let start = Instant::now();
    let e = app
        .call("worker", "membrane-test:chain/work@1.2.0#spin", &[])
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Timeout);
    assert!(start.elapsed() < apart, "{:?}", start.elapsed());
}

#[tokio::test]
async fn unequal_grants_are_refused_with_every_other_problem() {
    let spec = AppSpec::new()
        .module("driver", driver(Placement::Fused).env("MODE", "fast"))
        .module(
            "provider",
            provider(Placement::Fused).network("127.0.0.1:9"),
        )
        .module(
            "other",
            ModuleSpec::from_file(guests::BENCH_PROVIDER).concurrency(0, 0),
        );
    let e = runtime().load_spec(spec).await.err().expect("refused");
    let problems = e.problems();
    assert_eq!(problems.len(), 2, "{}", membrane::chain(&e));
    let grants = problems
        .iter()
        .find(|p| p.key() == Some("modules.driver.placement"))
        .unwrap_or_else(|| panic!("no problem at modules.driver.placement: {e}"));
    assert_eq!(grants.kind(), ErrorKind::Manifest);
    assert_eq!(grants.module(), Some("driver"));
    assert!(
        problems
            .iter()
            .any(|p| p.key() == Some("modules.other.limits.instances"))
    );
    // Equal grants, or the provider isolated, load.
    let equal = AppSpec::new()
        .module("driver", driver(Placement::Fused).env("MODE", "fast"))
        .module("provider", provider(Placement::Fused).env("MODE", "fast"));
    runtime().load_spec(equal).await.unwrap();
    let apart = AppSpec::new()
        .module("driver", driver(Placement::Fused).env("MODE", "fast"))
        .module("provider", provider(Placement::Isolated));
    let app = runtime().load_spec(apart).await.unwrap();
    assert!(app.links().iter().all(|l| !l.fused));
}

#[tokio::test]
async fn a_live_upgrade_does_not_recompose() {
    let app = runtime().load_spec(pair(Placement::Fused)).await.unwrap();
    let e = app
        .upgrade(
            "driver",
            driver(Placement::Fused).timeout(Duration::from_secs(3)),
        )
        .await
        .expect_err("a fused importer is not upgraded live");
    assert_eq!(e.kind(), ErrorKind::Manifest, "{e}");
    assert_eq!(e.key(), Some("modules.driver.placement"));
    // Nor is a provider moved out of the composition.
    let e = app
        .upgrade("provider", provider(Placement::Isolated))
        .await
        .expect_err("a fused provider keeps its placement");
    assert_eq!(e.key(), Some("modules.provider.placement"));
    // A fused provider's other changes apply to its own instances.
    app.upgrade(
        "provider",
        provider(Placement::Fused).timeout(Duration::from_secs(3)),
    )
    .await
    .unwrap();
    let out = call(
        &app,
        "driver",
        &format!("{DRIVER}#loop-inc"),
        &[Val::U32(10)],
    )
    .await;
    assert_eq!(out, [Val::U64(10)]);
    assert!(app.links().iter().all(|l| l.fused));
}

fn fused_manifest(dir: &std::path::Path, provider_grants: &str) -> String {
    let text = format!(
        "[app]\nentry = \"driver\"\n\n\
         [modules.driver]\ncomponent = {:?}\nplacement = \"fused\"\n\
         links = {{ \"{API}\" = \"provider\", \"{RES}\" = \"provider\" }}\n\n\
         [modules.provider]\ncomponent = {:?}\nplacement = \"fused\"\n{provider_grants}",
        guests::BENCH_DRIVER,
        guests::BENCH_PROVIDER
    );
    write_manifest(dir, &text).to_str().unwrap().to_string()
}

#[test]
fn membrane_graph_draws_fused_modules_in_one_box() {
    let tmp = tempfile::tempdir().unwrap();
    let m = fused_manifest(tmp.path(), "");
    let o = membrane(&["graph", &m]);
    assert!(o.status.success(), "{}", stderr(&o));
    let dot = stdout(&o);
    assert!(dot.contains("subgraph cluster_fused_0 {"), "{dot}");
    assert!(dot.contains("placement fused"), "{dot}");
    let cluster = &dot[dot.find("subgraph cluster_fused_0").unwrap()..];
    let cluster = &cluster[..cluster.find("\n  }").unwrap()];
    assert!(cluster.contains("\"driver\" [label="), "{dot}");
    assert!(cluster.contains("\"provider\" [label="), "{dot}");
    assert!(
        dot.contains(
            "\"driver\" -> \"provider\" [label=\"membrane-bench:calls/api@0.1.0\", style=dashed];"
        ),
        "{dot}"
    );
    let o = membrane(&["graph", "--format", "mermaid", &m]);
    assert!(o.status.success(), "{}", stderr(&o));
    let mermaid = stdout(&o);
    assert!(mermaid.contains("subgraph fused_0["), "{mermaid}");
    assert!(mermaid.contains("m_driver -.->|"), "{mermaid}");
}

#[test]
fn membrane_check_refuses_unequal_grants() {
    let tmp = tempfile::tempdir().unwrap();
    let m = fused_manifest(tmp.path(), "");
    let o = membrane(&["check", &m]);
    assert!(o.status.success(), "{}", stderr(&o));
    let m = fused_manifest(
        tmp.path(),
        "[modules.provider.grants]\nenv = { MODE = \"fast\" }\n",
    );
    let o = membrane(&["check", &m]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert_clean_failure(&o, "placement");
}
