//! Resources across a link, once for every placement of the provider.
//!
//! `relay` (isolated) imports `membrane-test:chain/work` from `worker`, an interface with a
//! resource (a counter). One scenario — created, used and dropped; borrowed, then handed
//! over; leaked by the importer and alive in the provider's session until the importer's
//! instance ends; many handles in one call; the blocking call path — runs with `worker`
//! isolated, fused, in a process and on a remote host over NATS.

use membrane::{App, AppSpec, ErrorKind, ModuleSpec, NatsSpec, Placement, Val};

use crate::common::*;
use crate::remote::app_name;
use crate::remote::nats::{Nats, nats_server};

const RELAY: &str = "membrane-test:chain/relay";
const WORK: &str = "membrane-test:chain/work@1.2.0";

/// `relay` linked to `worker`, placed at `placement`.
fn spec(placement: Placement) -> AppSpec {
    AppSpec::new()
        .module(
            "relay",
            // Many crossings in one call, each a round trip for a worker or a remote
            // provider: not a deadline's subject here, so far above the work.
            ModuleSpec::from_file(guests::RELAY)
                .link(WORK, "worker")
                .timeout(HANG_GUARD),
        )
        .module(
            "worker",
            ModuleSpec::from_file(guests::WORKER).placement(placement),
        )
}

/// `relay#f(args)`, which must succeed: its results.
async fn relay(app: &App, f: &str, args: &[Val]) -> Vec<Val> {
    let out = app.call("relay", &format!("{RELAY}#{f}"), args).await;
    out.unwrap_or_else(|e| panic!("relay#{f}: {}", membrane::chain(&e)))
}

/// The counters the provider's instance of relay's session keeps alive.
async fn live(app: &App) -> Val {
    relay(app, "live-counters", &[]).await[0].clone()
}

/// The scenario. `many` handles cross in one call. `host`, when the provider's instances
/// are counted in another app (a remote host), shows the instance a session holds.
async fn crossing(app: &App, many: u32, host: Option<&App>) {
    // Created, used and dropped through the link.
    assert_eq!(
        relay(app, "counters", &[Val::U32(100)]).await[0],
        Val::U64((1..=100).sum())
    );
    assert_eq!(live(app).await, Val::U64(0));
    // Borrowed, then handed over.
    assert_eq!(
        relay(app, "hand-over", &[Val::U64(5)]).await[0],
        Val::Tuple(vec![Val::U64(6), Val::U64(6)])
    );
    assert_eq!(live(app).await, Val::U64(0));
    // Leaked by the importer: alive in the provider's session ...
    relay(app, "leak-counter", &[Val::U64(1)]).await;
    relay(app, "leak-counter", &[Val::U64(2)]).await;
    assert_eq!(live(app).await, Val::U64(2));
    // ... which holds one of the provider's instances ...
    if let Some(host) = host {
        assert_eq!(host.status()["worker"].busy, 1);
    }
    // ... until the importer's instance ends: a failure discards relay and its session.
    let e = app
        .call("relay", &format!("{RELAY}#fail"), &[s("end")])
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Trap, "{}", membrane::chain(&e));
    assert_eq!(live(app).await, Val::U64(0));
    // The ended session gave its instance back (the new relay's session holds one).
    if let Some(host) = host {
        eventually("the ended session's instance is back", || {
            host.status()["worker"].busy == 1
        })
        .await;
    }
    // Many handles in one call.
    assert_eq!(
        relay(app, "counters", &[Val::U32(many)]).await[0],
        Val::U64((1..=u64::from(many)).sum())
    );
    // The blocking path crosses the same way.
    let blocking = {
        let app = app.clone();
        tokio::task::spawn_blocking(move || {
            app.call_blocking("relay", &format!("{RELAY}#counters"), &[Val::U32(10)])
        })
    };
    let out = blocking.await.unwrap().unwrap();
    assert_eq!(out[0], Val::U64((1..=10).sum()));
    assert_eq!(live(app).await, Val::U64(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn isolated() {
    let app = runtime()
        .load_spec(spec(Placement::Isolated))
        .await
        .unwrap();
    crossing(&app, 10_000, None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fused() {
    let app = runtime().load_spec(spec(Placement::Fused)).await.unwrap();
    crossing(&app, 10_000, None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn process() {
    let app = worker_runtime()
        .load_spec(spec(Placement::Process))
        .await
        .unwrap();
    // Every resource operation is a round trip to the worker: fewer handles in one call.
    crossing(&app, 1_000, None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn remote() {
    let Some(_) = nats_server() else { return };
    let nats = Nats::start();
    let spec = spec(Placement::Remote)
        .name(app_name())
        .nats(NatsSpec::new([nats.url.as_str()]));
    let host = runtime()
        .load_spec(spec.clone().host(["worker"]))
        .await
        .unwrap();
    let serving = membrane::remote::RemoteHost::start(&host).await.unwrap();
    let caller = runtime().load_spec(spec).await.unwrap();
    // Every resource operation is a round trip over NATS: fewer handles in one call.
    crossing(&caller, 1_000, Some(&host)).await;
    // The host goes away: the session's next call fails clearly.
    serving.shutdown().await;
    let e = caller
        .call("relay", &format!("{RELAY}#live-counters"), &[])
        .await
        .unwrap_err();
    let text = membrane::chain(&e);
    assert_eq!(e.kind(), ErrorKind::Crashed, "{text}");
    assert_eq!(e.module(), Some("relay"), "{text}");
}
