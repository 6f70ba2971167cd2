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
async fn an_instance_opens_at_most_its_files() {
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
    // The 17th descriptor is refused as on WASI 0.2: the guest sees the error and goes on.
    let r = get(s.addr, "/open-many?path=/data/f&n=1000").await;
    assert_eq!((r.status, r.body.trim()), (200, "16 insufficient-memory"));
    let r = get(s.addr, "/").await;
    assert_eq!((r.status, r.body.as_str()), (200, "ok\n"));
}

/// Disk quotas hold on the WASI 0.3 filesystem: writes through streams are charged before
/// they reach the file, new names count, and past the quota the guest gets
/// `insufficient-space` with nothing more written.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disk_quotas_hold_on_the_p3_filesystem() {
    for placement in [membrane::Placement::Isolated, membrane::Placement::Process] {
        let dir = tempfile::tempdir().unwrap();
        let app = worker_runtime()
            .load_spec(
                AppSpec::new()
                    .module("lib", ModuleSpec::from_file(guests::P3_LIB))
                    .module(
                        "m",
                        ModuleSpec::from_file(guests::P3_ASYNC_USER)
                            .link("membrane:p3lib/async-plain", "lib")
                            .dir(dir.path(), "/data", DirMode::ReadWrite)
                            .quota("/data", Some(100 << 10), Some(4))
                            .placement(placement),
                    ),
            )
            .await
            .unwrap_or_else(|e| panic!("{placement:?}: {}", membrane::chain(&e)));
        let f = |name: &str| format!("membrane:p3lib/relay-async@0.1.0#{name}");
        let ok = || Val::Result(Ok(None));
        let no_space = || {
            Val::Result(Err(Some(Box::new(Val::String(
                "ErrorCode::InsufficientSpace".into(),
            )))))
        };
        let write = |path: &str, size: u64| {
            let args = [Val::String(path.into()), Val::U64(size)];
            let (app, func) = (app.clone(), f("write"));
            async move { app.call("m", &func, &args).await.unwrap() }
        };
        assert_eq!(
            write("/data/a", 40 << 10).await,
            vec![ok()],
            "{placement:?}"
        );
        assert_eq!(
            write("/data/b", 40 << 10).await,
            vec![ok()],
            "{placement:?}"
        );
        // 120 KiB would pass the 100 KiB quota: refused, nothing of it written.
        assert_eq!(
            write("/data/c", 40 << 10).await,
            vec![no_space()],
            "{placement:?}"
        );
        let on_disk = |name: &str| std::fs::metadata(dir.path().join(name)).map(|m| m.len());
        assert_eq!(on_disk("c").unwrap(), 0, "{placement:?}");
        assert_eq!(on_disk("a").unwrap() + on_disk("b").unwrap(), 80 << 10);
        // Names: a, b, c and one directory make the 4 allowed; a fifth is refused.
        let mkdir = |path: &str| {
            let args = [Val::String(path.into())];
            let (app, func) = (app.clone(), f("mkdir"));
            async move { app.call("m", &func, &args).await.unwrap() }
        };
        assert_eq!(mkdir("/data/d1").await, vec![ok()], "{placement:?}");
        assert_eq!(mkdir("/data/d2").await, vec![no_space()], "{placement:?}");
        assert!(!dir.path().join("d2").exists());
    }
}
