//! Resource sessions belong to the caller that opened them: a second NATS connection that
//! learns a session's id (it listens on the host's subject here; a log line or an error
//! message would do as well) can neither use nor close it without the key that only the
//! opener received, and cannot guess one.

use std::time::Duration;

use async_nats::HeaderMap;
use futures_util::StreamExt;
use membrane::{App, AppSpec, ModuleSpec, NatsSpec, Placement, Val};

use super::host::app_name;
use super::nats::{Nats, nats_server};
use crate::common::*;

const RELAY: &str = "membrane-test:chain/relay";
const WORK: &str = "membrane-test:chain/work@1.2.0";

/// A bound on waits for what surely comes: only a broken test waits this long.
const GUARD: Duration = Duration::from_secs(30);

/// relay (local) -> worker (remote, with resources), for app `name` on `url`.
pub(super) fn relay_spec(name: &str, url: &str) -> AppSpec {
    AppSpec::new()
        .name(name)
        .nats(NatsSpec::new([url]))
        .module(
            "relay",
            ModuleSpec::from_file(guests::RELAY).link(WORK, "worker"),
        )
        .module(
            "worker",
            ModuleSpec::from_file(guests::WORKER).placement(Placement::Remote),
        )
}

async fn relay(app: &App, f: &str, args: &[Val]) -> membrane::Result<Vec<Val>> {
    app.call("relay", &format!("{RELAY}#{f}"), args).await
}

/// Returns once the NATS server has processed everything `c` sent before (its
/// subscriptions): a message to a fresh inbox of its own comes back only after them.
pub(super) async fn settled(c: &async_nats::Client) {
    let inbox = c.new_inbox();
    let mut echo = c.subscribe(inbox.clone()).await.unwrap();
    c.publish(inbox, Default::default()).await.unwrap();
    c.flush().await.unwrap();
    tokio::time::timeout(GUARD, echo.next())
        .await
        .expect("the server echoes")
        .expect("the subscription lives");
}

/// The id, key and module hash of the first session request caller A sends to the host,
/// seen by B listening on the host's subject while A calls `live-counters`.
async fn spy_on_a_session(app: &App, b: &async_nats::Client, own: &str) -> HeaderMap {
    let mut spy = b.subscribe(own.to_string()).await.unwrap();
    settled(b).await;
    assert_eq!(
        relay(app, "live-counters", &[]).await.unwrap(),
        [Val::U64(1)]
    );
    let seen = tokio::time::timeout(GUARD, spy.next())
        .await
        .expect("the spy sees A's call")
        .expect("the subscription lives");
    seen.headers.expect("requests have headers")
}

/// B's request on `subject`: the kind of the error it gets ("no error" for none), and the
/// error's JSON.
async fn ask(
    b: &async_nats::Client,
    subject: &str,
    headers: &[(&str, &str)],
) -> (String, serde_json::Value) {
    let (kind, error, _) = ask_full(b, subject, headers).await;
    (kind, error)
}

/// [`ask`], and the answer's headers.
async fn ask_full(
    b: &async_nats::Client,
    subject: &str,
    headers: &[(&str, &str)],
) -> (String, serde_json::Value, HeaderMap) {
    let mut h = HeaderMap::new();
    for (k, v) in headers {
        h.insert(*k, *v);
    }
    let msg = tokio::time::timeout(
        GUARD,
        b.request_with_headers(subject.to_string(), h, Default::default()),
    )
    .await
    .expect("answered")
    .expect("answered");
    let error = msg
        .headers
        .as_ref()
        .and_then(|h| h.get("Membrane-Error"))
        .map(|_| serde_json::from_slice(&msg.payload).expect("an error is JSON"))
        .unwrap_or(serde_json::Value::Null);
    let kind = error["kind"].as_str().unwrap_or("no error").to_string();
    (kind, error, msg.headers.unwrap_or_default())
}

/// A request B sends in A's session: what it is, its headers, the export it names.
type Refused<'a> = (&'a str, Vec<(&'a str, &'a str)>, Option<&'a str>);

/// A key that is well formed and not the session's.
const WRONG_KEY: &str = "00112233445566778899aabbccddeeff";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_connection_can_neither_use_nor_close_a_session() {
    let Some(_) = nats_server() else { return };
    let nats = Nats::start();
    let name = app_name();
    let spec = relay_spec(&name, &nats.url);
    let host = runtime()
        .load_spec(spec.clone().host(["worker"]))
        .await
        .unwrap();
    let serving = membrane::remote::RemoteHost::start(&host).await.unwrap();
    // A: the caller app, with its own connection. B: another party on the bus.
    let a = runtime().load_spec(spec).await.unwrap();
    let b = async_nats::connect(&nats.url).await.unwrap();

    // A's importer instance opens a session on the host and leaves a counter in it.
    relay(&a, "leak-counter", &[Val::U64(7)]).await.unwrap();
    let own = format!("membrane.{name}.worker.host.{}", serving.host_id());
    let seen = spy_on_a_session(&a, &b, &own).await;
    let id = seen.get("Membrane-Session").expect("a session id").as_str();
    let hash = seen.get("Membrane-Hash").expect("a hash").as_str();
    // Not a counter: 128 bits.
    assert_eq!(id.len(), 32, "{id:?}");

    let live = format!("{WORK}#live-counters");
    let call = |key: Option<&'static str>| {
        let mut h = vec![
            ("Membrane-Func", live.as_str()),
            ("Membrane-Hash", hash),
            ("Membrane-Session", id),
        ];
        h.extend(key.map(|k| ("Membrane-Session-Key", k)));
        h
    };
    let keyed = |first: (&'static str, &'static str)| {
        vec![
            first,
            ("Membrane-Hash", hash),
            ("Membrane-Session", id),
            ("Membrane-Session-Key", WRONG_KEY),
        ]
    };
    let refused: Vec<Refused> = vec![
        ("a call without the key", call(None), Some(live.as_str())),
        (
            "a call with another key",
            call(Some(WRONG_KEY)),
            Some(live.as_str()),
        ),
        (
            "a call with a malformed key",
            call(Some("not-a-key")),
            Some(live.as_str()),
        ),
        (
            "a drop with another key",
            keyed(("Membrane-Drop", "0")),
            None,
        ),
        (
            "a close with another key",
            keyed(("Membrane-Close", "1")),
            None,
        ),
    ];
    for (what, headers, export) in &refused {
        let (kind, e) = ask(&b, &own, headers).await;
        assert_eq!(kind, "denied", "{what}: {e}");
        assert_eq!(e["module"].as_str(), Some("worker"), "{what}: {e}");
        assert_eq!(e["export"].as_str(), *export, "{what}: {e}");
        assert!(
            e["message"].as_str().unwrap().contains(id),
            "{what} names the session: {e}"
        );
    }
    // A close published without asking for an answer (as callers end their sessions).
    let mut h = HeaderMap::new();
    for (k, v) in keyed(("Membrane-Close", "1")) {
        h.insert(k, v);
    }
    b.publish_with_headers(own.clone(), h, Default::default())
        .await
        .unwrap();
    // Guessing: small numbers are not ids at all (old hosts counted up from 1), and a
    // well-formed id that no one was given names no session.
    for guess in ["1", "2", "3"] {
        let (kind, e) = ask(
            &b,
            &own,
            &[
                ("Membrane-Func", &live),
                ("Membrane-Hash", hash),
                ("Membrane-Session", guess),
            ],
        )
        .await;
        assert_eq!(kind, "invalid-args", "{guess}: {e}");
    }
    let other = format!("{:032x}", u128::from_str_radix(id, 16).unwrap() ^ 1);
    let (kind, e) = ask(
        &b,
        &own,
        &[
            ("Membrane-Func", &live),
            ("Membrane-Hash", hash),
            ("Membrane-Session", &other),
            ("Membrane-Session-Key", WRONG_KEY),
        ],
    )
    .await;
    assert_eq!(kind, "crashed", "a neighbouring id: {e}");

    // A's session is whole: its counter is still there, and it goes on.
    assert_eq!(
        relay(&a, "live-counters", &[]).await.unwrap(),
        [Val::U64(1)]
    );
    relay(&a, "leak-counter", &[Val::U64(8)]).await.unwrap();
    assert_eq!(
        relay(&a, "live-counters", &[]).await.unwrap(),
        [Val::U64(2)]
    );
    // Each refusal was counted as a denial of the module (the published close too: the
    // host read it before B's later requests on the same subject).
    let m = host.metrics_text();
    let line = "membrane_denials_total{module=\"worker\",capability=\"session\"} 6";
    assert!(m.lines().any(|l| l == line), "{line} in\n{m}");
    serving.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_session_request_is_audited() {
    let Some(_) = nats_server() else { return };
    let nats = Nats::start();
    let dir = tempfile::tempdir().unwrap();
    let name = app_name();
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
    let path = manifest.to_str().unwrap();
    // `membrane host` logs at info, audit events included.
    let host = super::host_proc(&["host", path, "--modules", "worker"]);
    let a = runtime().load(&manifest).await.unwrap();
    let b = async_nats::connect(&nats.url).await.unwrap();
    relay(&a, "leak-counter", &[Val::U64(7)]).await.unwrap();
    let own = format!("membrane.{name}.worker.host.{}", host.id);
    let seen = spy_on_a_session(&a, &b, &own).await;
    let id = seen.get("Membrane-Session").unwrap().as_str();
    let hash = seen.get("Membrane-Hash").unwrap().as_str();
    let live = format!("{WORK}#live-counters");
    let (kind, e) = ask(
        &b,
        &own,
        &[
            ("Membrane-Func", &live),
            ("Membrane-Hash", hash),
            ("Membrane-Session", id),
        ],
    )
    .await;
    assert_eq!(kind, "denied", "{e}");
    let line = host.wait_for("remote session refused");
    for field in [
        "membrane::audit".to_string(),
        "module=worker".into(),
        format!("session={id}"),
        "reason=\"the request carries no session key\"".into(),
        "request=\"call\"".into(),
        format!("export={live}"),
    ] {
        assert!(line.contains(&field), "{field} in {line}");
    }
    // The key never reaches the log.
    let key = seen.get("Membrane-Session-Key").unwrap().as_str();
    assert!(!line.contains(key), "{line}");
    assert_eq!(
        relay(&a, "live-counters", &[]).await.unwrap(),
        [Val::U64(1)]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_connection_cannot_hold_every_session() {
    let Some(_) = nats_server() else { return };
    let nats = Nats::start();
    let name = app_name();
    // Four instances on the host: a caller may hold two of them in sessions.
    let spec = relay_spec(&name, &nats.url);
    let worker = spec.modules()["worker"].clone().concurrency(4, 8);
    let spec = spec.module("worker", worker);
    let host = runtime()
        .load_spec(spec.clone().host(["worker"]))
        .await
        .unwrap();
    let serving = membrane::remote::RemoteHost::start(&host).await.unwrap();
    let a = runtime().load_spec(spec).await.unwrap();
    // Learn the module hash from A's opening call (it is no secret).
    let b = async_nats::connect(&nats.url).await.unwrap();
    let mut spy = b
        .subscribe(format!("membrane.{name}.worker"))
        .await
        .unwrap();
    settled(&b).await;
    relay(&a, "leak-counter", &[Val::U64(1)]).await.unwrap();
    let seen = tokio::time::timeout(GUARD, spy.next())
        .await
        .expect("the spy sees A's call")
        .expect("the subscription lives");
    drop(spy);
    let hash = seen
        .headers
        .unwrap()
        .get("Membrane-Hash")
        .unwrap()
        .to_string();
    let live = format!("{WORK}#live-counters");
    let queue = format!("membrane.{name}.worker");
    let open = [
        ("Membrane-Func", live.as_str()),
        ("Membrane-Hash", hash.as_str()),
        ("Membrane-Session", "new"),
    ];
    // B opens two sessions, and no third.
    let mut keys = Vec::new();
    for _ in 0..2 {
        let (kind, e, h) = ask_full(&b, &queue, &open).await;
        assert_eq!(kind, "no error", "{e}");
        let id = h.get("Membrane-Session").unwrap().to_string();
        let key = h.get("Membrane-Session-Key").unwrap().to_string();
        keys.push((id, key));
    }
    let (kind, e) = ask(&b, &queue, &open).await;
    assert_eq!(kind, "overloaded", "{e}");
    assert!(
        e["message"].as_str().unwrap().contains("this caller"),
        "{e}"
    );
    // Another connection still opens one.
    let c = async_nats::connect(&nats.url).await.unwrap();
    let (kind, e) = ask(&c, &queue, &open).await;
    assert_eq!(kind, "no error", "{e}");
    // B's own close, with its key, gives B's room back.
    let (id, key) = &keys[0];
    let own = format!("{queue}.host.{}", serving.host_id());
    let close = [
        ("Membrane-Close", "1"),
        ("Membrane-Session", id.as_str()),
        ("Membrane-Session-Key", key.as_str()),
    ];
    let (kind, e) = ask(&b, &own, &close).await;
    assert_eq!(kind, "no error", "{e}");
    let (kind, e) = ask(&b, &queue, &open).await;
    assert_eq!(kind, "no error", "{e}");
    // A's session went on meanwhile.
    assert_eq!(
        relay(&a, "live-counters", &[]).await.unwrap(),
        [Val::U64(1)]
    );
    serving.shutdown().await;
}
