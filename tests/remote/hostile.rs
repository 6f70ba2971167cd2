//! A caller facing a hostile host: a fake host (`fake.rs`) answers with bodies too
//! large, malformed or of the wrong types, errors with huge messages and cause chains, and
//! sessions it never opened properly. Each call fails with a typed error, the caller goes
//! on, and the next call to a good host works.

use std::time::Duration;

use async_nats::Message;
use membrane::{App, AppSpec, ErrorKind, Val};

use super::fake::{ERR, Fake, HOST, error_of, string_result};
use super::host::app_name;
use super::nats::{Nats, nats_server};
use super::sessions::relay_spec;
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

/// An error message about `worker` as a host sends it.
fn error(kind: &str, message: &str, causes: usize) -> Vec<u8> {
    error_of("worker", kind, message, causes)
}

const ID: &str = "0123456789abcdef0123456789abcdef";
const KEY: &str = "fedcba9876543210fedcba9876543210";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_answers_are_typed_errors_and_the_caller_goes_on() {
    let Some(_) = nats_server() else { return };
    let nats = Nats::start();
    let name = app_name();
    let app = runtime().load_spec(spec(&name, &nats.url)).await.unwrap();
    let mut fake = Fake::start(&nats.url, &name, "worker").await;
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

    // The fake leaves and a real host comes: calls work again. (Only dropped, the fake's
    // queue subscription could outlive the drop and take one of the calls below.)
    fake.leave().await;
    let host = runtime()
        .load_spec(spec(&name, &nats.url).host(["worker"]))
        .await
        .unwrap();
    let serving = membrane::remote::RemoteHost::start(&host).await.unwrap();
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
    let mut fake = Fake::start(&nats.url, &name, "worker").await;
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

/// A valid answer that the NATS server carries (its `max_payload` raised to 64 MiB) but the
/// caller never agreed to take: a string of 60 MiB, past the module's default `hostcall`
/// limit of 32 MiB. `App::call` refuses it before decoding it; `membrane call` prints none
/// of it. An answer within the limit, though larger than NATS's default payload, passes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_valid_result_past_the_hostcall_limit_is_refused() {
    let Some(_) = nats_server() else { return };
    let nats = Nats::with_max_payload(64 << 20);
    let name = app_name();
    let huge = string_result(&vec![b'x'; 60 << 20]);
    let echo = || ("worker", format!("{WORK}#echo"), vec![s("x")]);

    let app = runtime()
        .load_spec(relay_spec(&name, &nats.url))
        .await
        .unwrap();
    assert_eq!(app.spec("worker").unwrap().limits.hostcall, 32 << 20);
    let mut fake = Fake::start(&nats.url, &name, "worker").await;
    let (out, _) = exchange(&app, &mut fake, echo(), &[HOST], huge.clone()).await;
    let e = out.expect_err("60 MiB past a 32 MiB limit");
    assert_eq!(
        e.kind(),
        ErrorKind::HostcallLimit,
        "{}",
        membrane::chain(&e)
    );
    assert_eq!(e.module(), Some("worker"));
    assert_eq!(e.key(), Some("modules.worker.limits.hostcall"));
    let within = vec![b'y'; 2 << 20];
    let (out, _) = exchange(&app, &mut fake, echo(), &[HOST], string_result(&within)).await;
    assert_eq!(
        text_of(&out.expect("2 MiB within the limit")[0]).len(),
        2 << 20
    );

    let dir = tempfile::tempdir().unwrap();
    let manifest = write_manifest(
        dir.path(),
        &format!(
            "[app]\nname = {name:?}\nnats = {:?}\n\
             [modules.worker]\ncomponent = {:?}\nplacement = \"remote\"\n",
            nats.url,
            guests::WORKER
        ),
    );
    let cli = tokio::task::spawn_blocking(move || {
        let path = manifest.to_str().unwrap().to_string();
        membrane(&["call", &path, "worker", &format!("{WORK}#echo"), "\"x\""])
    });
    fake.answer(&[HOST], huge).await;
    let o = tokio::time::timeout(GUARD, cli).await.unwrap().unwrap();
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{}", &err[..err.len().min(2000)]);
    assert!(err.starts_with("error[hostcall-limit]"), "{err}");
    assert!(err.contains("modules.worker.limits"), "{err}");
    assert!(o.stdout.is_empty(), "{} bytes on stdout", o.stdout.len());
    assert!(err.len() < 4 << 10, "{} bytes on stderr", err.len());
}
