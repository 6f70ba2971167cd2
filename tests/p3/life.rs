//! A WASI 0.3 command under `membrane run`, and a live upgrade of a WASI 0.3 service under
//! load.

use membrane::{AppSpec, ErrorKind, HttpSpec, ModuleSpec};

use crate::serve::{get, serve};

use super::*;

#[test]
fn membrane_run_runs_a_p3_command() {
    let dir = tempfile::tempdir().unwrap();
    let m = write_manifest(
        dir.path(),
        &format!(
            "[app]\nentry = \"cli\"\n\n[modules.cli]\ncomponent = {:?}\n[modules.cli.grants]\nstdout = \"inherit\"\n",
            guests::P3_CLI
        ),
    );
    let m = m.to_str().unwrap();
    let ok = membrane(&["run", m, "--", "x", "y z"]);
    assert_eq!(ok.status.code(), Some(0), "{}", stderr(&ok));
    assert_eq!(stdout(&ok), "hello from p3\nx\ny z\n");
    let failed = membrane(&["run", m, "--", "fail"]);
    assert_eq!(failed.status.code(), Some(1), "{}", stderr(&failed));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upgrade_under_load_finishes_calls_on_the_old_generation() {
    let s = serve(
        AppSpec::new().module("m", ModuleSpec::from_file(guests::P3_HTTP_PROBE)),
        HttpSpec::default().route("/", "m"),
    )
    .await;
    // Requests in flight on generation 1 when the upgrade switches.
    let in_flight: Vec<_> = (0..8)
        .map(|_| tokio::spawn(get_owned(s.addr, "/sleep?ms=400")))
        .collect();
    crate::common::eventually("the requests run", || s.app.status()["m"].running == 8).await;
    let r = s
        .app
        .upgrade("m", ModuleSpec::from_file(guests::P3_HELLO))
        .await
        .unwrap();
    assert_eq!((r.from, r.to), (1, 2));
    // New requests reach generation 2 at once...
    let r = get(s.addr, "/").await;
    assert_eq!((r.status, r.body.as_str()), (200, "hello\n"));
    // ...while the old requests finish on generation 1.
    for t in in_flight {
        let r = t.await.unwrap();
        assert_eq!((r.status, r.body.as_str()), (200, "slept 400\n"));
    }
    // The old instance ends once drained: one instance is left, idle.
    crate::common::eventually("the old instance ends", || {
        let m = &s.app.status()["m"];
        m.busy == 0 && m.idle == 1
    })
    .await;
}

async fn get_owned(addr: std::net::SocketAddr, path: &'static str) -> crate::serve::Reply {
    get(addr, path).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upgrade_across_wasi_versions_is_refused() {
    let app = p3_app(guests::P3_HELLO, |m| m).await;
    let e = app
        .upgrade("m", ModuleSpec::from_file(guests::HTTP_HELLO))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Manifest, "{e}");
    let p = e.problems().first().unwrap_or(&e);
    assert_eq!(p.key(), Some("modules.m.component"), "{e:?}");
    assert!(p.message().contains("WASI 0.3"), "{p}");
}
