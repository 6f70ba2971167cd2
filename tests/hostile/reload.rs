//! Reloads and upgrades against a hostile component and a careless operator: a snapshot
//! export of the wrong shape, a panic in the middle of a reload, and a reload that widens a
//! running module's grants.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use bytes::Bytes;
use membrane::{AppSpec, ErrorKind, ModuleSpec, UpgradeOptions};
use tracing_subscriber::layer::SubscriberExt as _;

use crate::common::{guests, runtime, synth, text_of, write_manifest};
use crate::serve::{request, send, serve_app, with_token};

const SNAPSHOT: &str = "membrane:lifecycle/snapshot@0.1.0";

/// A component exporting the snapshot interface with `save` and `restore` as given.
fn snapshot_of(save: &str, restore: &str) -> Vec<u8> {
    synth(
        &format!(
            "package membrane:lifecycle@0.1.0;\n\
             interface snapshot {{ save: {save}; restore: {restore}; }}\n\
             world w {{ export snapshot; }}\n"
        ),
        "w",
    )
}

#[tokio::test]
async fn a_snapshot_export_of_the_wrong_shape_is_refused() {
    for (save, restore, export) in [
        ("func()", "func(state: list<u8>)", "save"),
        ("func() -> string", "func(state: list<u8>)", "save"),
        ("func() -> list<u8>", "func(state: list<u32>)", "restore"),
        (
            "func() -> list<u8>",
            "func(state: list<u8>) -> u32",
            "restore",
        ),
    ] {
        let hostile = snapshot_of(save, restore);
        // At load.
        let Err(e) = runtime()
            .load_spec(AppSpec::new().module("c", ModuleSpec::from_bytes(hostile.clone())))
            .await
        else {
            panic!("a snapshot of save: {save}, restore: {restore} loads");
        };
        assert_eq!(e.kind(), ErrorKind::Link, "{}", membrane::chain(&e));
        assert_eq!(e.module(), Some("c"));
        assert_eq!(
            e.export(),
            Some(format!("{SNAPSHOT}#{export}").as_str()),
            "{save} {restore}"
        );
        // As the new version of a module whose state would move: the gate refuses it and
        // the state stays.
        let app = runtime()
            .load_spec(AppSpec::new().module(
                "c",
                ModuleSpec::from_file(guests::COUNTER_V1).concurrency(1, 8),
            ))
            .await
            .unwrap();
        let counter = |f: &str| format!("acme:counter/api#{f}");
        app.call("c", &counter("incr"), &[]).await.unwrap();
        let e = app
            .upgrade("c", ModuleSpec::from_bytes(hostile).concurrency(1, 8))
            .await
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Link, "{}", membrane::chain(&e));
        let out = app.call("c", &counter("get"), &[]).await.unwrap();
        assert_eq!(text_of(&out[0]), "1");
        assert_eq!(app.status()["c"].generation, 1);
    }
}

/// A tracing layer of the embedder that panics on the upgrade's own event while armed: a
/// bug in trusted code, in the middle of a reload.
struct PanicOnUpgrade(Arc<AtomicBool>);

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for PanicOnUpgrade {
    fn on_event(&self, event: &tracing::Event<'_>, _: tracing_subscriber::layer::Context<'_, S>) {
        if event.metadata().target() == "membrane::upgrade" && self.0.load(Ordering::SeqCst) {
            panic!("a subscriber of the embedder panicked");
        }
    }
}

fn greet_manifest(dir: &std::path::Path) -> std::path::PathBuf {
    write_manifest(
        dir,
        &format!(
            "[app.http]\nroutes = {{ \"/\" = \"web\" }}\n\
             [modules.web]\ncomponent = {web:?}\nlinks = {{ \"acme:greet/api\" = \"greet\" }}\n\
             [modules.greet]\ncomponent = \"greet.wasm\"\n",
            web = guests::GREET_HTTP
        ),
    )
}

// One thread, so that the subscriber set here sees every task of the test.
#[tokio::test(flavor = "current_thread")]
async fn a_panic_in_a_reload_is_an_error_and_the_server_goes_on() {
    let armed = Arc::new(AtomicBool::new(false));
    let subscriber = tracing_subscriber::registry().with(PanicOnUpgrade(armed.clone()));
    let _default = tracing::subscriber::set_default(subscriber);
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(guests::GREET_V1, dir.path().join("greet.wasm")).unwrap();
    let path = greet_manifest(dir.path());
    let app = runtime().load(&path).await.unwrap();
    let s = serve_app(app).await;
    let admin = s.admin.unwrap();
    let token = s.token.clone().unwrap();
    let reload = || {
        send(
            admin,
            with_token(request("POST", "/reload", Bytes::new()), &token),
        )
    };

    // Through the library.
    armed.store(true, Ordering::SeqCst);
    // tracing caches each event's interest across all threads; other tests register and
    // drop their own subscribers meanwhile, and under load the upgrade's event is sometimes
    // not delivered here (the reload then succeeds, which proves nothing either way). Ask
    // again with this thread's subscriber in place, and reload again until it is.
    // Puts the other version in place for the `n`th reload (v2 first).
    let swap = |n: usize| {
        let next = if n % 2 == 1 {
            guests::GREET_V2
        } else {
            guests::GREET_V1
        };
        std::fs::copy(next, dir.path().join("greet.wasm")).unwrap();
        tracing::callsite::rebuild_interest_cache();
    };
    let mut attempts = 0;
    let e = loop {
        attempts += 1;
        swap(attempts);
        match s.app.reload(&path).await {
            Err(e) => break e,
            Ok(_) if attempts < 20 => continue,
            Ok(r) => panic!("the subscriber never saw the upgrade's event: {r:?}"),
        }
    };
    assert_eq!(e.kind(), ErrorKind::HostPanic, "{}", membrane::chain(&e));
    assert!(e.to_string().contains("subscriber of the embedder"), "{e}");
    // Through the admin listener: answered, as JSON (the panic came after the switch, so
    // the other version is a change again).
    swap(attempts + 1);
    let r = reload().await.unwrap();
    assert_eq!(r.status, 500, "{}", r.body);
    let v: serde_json::Value = serde_json::from_str(&r.body).unwrap();
    assert_eq!(v["kind"], "host-panic");
    // The app serves, and the next reload works.
    armed.store(false, Ordering::SeqCst);
    assert_eq!(crate::serve::get(s.addr, "/bob").await.status, 200);
    std::fs::copy(guests::GREET_V2, dir.path().join("greet.wasm")).unwrap();
    let r = reload().await.unwrap();
    assert_eq!(r.status, 200, "{}", r.body);
    let body = crate::serve::get(s.addr, "/bob").await.body;
    assert_eq!(body.trim(), "v2 hello bob");
}

/// The greet manifest with `extra` lines in `[modules.greet]`.
fn with_greet(dir: &std::path::Path, extra: &str) -> std::path::PathBuf {
    let path = greet_manifest(dir);
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::write(&path, format!("{text}{extra}")).unwrap();
    path
}

#[tokio::test]
async fn a_reload_that_widens_grants_needs_consent() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("data")).unwrap();
    std::fs::copy(guests::GREET_V1, dir.path().join("greet.wasm")).unwrap();
    let path = with_greet(
        dir.path(),
        "[modules.greet.grants]\nenv = { KEEP = \"1\", GONE = \"2\" }\n",
    );
    let app = runtime().load(&path).await.unwrap();
    // More of everything: a read-write directory, a variable, a destination, an origin, a
    // higher limit.
    let wide = "[modules.greet.grants]\n\
                dirs = [{ host = \"data\", guest = \"/data\", mode = \"rw\" }]\n\
                env = { KEEP = \"1\", GONE = \"2\", SECRET = \"hunter2\" }\n\
                network = [\"127.0.0.1:22\"]\n\
                http = [\"http://169.254.169.254\"]\n\
                [modules.greet.limits]\nmemory = \"1GiB\"\n";
    let path = with_greet(dir.path(), wide);
    let e = app.reload(&path).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Denied, "{}", membrane::chain(&e));
    let keys: Vec<&str> = e.problems().iter().filter_map(|p| p.key()).collect();
    assert_eq!(
        keys,
        [
            "modules.greet.grants.dirs",
            "modules.greet.grants.env.SECRET",
            "modules.greet.grants.network",
            "modules.greet.grants.http",
            "modules.greet.limits.memory",
        ]
    );
    assert!(e.problems().iter().all(|p| p.module() == Some("greet")));
    // No value of a variable is ever shown.
    assert!(!membrane::chain(&e).contains("hunter2"));
    assert_eq!(app.status()["greet"].generation, 1);
    // The same through App::upgrade.
    let spec = ModuleSpec::from_file(dir.path().join("greet.wasm")).network("127.0.0.1:22");
    let e = app.upgrade("greet", spec.clone()).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Denied);
    assert_eq!(app.status()["greet"].generation, 1);

    // With consent: applied, and every change listed.
    let r = app
        .reload_with(&path, UpgradeOptions::new().accept_wider_grants())
        .await
        .unwrap();
    assert_eq!(r.upgraded.len(), 1);
    let g = &r.upgraded[0].grants;
    assert_eq!(g.iter().filter(|c| c.wider).count(), 5, "{g:?}");
    assert_eq!(app.status()["greet"].generation, 2);

    // Narrowing needs none: back to fewer grants than at the start.
    let path = with_greet(
        dir.path(),
        "[modules.greet.grants]\nenv = { KEEP = \"1\" }\n",
    );
    let r = app.reload(&path).await.unwrap();
    let g = &r.upgraded[0].grants;
    assert!(!g.is_empty() && g.iter().all(|c| !c.wider), "{g:?}");
    assert_eq!(app.status()["greet"].generation, 3);
}
