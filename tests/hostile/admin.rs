//! The admin listener against a web page that rebinds its own name to 127.0.0.1 (DNS
//! rebinding), against requests without the admin token, and against a careless
//! configuration (a listener beyond loopback without a token).

use std::net::SocketAddr;

use bytes::Bytes;
use membrane::serve::{ServeOptions, Server};
use membrane::{AdminSpec, AppSpec, ErrorKind, HttpSpec, TokenSource};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::common::{guests, runtime, write_manifest};
use crate::serve::{Reply, Served, request, send, serve_app, with_token};

/// An app loaded from a manifest (so that POST /reload has something to read), served
/// with its admin listener on 127.0.0.1.
async fn served(dir: &std::path::Path) -> Served {
    let path = write_manifest(
        dir,
        &format!(
            "[app.http]\nroutes = {{ \"/\" = \"m\" }}\n[modules.m]\ncomponent = {:?}\n",
            guests::HTTP_PROBE
        ),
    );
    let app = runtime().load(&path).await.expect("app loads");
    serve_app(app).await
}

/// `method path` with these `Host` and `Origin` headers (and the token, if given).
async fn ask(
    admin: SocketAddr,
    method: &str,
    path: &str,
    host: &str,
    origin: Option<&str>,
    token: Option<&str>,
) -> Reply {
    let mut req = request(method, path, Bytes::new());
    req.headers_mut().insert("host", host.parse().unwrap());
    if let Some(o) = origin {
        req.headers_mut().insert("origin", o.parse().unwrap());
    }
    if let Some(t) = token {
        req = with_token(req, t);
    }
    send(admin, req).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rebound_name_reaches_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let s = served(dir.path()).await;
    let admin = s.admin.unwrap();
    let token = s.token.clone().unwrap();
    let port = admin.port();
    let evil = format!("evil.example:{port}");
    let evil_origin = format!("http://{evil}");
    for (method, path) in [
        ("GET", "/"),
        ("GET", "/status"),
        ("GET", "/metrics"),
        ("POST", "/reload"),
        ("POST", "/rollback/m"),
    ] {
        // What a browser sends after rebinding evil.example to 127.0.0.1: refused, with or
        // without the token, before any handler runs.
        for t in [None, Some(token.as_str())] {
            let r = ask(admin, method, path, &evil, Some(&evil_origin), t).await;
            assert_eq!(r.status, 421, "{method} {path} {t:?}: {}", r.body);
            let r = ask(admin, method, path, &evil, None, t).await;
            assert_eq!(r.status, 421, "{method} {path}");
        }
        // The right host with another site's origin.
        let own = admin.to_string();
        let r = ask(admin, method, path, &own, Some(&evil_origin), Some(&token)).await;
        assert_eq!(r.status, 403, "{method} {path}: {}", r.body);
        // Another port of the same machine is another origin.
        let r = ask(
            admin,
            method,
            path,
            &format!("127.0.0.1:{}", port ^ 1),
            None,
            None,
        )
        .await;
        assert_eq!(r.status, 421, "{method} {path}");
    }
    // The listener's own names pass: its IP, localhost, the other loopback literal.
    for host in [
        admin.to_string(),
        format!("localhost:{port}"),
        format!("[::1]:{port}"),
    ] {
        let r = ask(admin, "GET", "/status", &host, None, None).await;
        assert_eq!(r.status, 200, "{host}: {}", r.body);
        let origin = format!("http://{host}");
        let r = ask(admin, "GET", "/status", &host, Some(&origin), None).await;
        assert_eq!(r.status, 200, "{host} with its own origin");
    }
    // No Host at all (HTTP/1.0 allows leaving it out).
    let mut raw = TcpStream::connect(admin).await.unwrap();
    raw.write_all(b"GET /status HTTP/1.0\r\n\r\n")
        .await
        .unwrap();
    let mut answer = String::new();
    raw.read_to_string(&mut answer).await.unwrap();
    assert!(answer.starts_with("HTTP/1.0 421"), "{answer}");
    // Nothing was changed by any of it.
    assert_eq!(s.app.status()["m"].generation, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changes_need_the_token() {
    let dir = tempfile::tempdir().unwrap();
    let s = served(dir.path()).await;
    let admin = s.admin.unwrap();
    let own = admin.to_string();
    let token = s.token.clone().unwrap();
    for path in ["/reload", "/rollback/m"] {
        let r = ask(admin, "POST", path, &own, None, None).await;
        assert_eq!(r.status, 401, "{path}: {}", r.body);
        assert!(r.headers.contains_key("www-authenticate"));
        // The token with its last character changed.
        let last = if token.ends_with('0') { '1' } else { '0' };
        let wrong = format!("{}{last}", &token[..token.len() - 1]);
        let r = ask(admin, "POST", path, &own, None, Some(&wrong)).await;
        assert_eq!(r.status, 401, "{path}");
        let r = ask(admin, "POST", path, &own, None, Some("")).await;
        assert_eq!(r.status, 401, "{path}");
    }
    // With it: the reload runs (nothing changed), the rollback finds nothing to go back to.
    let r = ask(admin, "POST", "/reload", &own, None, Some(&token)).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let r = ask(admin, "POST", "/rollback/m", &own, None, Some(&token)).await;
    assert_eq!(r.status, 404, "{}", r.body);
    // Reading needs no token.
    assert_eq!(
        ask(admin, "GET", "/status", &own, None, None).await.status,
        200
    );
    // The page hands the token to its own script only, and no cache keeps it.
    let page = ask(admin, "GET", "/", &own, None, None).await;
    assert_eq!(page.status, 200);
    assert!(page.body.contains(&format!(
        "<meta name=\"membrane-admin-token\" content=\"{token}\">"
    )));
    assert_eq!(page.headers["cache-control"], "no-store");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_listener_beyond_loopback_needs_a_configured_token() {
    // From the manifest: refused at load, naming the key.
    let dir = tempfile::tempdir().unwrap();
    let path = write_manifest(
        dir.path(),
        &format!(
            "[app.http]\nroutes = {{ \"/\" = \"m\" }}\n[app.admin]\nlisten = \"0.0.0.0:0\"\n[modules.m]\ncomponent = {:?}\n",
            guests::HTTP_PROBE
        ),
    );
    let Err(e) = runtime().load(&path).await else {
        panic!("a listener on 0.0.0.0 without a token loads")
    };
    assert_eq!(e.kind(), ErrorKind::Manifest);
    let p = &e.problems()[0];
    assert_eq!(p.key(), Some("app.admin.token_file"));
    // From the command line's override: refused at bind.
    let app = runtime()
        .load_spec(
            AppSpec::new()
                .module("m", membrane::ModuleSpec::from_file(guests::HTTP_PROBE))
                .http(HttpSpec::default().route("/", "m")),
        )
        .await
        .unwrap();
    let e = Server::bind(
        &app,
        ServeOptions::new().listen("127.0.0.1:0").admin("0.0.0.0:0"),
    )
    .await
    .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Manifest);
    assert_eq!(e.key(), Some("app.admin.token_file"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_configured_token_must_be_private() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("admin.token");
    let token = "0f1e2d3c4b5a69788796a5b4c3d2e1f0";
    std::fs::write(&file, format!("{token}\n")).unwrap();
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
    let spec = AppSpec::new()
        .module("m", membrane::ModuleSpec::from_file(guests::HTTP_PROBE))
        .http(HttpSpec::default().route("/", "m"))
        .admin_with(
            AdminSpec::default()
                .token(TokenSource::File(file.clone()))
                .host("ops.internal"),
        );
    let app = runtime().load_spec(spec).await.unwrap();
    let options = || {
        ServeOptions::new()
            .listen("127.0.0.1:0")
            .admin("127.0.0.1:0")
    };
    let e = Server::bind(&app, options()).await.unwrap_err();
    assert_eq!(e.key(), Some("app.admin.token_file"));
    assert!(e.to_string().contains("chmod 600"), "{e}");
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
    let s = serve_app(app).await;
    assert_eq!(s.token.as_deref(), Some(token));
    let admin = s.admin.unwrap();
    let host = format!("ops.internal:{}", admin.port());
    let r = ask(admin, "POST", "/rollback/m", &host, None, Some(token)).await;
    assert_eq!(r.status, 404, "{}", r.body);
}
