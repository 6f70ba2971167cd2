//! WASI 0.3 modules with `placement = "remote"`: served on a host's own 0.3 executor, called
//! as values over NATS by 0.3 and 0.2 importers; a link passing a stream is refused at load.

use membrane::{AppSpec, ErrorKind, ModuleSpec, NatsSpec, Placement, Val};

use super::app_name;
use super::nats::{Nats, nats_server};
use crate::common::*;

const PLAIN: &str = "membrane:p3lib/plain-calc";

/// calc (remote, WASI 0.3) <- user (0.3 importer) and p2user (0.2 importer).
fn spec(name: &str, url: &str) -> AppSpec {
    AppSpec::new()
        .name(name)
        .nats(NatsSpec::new([url]))
        .module(
            "calc",
            ModuleSpec::from_file(guests::P3_PLAIN_CALC).placement(Placement::Remote),
        )
        .module(
            "user",
            ModuleSpec::from_file(guests::P3_PLAIN_USER).link(PLAIN, "calc"),
        )
        .module(
            "p2user",
            ModuleSpec::from_file(guests::P2_CALC_USER).link(PLAIN, "calc"),
        )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_p3_module_is_served_by_a_remote_host_to_p3_and_p2_importers() {
    let Some(_) = nats_server() else { return };
    let nats = Nats::start();
    let name = app_name();
    let host = runtime()
        .load_spec(spec(&name, &nats.url).host(["calc"]))
        .await
        .unwrap_or_else(|e| panic!("{}", membrane::chain(&e)));
    let serving = membrane::remote::RemoteHost::start(&host)
        .await
        .expect("serves");
    let caller = runtime()
        .load_spec(spec(&name, &nats.url))
        .await
        .unwrap_or_else(|e| panic!("{}", membrane::chain(&e)));

    // The remote 0.3 module itself.
    let out = caller
        .call("calc", &format!("{PLAIN}#upper"), &[s("far")])
        .await
        .unwrap();
    assert_eq!(out, vec![s("FAR")]);
    // A 0.3 importer: 16 calls at once through one importer instance, each two remote calls.
    let add = "membrane:p3lib/relay-plain@0.1.0#add-twice";
    let args: Vec<_> = (0..16u32).map(|i| [Val::U32(i), Val::U32(1)]).collect();
    let calls = args.iter().map(|a| caller.call("user", add, a));
    for (i, out) in futures_util::future::join_all(calls)
        .await
        .into_iter()
        .enumerate()
    {
        assert_eq!(out.unwrap(), vec![Val::U32(i as u32 + 2)]);
    }
    // A 0.2 importer.
    let twice = "membrane:p3lib/plain-user@0.1.0#add-twice";
    let out = caller
        .call("p2user", twice, &[Val::U32(2), Val::U32(3)])
        .await
        .unwrap();
    assert_eq!(out, vec![Val::U32(8)]);

    // The host ran every one of them on its own 0.3 executor.
    let st = &host.status()["calc"];
    assert!(st.hosted, "{st:?}");
    assert_eq!(st.calls, 1 + 32 + 2, "{st:?}");
    serving.shutdown().await;
    // With the host gone the caller gets a typed error, not a hang.
    let e = caller
        .call("calc", &format!("{PLAIN}#add"), &[Val::U32(1), Val::U32(1)])
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unavailable, "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_to_a_remote_p3_module_is_refused_at_load() {
    let spec = AppSpec::new()
        .name(app_name())
        .nats(NatsSpec::new(["nats://127.0.0.1:4222"]))
        .module(
            "lib",
            ModuleSpec::from_file(guests::P3_LIB).placement(Placement::Remote),
        )
        .module(
            "relay",
            ModuleSpec::from_file(guests::P3_RELAY).link("membrane:p3lib/calc", "lib"),
        );
    // Loaded without connecting to NATS, as `membrane check` does.
    let mut config = config();
    config.connect_nats = false;
    let rt = membrane::Runtime::new(config).unwrap();
    let Err(e) = rt.load_spec(spec).await else {
        panic!("a stream link to a remote module loaded");
    };
    let refused: Vec<_> = std::iter::once(&e)
        .chain(e.problems())
        .filter(|p| p.key() == Some("modules.lib.placement"))
        .collect();
    // Each function that takes or returns a stream or a future; the others pass values.
    let mut exports: Vec<_> = refused.iter().filter_map(|p| p.export()).collect();
    exports.sort();
    let calc = "membrane:p3lib/calc@0.1.0";
    let passing = ["count-bytes", "later", "repeat", "tick", "upper-later"];
    assert_eq!(exports, passing.map(|f| format!("{calc}#{f}")), "{e:?}");
    assert!(
        refused.iter().all(|p| p.kind() == ErrorKind::Link
            && p.module() == Some("lib")
            && p.to_string().contains("cannot cross NATS")),
        "{e:?}"
    );
}
