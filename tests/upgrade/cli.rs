//! The triggers of `membrane serve`: SIGHUP, POST /reload and `membrane reload`,
//! POST /rollback/<module>, and `--watch`.

use std::path::Path;
use std::time::{Duration, Instant};

use crate::common::{guests, membrane, stderr, stdout, write_manifest};
use crate::serve::cli::{Proc, start_with};
use crate::serve::{get, request, send, with_token};

fn manifest(dir: &Path) -> std::path::PathBuf {
    write_manifest(
        dir,
        &format!(
            r#"
[app.http]
routes = {{ "/" = "web" }}

[app.admin]
listen = "127.0.0.1:0"

[modules.web]
component = {web:?}
links = {{ "acme:greet/api" = "greet" }}

[modules.greet]
component = "greet.wasm"
"#,
            web = guests::GREET_HTTP
        ),
    )
}

fn start(manifest: &Path, args: &[&str]) -> Proc {
    start_with(manifest, args, &[])
}

async fn answer(s: &Proc) -> String {
    let r = get(s.addr, "/bob").await;
    assert_eq!(r.status, 200, "{}", r.body);
    r.body
}

async fn eventually_answers(s: &Proc, want: &str) {
    let end = Instant::now() + Duration::from_secs(30);
    loop {
        let got = answer(s).await;
        if got.trim() == want {
            return;
        }
        assert!(Instant::now() < end, "still {got:?}, want {want:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_reloads_and_a_bad_manifest_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(guests::GREET_V1, dir.path().join("greet.wasm")).unwrap();
    let path = manifest(dir.path());
    let s = start(&path, &[]);
    assert_eq!(answer(&s).await.trim(), "v1 hello bob");

    std::fs::copy(guests::GREET_V2, dir.path().join("greet.wasm")).unwrap();
    s.signal(rustix::process::Signal::HUP);
    s.wait_for_log("reload: module upgraded");
    eventually_answers(&s, "v2 hello bob").await;

    // An invalid manifest: the problem is logged with its key, nothing changes.
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::write(
        &path,
        format!("{text}\n[modules.greet.limits]\ntimeout = \"0s\"\n"),
    )
    .unwrap();
    s.signal(rustix::process::Signal::HUP);
    let line = s.wait_for_log("reload refused");
    assert!(line.contains("timeout"), "{line}");
    assert_eq!(answer(&s).await.trim(), "v2 hello bob");
    let status = get(s.admin.unwrap(), "/status").await;
    let v: serde_json::Value = serde_json::from_str(&status.body).unwrap();
    assert_eq!(v["modules"]["greet"]["generation"], 2);
    assert_eq!(v["modules"]["greet"]["last_upgrade"]["ok"], false);
    let message = v["modules"]["greet"]["last_upgrade"]["message"]
        .as_str()
        .unwrap();
    assert!(message.contains("timeout"), "{message}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn membrane_reload_and_the_admin_endpoints() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(guests::GREET_V1, dir.path().join("greet.wasm")).unwrap();
    let path = manifest(dir.path());
    let s = start(&path, &[]);
    let admin = s.admin.unwrap().to_string();

    std::fs::copy(guests::GREET_V2, dir.path().join("greet.wasm")).unwrap();
    let out = membrane(&["reload", "--admin", &admin]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("upgraded greet: generation 1 -> 2"),
        "{}",
        stdout(&out)
    );
    assert_eq!(answer(&s).await.trim(), "v2 hello bob");

    // Refused: exit 1, the problem printed, the old version serves.
    std::fs::copy(guests::GREET_DROPPED, dir.path().join("greet.wasm")).unwrap();
    let out = membrane(&["reload", "--admin", &admin]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("reload refused (link)"),
        "{}",
        stderr(&out)
    );
    assert!(stderr(&out).contains("hello"), "{}", stderr(&out));
    assert!(!stderr(&out).contains("panicked"));
    assert_eq!(answer(&s).await.trim(), "v2 hello bob");

    // Roll back by hand over the admin listener; cross-site requests are refused.
    let mut cross = request("POST", "/rollback/greet", "");
    cross
        .headers_mut()
        .insert("sec-fetch-site", "cross-site".parse().unwrap());
    assert_eq!(send(s.admin.unwrap(), cross).await.unwrap().status, 403);
    let r = send(
        s.admin.unwrap(),
        with_token(request("POST", "/rollback/greet", ""), &s.token()),
    )
    .await
    .unwrap();
    assert_eq!(r.status, 200, "{}", r.body);
    let v: serde_json::Value = serde_json::from_str(&r.body).unwrap();
    assert_eq!(v["rolled_back"]["to"], 1);
    assert_eq!(answer(&s).await.trim(), "v1 hello bob");
    let r = send(
        s.admin.unwrap(),
        with_token(request("POST", "/rollback/greet", ""), &s.token()),
    )
    .await
    .unwrap();
    assert_eq!(r.status, 404);
    let r = send(
        s.admin.unwrap(),
        with_token(request("POST", "/rollback/nope", ""), &s.token()),
    )
    .await
    .unwrap();
    assert_eq!(r.status, 404);
    assert_eq!(get(s.admin.unwrap(), "/reload").await.status, 405);

    // No server there.
    let out = membrane(&["reload", "--admin", "127.0.0.1:1"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("cannot reach the admin listener"),
        "{}",
        stderr(&out)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_reloads_when_a_component_file_changes() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(guests::GREET_V1, dir.path().join("greet.wasm")).unwrap();
    let path = manifest(dir.path());
    let s = start(&path, &["--watch"]);
    assert_eq!(answer(&s).await.trim(), "v1 hello bob");
    std::fs::copy(guests::GREET_V2, dir.path().join("greet.wasm")).unwrap();
    eventually_answers(&s, "v2 hello bob").await;
    s.wait_for_log("reload: module upgraded");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wider_grants_need_membrane_reload_grants() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(guests::GREET_V1, dir.path().join("greet.wasm")).unwrap();
    let path = manifest(dir.path());
    let s = start(&path, &[]);
    let admin = s.admin.unwrap().to_string();
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::write(
        &path,
        format!("{text}\n[modules.greet.grants]\nnetwork = [\"127.0.0.1:22\"]\n"),
    )
    .unwrap();

    // SIGHUP cannot accept it: refused, with the way to accept it.
    s.signal(rustix::process::Signal::HUP);
    let line = s.wait_for_log("reload refused");
    assert!(line.contains("modules.greet.grants.network"), "{line}");
    s.wait_for_log("membrane reload --grants");
    // Nor can a plain `membrane reload`.
    let out = membrane(&["reload", "--admin", &admin]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(err.contains("reload refused (denied)"), "{err}");
    assert!(err.contains("127.0.0.1:22"), "{err}");
    assert!(err.contains("membrane reload --grants"), "{err}");
    let status = get(s.admin.unwrap(), "/status").await;
    let v: serde_json::Value = serde_json::from_str(&status.body).unwrap();
    assert_eq!(v["modules"]["greet"]["generation"], 1);

    // With --grants: applied, listed, audited.
    let out = membrane(&["reload", "--admin", &admin, "--grants"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("widened network modules.greet.grants.network: none -> 127.0.0.1:22"),
        "{}",
        stdout(&out)
    );
    let line = s.wait_for_log("wider grant accepted");
    assert!(
        line.contains("membrane::audit") && line.contains("greet") && line.contains("127.0.0.1:22"),
        "{line}"
    );
    // Anything but ?grants=accept is a bad request.
    let r = send(
        s.admin.unwrap(),
        with_token(request("POST", "/reload?grants=yes", ""), &s.token()),
    )
    .await
    .unwrap();
    assert_eq!(r.status, 400, "{}", r.body);
}
