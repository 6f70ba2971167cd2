//! Grants on the WASI 0.3 interfaces: the environment, directories, sockets and outbound
//! HTTP of a 0.3 guest are what its manifest grants, and denials are counted as for 0.2.

use membrane::{AppSpec, DirMode, HttpSpec, ModuleSpec};

use crate::serve::{Served, get, serve};

use super::*;

async fn probe_with(f: impl FnOnce(ModuleSpec) -> ModuleSpec) -> Served {
    serve(
        AppSpec::new().module("m", f(ModuleSpec::from_file(guests::P3_HTTP_PROBE))),
        HttpSpec::default().route("/", "m"),
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_granted_environment_variables_are_seen() {
    // SAFETY: the variable is set once, before any guest runs; it must never reach one.
    unsafe { std::env::set_var("MEMBRANE_P3_HOST_SECRET", "leak") };
    let s = probe_with(|m| m.env("GREETING", "hi")).await;
    let r = get(s.addr, "/env?name=GREETING").await;
    assert_eq!((r.status, r.body.as_str()), (200, "hi"));
    for name in ["MEMBRANE_P3_HOST_SECRET", "PATH", "HOME"] {
        let r = get(s.addr, &format!("/env?name={name}")).await;
        assert_eq!(r.status, 404, "{name}: {}", r.body);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_granted_directories_open() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("hello.txt"), "from the host").unwrap();
    let outside = tempfile::tempdir().unwrap();
    std::fs::write(outside.path().join("secret.txt"), "secret").unwrap();
    let s = probe_with(|m| m.dir(dir.path(), "/data", DirMode::ReadOnly)).await;
    let r = get(s.addr, "/file?path=/data/hello.txt").await;
    assert_eq!((r.status, r.body.as_str()), (200, "from the host"));
    // Out of the grant: by `..` and by an absolute host path, no preopen reaches it.
    let up = format!("/file?path=/data/../{}", outside.path().display());
    assert_eq!(get(s.addr, &up).await.status, 403);
    let abs = format!("/file?path={}/secret.txt", outside.path().display());
    let r = get(s.addr, &abs).await;
    assert_eq!((r.status, r.body.as_str()), (403, "no-preopen\n"));
    // Without the grant there is no directory at all.
    let bare = probe_with(|m| m).await;
    let r = get(bare.addr, "/file?path=/data/hello.txt").await;
    assert_eq!((r.status, r.body.as_str()), (403, "no-preopen\n"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sockets_reach_only_granted_destinations_and_denials_are_counted() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let _ = listener.accept().await;
        }
    });
    let granted = probe_with(|m| m.network(addr.to_string())).await;
    let r = get(granted.addr, &format!("/connect?addr={addr}")).await;
    assert_eq!((r.status, r.body.as_str()), (200, "connected\n"));
    let denied = probe_with(|m| m).await;
    let r = get(denied.addr, &format!("/connect?addr={addr}")).await;
    assert_eq!(r.status, 403, "{}", r.body);
    let metrics = denied.app.metrics_text();
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("membrane_denials_total{") && l.contains("module=\"m\"")),
        "{metrics}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outbound_http_needs_its_grant() {
    let upstream = serve(
        AppSpec::new().module("h", ModuleSpec::from_file(guests::P3_HELLO)),
        HttpSpec::default().route("/", "h"),
    )
    .await;
    let url = format!("http://{}/", upstream.addr);
    let denied = probe_with(|m| m).await;
    let r = get(denied.addr, &format!("/fetch?url={url}")).await;
    assert_eq!(r.status, 502, "{}", r.body);
    let origin = format!("http://{}", upstream.addr);
    let granted = probe_with(|m| m.http(origin)).await;
    let r = get(granted.addr, &format!("/fetch?url={url}")).await;
    assert_eq!((r.status, r.body.trim()), (200, "200"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_instance_holds_at_most_its_files_in_host_handles() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("f"), "x").unwrap();
    let s = probe_with(|m| {
        m.dir(dir.path(), "/data", DirMode::ReadOnly)
            .files(16)
            .calls_per_instance(1)
    })
    .await;
    let r = get(s.addr, "/open-many?path=/data/f&n=10").await;
    assert_eq!((r.status, r.body.as_str()), (200, "10 ok\n"));
    // files (16) + 64 per call: far fewer than 1,000 descriptors.
    let r = get(s.addr, "/open-many?path=/data/f&n=1000").await;
    assert_eq!(r.status, 500, "{}", r.body);
    let metrics = s.app.metrics_text();
    assert!(
        metrics.contains("outcome=\"files-limit\""),
        "the failure is counted as FilesLimit: {metrics}"
    );
    let r = get(s.addr, "/").await;
    assert_eq!((r.status, r.body.as_str()), (200, "ok\n"));
}
