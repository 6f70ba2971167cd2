//! A caller facing a hostile host: a raw NATS client subscribed on a remote module's
//! subject (anyone who may subscribe there can answer its calls) answers with bodies too
//! large, malformed or of the wrong types, errors with huge messages and cause chains, and
//! sessions it never opened properly. Each call fails with a typed error, the caller goes
//! on, and the next call to a good host works.

use std::time::Duration;

use async_nats::{HeaderMap, Message};
use futures_util::StreamExt;
use futures_util::stream::{BoxStream, select};
use membrane::{App, AppSpec, ErrorKind, Val};

use super::host::app_name;
use super::nats::{Nats, nats_server};
use super::sessions::{relay_spec, settled};
use crate::common::*;

const RELAY: &str = "membrane-test:chain/relay";
const WORK: &str = "membrane-test:chain/work@1.2.0";

/// The caller's `hostcall` limit of `worker`: the largest answer it takes.
const HOSTCALL: u64 = 256 << 10;

/// A bound on waits for what surely comes: only a broken test waits this long.
const GUARD: Duration = Duration::from_secs(30);

/// The app of these tests: relay -> worker (remote), `worker`'s answers bounded by
/// [`HOSTCALL`] and its calls by a short timeout (a hang guard: the fake always answers).
fn spec(name: &str, url: &str) -> AppSpec {
    let spec = relay_spec(name, url);
    let worker = spec.modules()["worker"]
        .clone()
        .hostcall(HOSTCALL)
        .timeout(Duration::from_secs(20));
    spec.module("worker", worker)
}

/// A fake host of `worker`: it takes the module's calls (in its queue group) and the
/// session calls of host `fake`, and answers each as the test says.
struct Fake {
    client: async_nats::Client,
    requests: BoxStream<'static, Message>,
}

impl Fake {
    async fn start(url: &str, name: &str) -> Fake {
        let client = async_nats::connect(url).await.unwrap();
        let queue = format!("membrane.{name}.worker");
        let shared = client
            .queue_subscribe(queue.clone(), queue.clone())
            .await
            .unwrap();
        let own = client
            .subscribe(format!("{queue}.host.fake"))
            .await
            .unwrap();
        settled(&client).await;
        Fake {
            client,
            requests: select(shared, own).boxed(),
        }
    }

    /// The next request that waits for an answer (ends of sessions do not).
    async fn next(&mut self) -> Message {
        loop {
            let msg = tokio::time::timeout(GUARD, self.requests.next())
                .await
                .expect("a request comes")
                .expect("the subscriptions live");
            if msg.reply.is_some() {
                return msg;
            }
        }
    }

    /// Answers the next request with `headers` and `body`; returns the request.
    async fn answer(&mut self, headers: &[(&str, &str)], body: Vec<u8>) -> Message {
        let req = self.next().await;
        let mut h = HeaderMap::new();
        for (k, v) in headers {
            h.insert(*k, *v);
        }
        self.client
            .publish_with_headers(req.reply.clone().unwrap(), h, body.into())
            .await
            .unwrap();
        req
    }
}

/// Calls `module`'s `func` with `args` on its own task while `fake` answers with `headers`
/// and `body`; the call's outcome and the request the fake got.
async fn exchange(
    app: &App,
    fake: &mut Fake,
    (module, func, args): (&str, String, Vec<Val>),
    headers: &[(&str, &str)],
    body: Vec<u8>,
) -> (membrane::Result<Vec<Val>>, Message) {
    let call = tokio::spawn({
        let (app, module) = (app.clone(), module.to_string());
        async move { app.call(&module, &func, &args).await }
    });
    let req = fake.answer(headers, body).await;
    let out = tokio::time::timeout(GUARD, call)
        .await
        .expect("the call ends")
        .expect("the call does not panic");
    (out, req)
}

/// An error message as a host sends it.
fn error(kind: &str, message: &str, causes: usize) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({
        "kind": kind,
        "message": message,
        "module": "worker",
        "export": null,
        "key": null,
        "upstream": false,
        "exit": null,
        "causes": vec![""; causes],
    }))
    .unwrap()
}

const ERR: (&str, &str) = ("Membrane-Error", "1");
const HOST: (&str, &str) = ("Membrane-Host", "fake");
const ID: &str = "0123456789abcdef0123456789abcdef";
const KEY: &str = "fedcba9876543210fedcba9876543210";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_answers_are_typed_errors_and_the_caller_goes_on() {
    let Some(_) = nats_server() else { return };
    let nats = Nats::start();
    let name = app_name();
    let app = runtime().load_spec(spec(&name, &nats.url)).await.unwrap();
    let mut fake = Fake::start(&nats.url, &name).await;
    let echo = || ("worker", format!("{WORK}#echo"), vec![s("x")]);
    let add = || {
        (
            "worker",
            format!("{WORK}#add"),
            vec![Val::U64(1), Val::U64(2)],
        )
    };
    let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    type Case = (
        &'static str,
        (&'static str, String, Vec<Val>),
        Vec<(&'static str, &'static str)>,
        Vec<u8>,
        ErrorKind,
    );
    let cases: Vec<Case> = vec![
        (
            "results larger than the hostcall limit",
            echo(),
            vec![HOST],
            vec![0; HOSTCALL as usize + 1],
            ErrorKind::HostcallLimit,
        ),
        (
            "a string longer than the answer",
            echo(),
            vec![HOST],
            vec![0xff, 0xff, 0xff, 0xff, 0x0f, b'x'],
            ErrorKind::Crashed,
        ),
        (
            "garbage",
            echo(),
            vec![HOST],
            vec![0xff; 200 << 10],
            ErrorKind::Crashed,
        ),
        (
            "a string where a u64 is due",
            add(),
            vec![HOST],
            vec![5, b'h', b'e', b'l', b'l', b'o'],
            ErrorKind::Crashed,
        ),
        (
            "nothing where a u64 is due",
            add(),
            vec![HOST],
            vec![],
            ErrorKind::Crashed,
        ),
        (
            "an error that is not JSON",
            echo(),
            vec![HOST, ERR],
            vec![0xff, 0xfe, 0x00],
            ErrorKind::Crashed,
        ),
        (
            "an error nested deeper than any parser goes",
            echo(),
            vec![HOST, ERR],
            deep.into_bytes(),
            ErrorKind::Crashed,
        ),
        (
            "an error of an unknown kind",
            echo(),
            vec![HOST, ERR],
            error("frobnicated", "?", 0),
            ErrorKind::Crashed,
        ),
        (
            "results from a host whose id is no subject token",
            echo(),
            vec![("Membrane-Host", "a.b >")],
            vec![1, b'y'],
            ErrorKind::Crashed,
        ),
    ];
    for (what, call, headers, body, kind) in cases {
        let (out, _) = exchange(&app, &mut fake, call, &headers, body).await;
        // The last one is well formed: a made-up host id is only not counted.
        if what.starts_with("results from a host") {
            assert_eq!(out.expect(what), [s("y")], "{what}");
            continue;
        }
        let e = out.expect_err(what);
        assert_eq!(e.kind(), kind, "{what}: {}", membrane::chain(&e));
        assert_eq!(
            e.module(),
            Some("worker"),
            "{what}: {}",
            membrane::chain(&e)
        );
    }
    assert_eq!(
        app.status()["worker"].remote_hosts,
        Some(1),
        "only `fake` counts"
    );

    // An error with a quarter of a million causes and a long message full of terminal
    // escapes: read within bounds, and printed safely.
    let message = "\u{1b}[31mred".repeat(12_000);
    let (out, _) = exchange(
        &app,
        &mut fake,
        echo(),
        &[HOST, ERR],
        error("denied", &message, 250_000),
    )
    .await;
    let e = out.expect_err("an error");
    assert_eq!(e.kind(), ErrorKind::Denied);
    assert!(e.message().len() < 17 << 10, "{}", e.message().len());
    let mut causes = 0;
    let mut cur = std::error::Error::source(&e);
    while let Some(c) = cur {
        causes += 1;
        cur = c.source();
    }
    assert_eq!(causes, 32);
    let text = membrane::chain(&e);
    assert!(text.len() < 128 << 10, "{}", text.len());
    assert!(!text.contains('\u{1b}'), "escapes are escaped");
    assert!(text.contains("more causes cut"), "the cut is visible");

    // Sessions (relay's calls of worker open one): the answer that opens one must name
    // it properly, and the session's later calls carry the id and key it named.
    let relay_add = || {
        (
            "relay",
            format!("{RELAY}#add"),
            vec![Val::U64(1), Val::U64(2)],
        )
    };
    let long_host = "h".repeat(1000);
    let bad_openings: Vec<(&str, Vec<(&str, &str)>)> = vec![
        ("no session", vec![HOST]),
        (
            "a counted id and no key",
            vec![HOST, ("Membrane-Session", "1")],
        ),
        ("no key", vec![HOST, ("Membrane-Session", ID)]),
        (
            "a key that is not one",
            vec![
                HOST,
                ("Membrane-Session", ID),
                ("Membrane-Session-Key", "k"),
            ],
        ),
        (
            "no host",
            vec![("Membrane-Session", ID), ("Membrane-Session-Key", KEY)],
        ),
        (
            "a host id that is no subject token",
            vec![
                ("Membrane-Host", "a.*"),
                ("Membrane-Session", ID),
                ("Membrane-Session-Key", KEY),
            ],
        ),
        (
            "a host id of 1,000 bytes",
            vec![
                ("Membrane-Host", long_host.as_str()),
                ("Membrane-Session", ID),
                ("Membrane-Session-Key", KEY),
            ],
        ),
    ];
    for (what, headers) in bad_openings {
        let (out, req) = exchange(&app, &mut fake, relay_add(), &headers, vec![3]).await;
        let h = req.headers.unwrap();
        assert_eq!(h.get("Membrane-Session").unwrap().as_str(), "new", "{what}");
        let e = out.expect_err(what);
        assert_eq!(
            e.kind(),
            ErrorKind::Crashed,
            "{what}: {}",
            membrane::chain(&e)
        );
    }
    // A proper opening; the next call goes to the host it named, with its id and key.
    let good = [
        HOST,
        ("Membrane-Session", ID),
        ("Membrane-Session-Key", KEY),
    ];
    let (out, _) = exchange(&app, &mut fake, relay_add(), &good, vec![3]).await;
    assert_eq!(out.unwrap(), [Val::U64(3)]);
    let gone = error("crashed", "no such session", 0);
    let (out, req) = exchange(&app, &mut fake, relay_add(), &[HOST, ERR], gone).await;
    assert_eq!(
        req.subject.as_str(),
        format!("membrane.{name}.worker.host.fake")
    );
    let h = req.headers.unwrap();
    assert_eq!(h.get("Membrane-Session").unwrap().as_str(), ID);
    assert_eq!(h.get("Membrane-Session-Key").unwrap().as_str(), KEY);
    assert_eq!(out.unwrap_err().kind(), ErrorKind::Crashed);

    // The fake leaves and a real host comes: calls work again.
    drop(fake);
    let host = runtime()
        .load_spec(spec(&name, &nats.url).host(["worker"]))
        .await
        .unwrap();
    let serving = host.serve_remote().await.unwrap();
    let out = app
        .call("worker", &format!("{WORK}#echo"), &[s("hi")])
        .await
        .unwrap();
    assert_eq!(out, [s("worker:hi")]);
    let out = app
        .call(
            "relay",
            &format!("{RELAY}#add"),
            &[Val::U64(20), Val::U64(22)],
        )
        .await
        .unwrap();
    assert_eq!(out, [Val::U64(42)]);
    serving.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn membrane_call_prints_a_hostile_error_within_bounds() {
    let Some(_) = nats_server() else { return };
    let nats = Nats::start();
    let name = app_name();
    let dir = tempfile::tempdir().unwrap();
    let manifest = write_manifest(
        dir.path(),
        &format!(
            "[app]\nname = {name:?}\nnats = {:?}\n\
             [modules.relay]\ncomponent = {:?}\nlinks = {{ {WORK:?} = \"worker\" }}\n\
             [modules.worker]\ncomponent = {:?}\nplacement = \"remote\"\n",
            nats.url,
            guests::RELAY,
            guests::WORKER
        ),
    );
    let mut fake = Fake::start(&nats.url, &name).await;
    let cli = tokio::task::spawn_blocking(move || {
        let path = manifest.to_str().unwrap().to_string();
        membrane(&["call", &path, "worker", &format!("{WORK}#echo"), "\"x\""])
    });
    fake.answer(&[HOST, ERR], error("denied", &"m".repeat(100_000), 250_000))
        .await;
    let o = tokio::time::timeout(GUARD, cli).await.unwrap().unwrap();
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{}", &err[..err.len().min(2000)]);
    assert!(
        err.starts_with("error[denied]"),
        "{}",
        &err[..err.len().min(2000)]
    );
    assert!(err.len() < 128 << 10, "{} bytes on stderr", err.len());
    assert!(
        err.contains("more causes cut"),
        "{}",
        &err[..err.len().min(2000)]
    );
}
