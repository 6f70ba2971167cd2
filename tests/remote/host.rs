//! The serving side of remote placement: a host app ([`AppSpec::host`]) and a caller app
//! of the same manifest in this test process, talking through a real nats-server; and the
//! `membrane host` command.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use async_nats::HeaderMap;
use futures_util::StreamExt;
use membrane::{App, AppSpec, ErrorKind, ModuleSpec, NatsSpec, Placement, Val};

use super::nats::{Nats, nats_server};
use crate::common::*;

const MATH: &str = "membrane-test:placement/math";
const CALC: &str = "membrane-test:placement/calc";

/// An app name no other test of this run uses (subjects stay apart even on one server).
pub(crate) fn app_name() -> String {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    format!(
        "t{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// calc (local) -> adder (remote), on the NATS server at `url`; `adder` gets what `f`
/// adds.
fn calc_spec(name: &str, url: &str, f: impl FnOnce(ModuleSpec) -> ModuleSpec) -> AppSpec {
    AppSpec::new()
        .name(name)
        .nats(NatsSpec::new([url]))
        .module(
            "calc",
            ModuleSpec::from_file(guests::CALC).link("membrane-test:placement/math", "adder"),
        )
        .module(
            "adder",
            f(ModuleSpec::from_file(guests::ADDER).placement(Placement::Remote)),
        )
}

async fn load(spec: AppSpec) -> App {
    runtime().load_spec(spec).await.expect("app loads")
}

fn u32s(vals: &[Val]) -> u32 {
    match vals {
        [Val::U32(n)] => *n,
        other => panic!("not one u32: {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn remote_calls_and_links_reach_the_host() {
    let Some(_) = nats_server() else { return };
    let nats = Nats::start();
    let name = app_name();
    let host = load(calc_spec(&name, &nats.url, |m| m).host(["adder"])).await;
    let serving = membrane::remote::RemoteHost::start(&host)
        .await
        .expect("serves");
    assert_eq!(serving.modules().collect::<Vec<_>>(), ["adder"]);
    assert_eq!(serving.app_name(), name);
    assert_eq!(
        Some(serving.host_id().to_string()),
        membrane::remote::remotes::host_id(&host)
    );
    let caller = load(calc_spec(&name, &nats.url, |m| m)).await;

    // A call of the remote module itself.
    let out = caller
        .call(
            "adder",
            &format!("{MATH}#add"),
            &[Val::U32(40), Val::U32(2)],
        )
        .await
        .unwrap();
    assert_eq!(u32s(&out), 42);
    // A link from a local module to the remote one.
    let out = caller
        .call("calc", &format!("{CALC}#add"), &[Val::U32(1), Val::U32(2)])
        .await
        .unwrap();
    assert_eq!(u32s(&out), 3);
    let out = caller
        .call("calc", &format!("{CALC}#loop-add"), &[Val::U32(50)])
        .await
        .unwrap();
    assert_eq!(out, vec![Val::U64((1..=50).sum())]);
    let bytes: Vec<Val> = (0..4096u32).map(|i| Val::U8(i as u8)).collect();
    let out = caller
        .call("calc", &format!("{CALC}#echo"), &[Val::List(bytes.clone())])
        .await
        .unwrap();
    assert_eq!(out, vec![Val::List(bytes)]);
    // The blocking path, from a thread outside any runtime.
    let c = caller.clone();
    let out = tokio::task::spawn_blocking(move || {
        c.call_blocking("calc", &format!("{CALC}#add"), &[Val::U32(5), Val::U32(6)])
    })
    .await
    .unwrap()
    .unwrap();
    assert_eq!(u32s(&out), 11);
    // A guest failure on the host arrives with its kind and module.
    let e = caller
        .call("calc", &format!("{CALC}#fail"), &[s("no")])
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Trap, "{e}");
    // The host ran the calls under its own supervision and metrics.
    let st = &host.status()["adder"];
    assert!(st.hosted, "{st:?}");
    assert!(st.calls >= 4, "{st:?}");
    assert_eq!(st.recent_failures, 1, "{st:?}");
    // Every answer came from this host.
    let answers = membrane::remote::remotes::answers(&caller, "adder").unwrap();
    assert_eq!(answers.keys().collect::<Vec<_>>(), [serving.host_id()]);

    // Shut down: no one serves `adder` any more.
    serving.shutdown().await;
    let t = Instant::now();
    let e = caller
        .call("adder", &format!("{MATH}#add"), &[Val::U32(1), Val::U32(1)])
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unavailable, "{e}");
    // Far below the call's 10 s deadline, far above the work (no responders).
    assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_host_is_unavailable_at_once() {
    let Some(_) = nats_server() else { return };
    let nats = Nats::start();
    let caller = load(calc_spec(&app_name(), &nats.url, |m| m)).await;
    for module in ["adder", "calc"] {
        let (export, args) = match module {
            "adder" => (format!("{MATH}#add"), [Val::U32(1), Val::U32(1)]),
            _ => (format!("{CALC}#add"), [Val::U32(1), Val::U32(1)]),
        };
        let t = Instant::now();
        let e = caller.call(module, &export, &args).await.unwrap_err();
        let text = membrane::chain(&e);
        assert_eq!(e.kind(), ErrorKind::Unavailable, "{module}: {text}");
        assert_eq!(e.module(), Some(module), "{text}");
        // Far below the call's 10 s deadline, far above the work (no responders).
        assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serving_needs_hosted_modules_and_nats() {
    let Some(_) = nats_server() else { return };
    let nats = Nats::start();
    // A caller hosts nothing.
    let caller = load(calc_spec(&app_name(), &nats.url, |m| m)).await;
    let e = membrane::remote::RemoteHost::start(&caller)
        .await
        .err()
        .expect("refused");
    assert_eq!(e.kind(), ErrorKind::Manifest, "{e}");
    // An app without remote modules has no connection to serve on.
    let local = app_of(ModuleSpec::from_file(guests::ADDER)).await;
    let e = membrane::remote::RemoteHost::start(&local)
        .await
        .err()
        .expect("refused");
    assert_eq!(e.kind(), ErrorKind::Manifest, "{e}");
    // Hosting a name that is not a remote module of the app is refused when it loads.
    for (module, kind) in [("nope", ErrorKind::NotFound), ("calc", ErrorKind::Manifest)] {
        let e = runtime()
            .load_spec(calc_spec(&app_name(), &nats.url, |m| m).host([module]))
            .await
            .err()
            .expect("refused");
        let found = e
            .problems()
            .iter()
            .chain(std::iter::once(&e))
            .any(|p| p.kind() == kind && p.module() == Some(module));
        assert!(found, "{module}: {e}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deadlines_cross_the_wire() {
    let Some(_) = nats_server() else { return };
    let nats = Nats::start();
    let name = app_name();
    let spec = |calc_timeout: Duration| {
        let mut spec = calc_spec(&name, &nats.url, |m| m.timeout(Duration::from_millis(400)));
        spec = spec.module(
            "calc",
            ModuleSpec::from_file(guests::CALC)
                .link("membrane-test:placement/math", "adder")
                .timeout(calc_timeout),
        );
        spec
    };
    let host = load(spec(Duration::from_secs(10)).host(["adder"])).await;
    let serving = membrane::remote::RemoteHost::start(&host).await.unwrap();
    let caller = load(spec(Duration::from_millis(200))).await;
    // The importer's 200 ms bound the provider's call on the host.
    let t = Instant::now();
    let e = caller
        .call("calc", &format!("{CALC}#nap"), &[Val::U64(20_000)])
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Timeout, "{e}");
    // Before the nap (and the host's own 10 s) would end: the 200 ms passed along.
    assert!(t.elapsed() < Duration::from_secs(10), "{:?}", t.elapsed());
    // The module's own 400 ms, applied by the host.
    let t = Instant::now();
    let e = caller
        .call("adder", &format!("{MATH}#nap"), &[Val::U64(20_000)])
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Timeout, "{e}");
    assert_eq!(e.module(), Some("adder"), "{e}");
    // Not before the 400 ms, and long before the nap would end.
    let took = t.elapsed();
    assert!(
        took >= Duration::from_millis(350) && took < Duration::from_secs(20),
        "{took:?}"
    );
    // A nap within the budget comes back.
    let out = caller
        .call("adder", &format!("{MATH}#nap"), &[Val::U64(20)])
        .await
        .unwrap();
    assert_eq!(out, vec![Val::U64(20)]);
    serving.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_with_another_manifest_entry_refuses_calls() {
    let Some(_) = nats_server() else { return };
    let nats = Nats::start();
    let name = app_name();
    // The host's entry of `adder` has another memory limit than the caller's.
    let host = load(calc_spec(&name, &nats.url, |m| m.memory(32 << 20)).host(["adder"])).await;
    let serving = membrane::remote::RemoteHost::start(&host).await.unwrap();
    let caller = load(calc_spec(&name, &nats.url, |m| m)).await;
    let e = caller
        .call("adder", &format!("{MATH}#add"), &[Val::U32(1), Val::U32(2)])
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Link, "{e}");
    assert_eq!(e.module(), Some("adder"), "{e}");
    assert_eq!(e.key(), Some("modules.adder"), "{e}");
    // Through a link: the importer's call fails with the same kind and cause.
    let e = caller
        .call("calc", &format!("{CALC}#add"), &[Val::U32(1), Val::U32(2)])
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Link, "{e}");
    // The host counted none of it against the module.
    assert_eq!(host.status()["adder"].recent_failures, 0);
    serving.shutdown().await;
}

/// A raw NATS client of the test, and the subjects of app `name`'s module `module`.
struct Raw {
    client: async_nats::Client,
    subject: String,
}

impl Raw {
    async fn connect(url: &str, name: &str, module: &str) -> Raw {
        Raw {
            client: async_nats::connect(url).await.expect("connects"),
            subject: format!("membrane.{name}.{module}"),
        }
    }

    /// Sends a request; the answer's headers and, for an error, its JSON.
    async fn ask(
        &self,
        subject: &str,
        headers: &[(&str, &str)],
        body: Vec<u8>,
    ) -> (HeaderMap, Option<serde_json::Value>, Vec<u8>) {
        let mut h = HeaderMap::new();
        for (k, v) in headers {
            h.insert(*k, *v);
        }
        let msg = tokio::time::timeout(
            Duration::from_secs(5),
            self.client
                .request_with_headers(subject.to_string(), h, body.into()),
        )
        .await
        .expect("answered in time")
        .expect("answered");
        let headers = msg.headers.clone().expect("answers have headers");
        let error = headers
            .get("Membrane-Error")
            .map(|_| serde_json::from_slice(&msg.payload).expect("an error is JSON"));
        (headers, error, msg.payload.to_vec())
    }
}

/// A well-formed session id (128 bits in hex) that no host gave out.
const UNKNOWN_SESSION: &str = "0123456789abcdef0123456789abcdef";

/// A bad request: what it is, its headers, its body, and the kind of error it gets.
type Case<'a> = (&'a str, Vec<(&'a str, &'a str)>, Vec<u8>, ErrorKind);

fn kind_of(error: &Option<serde_json::Value>) -> String {
    error
        .as_ref()
        .and_then(|e| e["kind"].as_str())
        .unwrap_or("no error")
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_are_answered_and_the_host_keeps_serving() {
    let Some(_) = nats_server() else { return };
    let nats = Nats::start();
    let name = app_name();
    let host = load(calc_spec(&name, &nats.url, |m| m).host(["adder"])).await;
    let serving = membrane::remote::RemoteHost::start(&host).await.unwrap();
    let caller = load(calc_spec(&name, &nats.url, |m| m)).await;
    let raw = Raw::connect(&nats.url, &name, "adder").await;
    // Learn the caller's hash of `adder` by listening in on one of its calls (a plain
    // subscriber gets a copy of every request; the host's queue group gets one too).
    let mut spy = raw.client.subscribe(raw.subject.clone()).await.unwrap();
    raw.client.flush().await.unwrap();
    // The server may take the subscription a moment after the flush: call until the spy
    // has seen one.
    let mut seen = None;
    for _ in 0..50 {
        caller
            .call("adder", &format!("{MATH}#add"), &[Val::U32(1), Val::U32(1)])
            .await
            .unwrap();
        if let Ok(m) = tokio::time::timeout(Duration::from_millis(100), spy.next()).await {
            seen = m;
            break;
        }
    }
    let seen = seen.expect("the spy saw a call");
    let hash = seen.headers.as_ref().unwrap().get("Membrane-Hash").unwrap();
    let hash = hash.as_str().to_string();
    drop(spy);
    let add = format!("{MATH}#add");
    let sub = raw.subject.clone();
    let ok_headers = [
        ("Membrane-Func", add.as_str()),
        ("Membrane-Hash", hash.as_str()),
        ("Membrane-Deadline-Us", "2000000"),
    ];

    // A well-formed request gets the results in the value encoding (u32: LEB128).
    let (h, error, body) = raw.ask(&sub, &ok_headers, vec![40, 2]).await;
    assert!(error.is_none(), "{error:?}");
    assert_eq!(body, [42]);
    assert_eq!(h.get("Membrane-Host").unwrap().as_str(), serving.host_id());

    let cases: Vec<Case> = vec![
        ("no headers", vec![], vec![], ErrorKind::InvalidArgs),
        (
            "garbage arguments",
            ok_headers.to_vec(),
            vec![0xff, 0xff, 0xff, 0xff, 0xff, 0xff],
            ErrorKind::InvalidArgs,
        ),
        (
            "bytes after the arguments",
            ok_headers.to_vec(),
            vec![1, 2, 3],
            ErrorKind::InvalidArgs,
        ),
        (
            "an unknown function",
            vec![
                ("Membrane-Func", "membrane-test:placement/math#nope"),
                ("Membrane-Hash", hash.as_str()),
            ],
            vec![],
            ErrorKind::NotFound,
        ),
        (
            "a malformed function name",
            vec![("Membrane-Func", "#:/@"), ("Membrane-Hash", hash.as_str())],
            vec![],
            ErrorKind::InvalidArgs,
        ),
        (
            "no hash",
            vec![("Membrane-Func", add.as_str())],
            vec![1, 1],
            ErrorKind::Link,
        ),
        (
            "a wrong hash",
            vec![("Membrane-Func", add.as_str()), ("Membrane-Hash", "0123")],
            vec![1, 1],
            ErrorKind::Link,
        ),
        (
            "a session id that is not one (128 bits in hex)",
            vec![
                ("Membrane-Func", add.as_str()),
                ("Membrane-Hash", hash.as_str()),
                ("Membrane-Session", "x"),
            ],
            vec![1, 1],
            ErrorKind::InvalidArgs,
        ),
        (
            "a session this host never opened",
            vec![
                ("Membrane-Func", add.as_str()),
                ("Membrane-Hash", hash.as_str()),
                ("Membrane-Session", UNKNOWN_SESSION),
            ],
            vec![1, 1],
            ErrorKind::Crashed,
        ),
        (
            "a drop in a session this host never opened",
            vec![
                ("Membrane-Drop", "0"),
                ("Membrane-Hash", hash.as_str()),
                ("Membrane-Session", UNKNOWN_SESSION),
            ],
            vec![],
            ErrorKind::Crashed,
        ),
        (
            "a bad deadline (the module's timeout applies)",
            vec![
                ("Membrane-Func", add.as_str()),
                ("Membrane-Hash", hash.as_str()),
                ("Membrane-Deadline-Us", "soon"),
            ],
            vec![0xff],
            ErrorKind::InvalidArgs,
        ),
        (
            "a deadline passed already",
            vec![
                ("Membrane-Func", add.as_str()),
                ("Membrane-Hash", hash.as_str()),
                ("Membrane-Deadline-Us", "0"),
            ],
            vec![1, 1],
            ErrorKind::Timeout,
        ),
    ];
    for (what, headers, body, kind) in &cases {
        let (h, error, _) = raw.ask(&sub, headers, body.clone()).await;
        assert_eq!(kind_of(&error), kind.as_str(), "{what}: {error:?}");
        assert_eq!(
            h.get("Membrane-Host").map(|v| v.as_str()),
            Some(serving.host_id()),
            "{what}"
        );
        let error = error.unwrap();
        assert_eq!(error["module"].as_str(), Some("adder"), "{what}: {error}");
    }
    // The same on the host's own subject (where sessions live).
    let own = format!("{sub}.host.{}", serving.host_id());
    let (_, error, _) = raw.ask(&own, &cases[1].1, cases[1].2.clone()).await;
    assert_eq!(kind_of(&error), "invalid-args", "{error:?}");
    // Messages without a reply subject are ignored (a close of an unknown session too).
    for headers in [vec![], ok_headers.to_vec(), vec![("Membrane-Close", "1")]] {
        let mut h = HeaderMap::new();
        for (k, v) in headers {
            h.insert(k, v);
        }
        raw.client
            .publish_with_headers(sub.clone(), h, vec![0xff; 64].into())
            .await
            .unwrap();
    }
    raw.client.flush().await.unwrap();
    // The host still serves, and counted none of the bad requests against the module.
    let out = caller
        .call(
            "calc",
            &format!("{CALC}#add"),
            &[Val::U32(20), Val::U32(22)],
        )
        .await
        .unwrap();
    assert_eq!(u32s(&out), 42);
    let st = &host.status()["adder"];
    assert_eq!(st.recent_failures, 1, "only the passed deadline: {st:?}");
    serving.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_host_answers_overloaded_at_once() {
    let Some(_) = nats_server() else { return };
    let nats = Nats::start();
    let name = app_name();
    // One instance, no queue: one call at a time on the host.
    let adder = |m: ModuleSpec| m.concurrency(1, 0).timeout(Duration::from_secs(30));
    let host = load(calc_spec(&name, &nats.url, adder).host(["adder"])).await;
    let serving = membrane::remote::RemoteHost::start(&host).await.unwrap();
    let caller = load(calc_spec(&name, &nats.url, adder)).await;
    let c = caller.clone();
    let napping = tokio::spawn(async move {
        c.call("adder", &format!("{MATH}#nap"), &[Val::U64(5_000)])
            .await
    });
    eventually("the nap runs on the host", || {
        host.status()["adder"].busy == 1
    })
    .await;
    let e = caller
        .call("adder", &format!("{MATH}#add"), &[Val::U32(1), Val::U32(1)])
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Overloaded, "{e}");
    // At once: the answer came while the nap still ran, not after it (seconds of margin).
    assert!(
        !napping.is_finished(),
        "the full host answered only after the nap"
    );
    assert_eq!(napping.await.unwrap().unwrap(), vec![Val::U64(5_000)]);
    // And serves again once the call is done.
    let out = caller
        .call("adder", &format!("{MATH}#add"), &[Val::U32(1), Val::U32(1)])
        .await
        .unwrap();
    assert_eq!(u32s(&out), 2);
    serving.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_lets_calls_in_flight_finish() {
    let Some(_) = nats_server() else { return };
    let nats = Nats::start();
    let name = app_name();
    let host = load(calc_spec(&name, &nats.url, |m| m).host(["adder"])).await;
    let serving = membrane::remote::RemoteHost::start(&host).await.unwrap();
    let caller = load(calc_spec(&name, &nats.url, |m| m)).await;
    let c = caller.clone();
    let napping = tokio::spawn(async move {
        c.call("adder", &format!("{MATH}#nap"), &[Val::U64(600)])
            .await
    });
    eventually("the nap runs on the host", || {
        host.status()["adder"].busy == 1
    })
    .await;
    serving.shutdown().await;
    // Shutting down waited for the call: the host had finished it when it returned.
    let st = &host.status()["adder"];
    assert_eq!((st.busy, st.calls), (0, 1), "{st:?}");
    assert_eq!(napping.await.unwrap().unwrap(), vec![Val::U64(600)]);
}

/// A manifest of calc -> adder (remote) for app `name` on `url`, in `dir`, with `extra`
/// at the end of [app].
fn manifest(dir: &Path, name: &str, url: &str, extra: &str) -> std::path::PathBuf {
    write_manifest(
        dir,
        &format!(
            "[app]\nname = {name:?}\nnats = {url:?}\n{extra}\n\
             [modules.calc]\ncomponent = {:?}\nlinks = {{ \"membrane-test:placement/math\" = \"adder\" }}\n\
             [modules.adder]\ncomponent = {:?}\nplacement = \"remote\"\n",
            guests::CALC,
            guests::ADDER
        ),
    )
}

#[test]
fn membrane_host_serves_membrane_call() {
    let Some(_) = nats_server() else { return };
    let nats = Nats::start();
    let dir = tempfile::tempdir().unwrap();
    let name = app_name();
    // The host is told the server on its command line; the manifest's is not reachable.
    let m = manifest(dir.path(), &name, "nats://127.0.0.1:1", "");
    let path = m.to_str().unwrap();
    let mut host = super::host_proc(&["host", path, "--modules", "adder", "--nats", &nats.url]);
    let caller_manifest = tempfile::tempdir().unwrap();
    let cm = manifest(caller_manifest.path(), &name, &nats.url, "");
    let cm = cm.to_str().unwrap();
    let o = membrane(&["call", cm, "calc", &format!("{CALC}#add"), "40", "2"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stdout(&o).trim(), "42");
    let o = membrane(&["call", cm, "adder", &format!("{MATH}#add"), "1", "2"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stdout(&o).trim(), "3");
    let status = host.stop();
    assert!(status.success(), "{status:?}");
    // Stopped: no one serves `adder`.
    let o = membrane(&["call", cm, "adder", &format!("{MATH}#add"), "1", "2"]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(stderr(&o).contains("[unavailable]"), "{}", stderr(&o));
}

#[test]
fn membrane_host_refuses_bad_command_lines() {
    let Some(_) = nats_server() else { return };
    let nats = Nats::start();
    let dir = tempfile::tempdir().unwrap();
    let m = manifest(dir.path(), &app_name(), &nats.url, "");
    let path = m.to_str().unwrap();
    let cases: BTreeMap<&str, (Vec<&str>, &str)> = BTreeMap::from([
        ("unknown module", (vec!["--modules", "nope"], "nope")),
        ("local module", (vec!["--modules", "calc"], "placement")),
        ("no module", (vec!["--modules", ""], "--modules")),
        (
            "unreachable NATS",
            (
                vec!["--modules", "adder", "--nats", "nats://127.0.0.1:1"],
                "cannot connect",
            ),
        ),
    ]);
    for (what, (args, says)) in cases {
        let mut all = vec!["host", path];
        all.extend(args);
        let o = membrane(&all);
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(1), "{what}: {err}");
        assert!(err.contains(says), "{what}: {err}");
        assert!(!err.contains("panicked"), "{what}: {err}");
    }
    // Without [app] name and nats.
    let bare = write_manifest(
        dir.path(),
        &format!(
            "[modules.adder]\ncomponent = {:?}\nplacement = \"remote\"\n",
            guests::ADDER
        ),
    );
    let o = membrane(&["host", bare.to_str().unwrap(), "--modules", "adder"]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("app.name") || stderr(&o).contains("[app] name"),
        "{}",
        stderr(&o)
    );
    assert!(!stderr(&o).contains("panicked"), "{}", stderr(&o));
}

#[test]
fn membrane_serve_also_hosts() {
    let Some(_) = nats_server() else { return };
    let nats = Nats::start();
    let dir = tempfile::tempdir().unwrap();
    let name = app_name();
    let m = write_manifest(
        dir.path(),
        &format!(
            "[app]\nname = {name:?}\nnats = {:?}\n[app.http]\nroutes = {{ \"/\" = \"web\" }}\n\
             [modules.web]\ncomponent = {:?}\n\
             [modules.adder]\ncomponent = {:?}\nplacement = \"remote\"\n",
            nats.url,
            guests::HTTP_PROBE,
            guests::ADDER
        ),
    );
    let path = m.to_str().unwrap();
    let mut server =
        super::host_proc(&["serve", path, "--listen", "127.0.0.1:0", "--host", "adder"]);
    server.wait_for("serving on http://");
    let o = membrane(&["call", path, "adder", &format!("{MATH}#add"), "2", "3"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stdout(&o).trim(), "5");
    let status = server.stop();
    assert!(status.success(), "{status:?}");
}
