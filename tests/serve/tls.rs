//! TLS on the `[app.http]` listener: curl over HTTP/1.1 and HTTP/2 (ALPN) against a
//! certificate made with openssl, a bad or mismatched pair refused at load with its key, a
//! reload that swaps the certificate for new handshakes, and a client that opens a
//! connection and never shakes hands cut off at the header timeout.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use membrane::serve::{ServeOptions, Server};
use membrane::{AppSpec, ErrorKind, HttpSpec, ModuleSpec, TlsSpec};
use tokio::io::AsyncReadExt;

use crate::common::*;

/// A self-signed certificate for 127.0.0.1 and localhost, and its key: (cert, key).
fn certificate(dir: &Path, name: &str) -> Option<(PathBuf, PathBuf)> {
    let (cert, key) = (
        dir.join(format!("{name}.pem")),
        dir.join(format!("{name}.key")),
    );
    let made = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
        ])
        .args(["-nodes", "-days", "2", "-subj", &format!("/CN={name}")])
        .args(["-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output();
    match made {
        Ok(o) if o.status.success() => Some((cert, key)),
        other => {
            eprintln!(
                "==== SKIPPED: openssl cannot make a test certificate ({other:?}); install openssl ===="
            );
            None
        }
    }
}

/// curl's answer for `url` trusting `ca`: (exit status, body, HTTP version).
fn curl(url: &str, ca: &Path, extra: &[&str]) -> (i32, String, String) {
    let o = Command::new("curl")
        .args([
            "-sS",
            "--max-time",
            "20",
            "-w",
            "\n%{http_version}",
            "--cacert",
        ])
        .arg(ca)
        .args(extra)
        .arg(url)
        .output()
        .expect("curl runs (apt-get install curl)");
    let out = String::from_utf8_lossy(&o.stdout).to_string();
    let (body, version) = out.rsplit_once('\n').unwrap_or((&out, ""));
    (
        o.status.code().unwrap_or(-1),
        body.to_string(),
        version.to_string(),
    )
}

async fn load(tls: TlsSpec, header_timeout: Option<Duration>) -> membrane::App {
    let mut http = HttpSpec::default().route("/", "m").tls(tls);
    if let Some(t) = header_timeout {
        http.header_timeout = t;
    }
    runtime()
        .load_spec(
            AppSpec::new()
                .module("m", ModuleSpec::from_file(guests::HTTP_HELLO))
                .http(http),
        )
        .await
        .expect("app loads")
}

/// Serves until `tx.send(())`; the task answers what `Server::run` does.
fn run(
    server: Server,
) -> (
    tokio::sync::oneshot::Sender<()>,
    tokio::task::JoinHandle<membrane::Result<usize>>,
) {
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(server.run(async {
        let _ = rx.await;
    }));
    (tx, task)
}

async fn bind(app: &membrane::App) -> membrane::Result<Server> {
    Server::bind(app, ServeOptions::new().listen("127.0.0.1:0")).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_over_http1_and_http2_and_a_reload_swaps_the_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let Some((cert, key)) = certificate(dir.path(), "one") else {
        return;
    };
    let Some((cert2, key2)) = certificate(dir.path(), "two") else {
        return;
    };
    // The manifest's paths; a reload reads whatever they hold then.
    let (live_cert, live_key) = (dir.path().join("live.pem"), dir.path().join("live.key"));
    std::fs::copy(&cert, &live_cert).unwrap();
    std::fs::copy(&key, &live_key).unwrap();
    let app = load(TlsSpec::new(&live_cert, &live_key), None).await;
    let server = bind(&app).await.expect("binds");
    let url = format!("https://127.0.0.1:{}/", server.local_addr().unwrap().port());
    let tls = server.tls().expect("the server speaks TLS");
    let (tx, task) = run(server);
    let fetch = |url: String, ca: PathBuf, extra: &'static [&'static str]| {
        tokio::task::spawn_blocking(move || curl(&url, &ca, extra))
    };
    let (code, body, version) = fetch(url.clone(), cert.clone(), &["--http1.1"])
        .await
        .unwrap();
    assert_eq!(
        (code, body.as_str(), version.as_str()),
        (0, "hello\n", "1.1")
    );
    let (code, body, version) = fetch(url.clone(), cert.clone(), &["--http2"])
        .await
        .unwrap();
    assert_eq!((code, body.as_str(), version.as_str()), (0, "hello\n", "2"));
    // Plain HTTP on the TLS port gets no HTTP answer.
    let plain = url.replace("https://", "http://");
    let (code, _, _) = fetch(plain, cert.clone(), &[]).await.unwrap();
    assert_ne!(code, 0);
    // A client that trusts only the second certificate is refused...
    let (code, _, _) = fetch(url.clone(), cert2.clone(), &[]).await.unwrap();
    assert_eq!(
        code, 60,
        "curl's 'peer certificate cannot be authenticated'"
    );
    // ...until the files hold it and the server reads them again.
    std::fs::copy(&cert2, &live_cert).unwrap();
    std::fs::copy(&key2, &live_key).unwrap();
    tls.reload().expect("reloads");
    let (code, body, _) = fetch(url.clone(), cert2.clone(), &[]).await.unwrap();
    assert_eq!((code, body.as_str()), (0, "hello\n"));
    // A reload of a broken file fails and keeps the running certificate.
    std::fs::write(&live_cert, "not a certificate").unwrap();
    let e = tls.reload().unwrap_err();
    assert_eq!(e.key(), Some("app.http.tls_cert"), "{e}");
    let (code, _, _) = fetch(url.clone(), cert2.clone(), &[]).await.unwrap();
    assert_eq!(code, 0);
    let _ = tx.send(());
    task.await.unwrap().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_or_mismatched_certificate_is_refused_at_load() {
    let dir = tempfile::tempdir().unwrap();
    let Some((cert, key)) = certificate(dir.path(), "one") else {
        return;
    };
    let Some((_, other_key)) = certificate(dir.path(), "two") else {
        return;
    };
    let garbage = dir.path().join("garbage.pem");
    std::fs::write(&garbage, "-----BEGIN CERTIFICATE-----\nnot base64\n").unwrap();
    let empty = dir.path().join("empty.pem");
    std::fs::write(&empty, "").unwrap();
    let missing = dir.path().join("missing.pem");
    let cases = [
        (TlsSpec::new(&garbage, &key), "app.http.tls_cert"),
        (TlsSpec::new(&empty, &key), "app.http.tls_cert"),
        (TlsSpec::new(&missing, &key), "app.http.tls_cert"),
        (TlsSpec::new(&cert, &missing), "app.http.tls_key"),
        (TlsSpec::new(&cert, &other_key), "app.http.tls_key"),
        (
            TlsSpec::new(&cert, &key).client_ca(&empty),
            "app.http.tls_client_ca",
        ),
    ];
    for (tls, want) in cases {
        let app = load(tls.clone(), None).await;
        let e = bind(&app).await.unwrap_err();
        assert_eq!(
            (e.kind(), e.key()),
            (ErrorKind::Manifest, Some(want)),
            "{tls:?}: {e}"
        );
    }
    let app = load(TlsSpec::new(&cert, &other_key), None).await;
    let e = bind(&app).await.unwrap_err();
    assert!(e.to_string().contains("does not belong"), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_never_shakes_hands_is_cut_off() {
    let dir = tempfile::tempdir().unwrap();
    let Some((cert, key)) = certificate(dir.path(), "one") else {
        return;
    };
    let app = load(TlsSpec::new(&cert, &key), Some(Duration::from_millis(300))).await;
    let server = bind(&app).await.expect("binds");
    let addr = server.local_addr().unwrap();
    let (tx, task) = run(server);
    // Connects and sends nothing: the server closes the connection by itself.
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let mut buf = [0u8; 64];
    let n = tokio::time::timeout(Duration::from_secs(30), stream.read(&mut buf))
        .await
        .expect("the server closes a silent connection")
        .unwrap_or(0);
    assert_eq!(n, 0, "closed without an answer");
    let metrics = app.metrics_text();
    assert!(
        metrics.contains("reason=\"first-request-timeout\""),
        "counted: {metrics}"
    );
    let _ = tx.send(());
    task.await.unwrap().unwrap();
}

/// openssl with `args`, true when it succeeded.
fn openssl(args: &[&str]) -> bool {
    Command::new("openssl")
        .args(args)
        .output()
        .is_ok_and(|o| o.status.success())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mutual_tls_admits_only_clients_with_a_certificate_of_the_ca() {
    let dir = tempfile::tempdir().unwrap();
    let Some((cert, key)) = certificate(dir.path(), "server") else {
        return;
    };
    let Some((ca, ca_key)) = certificate(dir.path(), "clients-ca") else {
        return;
    };
    let Some((stranger, stranger_key)) = certificate(dir.path(), "stranger") else {
        return;
    };
    let p = |n: &str| dir.path().join(n).display().to_string();
    assert!(openssl(&[
        "req",
        "-new",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-subj",
        "/CN=client",
        "-keyout",
        &p("client.key"),
        "-out",
        &p("client.csr"),
    ]));
    // A version 3 certificate for client authentication (webpki refuses version 1).
    std::fs::write(
        dir.path().join("client.ext"),
        "basicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=clientAuth\n",
    )
    .unwrap();
    assert!(openssl(&[
        "x509",
        "-extfile",
        &p("client.ext"),
        "-req",
        "-in",
        &p("client.csr"),
        "-CA",
        &ca.display().to_string(),
        "-CAkey",
        &ca_key.display().to_string(),
        "-CAcreateserial",
        "-days",
        "2",
        "-out",
        &p("client.pem"),
    ]));
    let app = load(TlsSpec::new(&cert, &key).client_ca(&ca), None).await;
    let server = bind(&app).await.expect("binds");
    let url = format!("https://127.0.0.1:{}/", server.local_addr().unwrap().port());
    let (tx, task) = run(server);
    let fetch = |extra: Vec<String>| {
        let (url, cert) = (url.clone(), cert.clone());
        tokio::task::spawn_blocking(move || {
            let extra: Vec<&str> = extra.iter().map(String::as_str).collect();
            curl(&url, &cert, &extra)
        })
    };
    let with = |c: String, k: String| vec!["--cert".to_string(), c, "--key".to_string(), k];
    let (code, body, _) = fetch(with(p("client.pem"), p("client.key"))).await.unwrap();
    assert_eq!((code, body.as_str()), (0, "hello\n"));
    // No certificate, or one the CA did not sign: no answer.
    let (code, _, _) = fetch(Vec::new()).await.unwrap();
    assert_ne!(code, 0);
    let strange = with(
        stranger.display().to_string(),
        stranger_key.display().to_string(),
    );
    let (code, _, _) = fetch(strange).await.unwrap();
    assert_ne!(code, 0);
    let metrics = app.metrics_text();
    assert!(metrics.contains("reason=\"tls-handshake\""), "{metrics}");
    let _ = tx.send(());
    task.await.unwrap().unwrap();
}

/// A reload while a long response streams: the response arrives whole on its connection.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_while_a_response_streams_drops_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let Some((cert, key)) = certificate(dir.path(), "one") else {
        return;
    };
    let Some((cert2, key2)) = certificate(dir.path(), "two") else {
        return;
    };
    let (live_cert, live_key) = (dir.path().join("live.pem"), dir.path().join("live.key"));
    std::fs::copy(&cert, &live_cert).unwrap();
    std::fs::copy(&key, &live_key).unwrap();
    let app = runtime()
        .load_spec(
            AppSpec::new()
                .module("m", ModuleSpec::from_file(guests::HTTP_PROBE))
                .http(
                    HttpSpec::default()
                        .route("/", "m")
                        .tls(TlsSpec::new(&live_cert, &live_key)),
                ),
        )
        .await
        .expect("app loads");
    let server = bind(&app).await.expect("binds");
    let port = server.local_addr().unwrap().port();
    let tls = server.tls().unwrap();
    let (tx, task) = run(server);
    // 32 MiB, more than the socket and pipe buffers between the guest and this test hold:
    // while the test has read only the first MiB, the guest is still writing.
    let n: usize = 32 << 20;
    let mut child = Command::new("curl")
        .args(["-sS", "--max-time", "60", "--cacert"])
        .arg(&cert)
        .arg(format!("https://127.0.0.1:{port}/big?n={n}"))
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("curl runs");
    let mut out = child.stdout.take().unwrap();
    let mut first = vec![0u8; 1 << 20];
    let out = tokio::task::spawn_blocking(move || {
        std::io::Read::read_exact(&mut out, &mut first).map(|()| out)
    })
    .await
    .unwrap()
    .expect("the first MiB arrives");
    std::fs::copy(&cert2, &live_cert).unwrap();
    std::fs::copy(&key2, &live_key).unwrap();
    tls.reload().expect("reloads");
    let (rest, status) = tokio::task::spawn_blocking(move || {
        let mut out = out;
        let mut rest = Vec::new();
        let _ = std::io::Read::read_to_end(&mut out, &mut rest);
        (rest.len(), child.wait().unwrap())
    })
    .await
    .unwrap();
    assert!(
        status.success(),
        "the streaming response ended cleanly: {status}"
    );
    assert_eq!((1 << 20) + rest, n, "every byte arrived");
    // New handshakes get the new certificate.
    let url = format!("https://127.0.0.1:{port}/big?n=3");
    let (code, body, _) = tokio::task::spawn_blocking(move || curl(&url, &cert2, &[]))
        .await
        .unwrap();
    assert_eq!((code, body.as_str()), (0, "xxx"));
    let _ = tx.send(());
    task.await.unwrap().unwrap();
}

/// `membrane serve` says https, and reads its certificate again on SIGHUP.
#[test]
fn membrane_serve_reloads_its_certificate_on_sighup() {
    reloads_its_certificate(false);
}

#[test]
fn membrane_serve_watch_reloads_its_certificate_when_the_files_change() {
    reloads_its_certificate(true);
}

/// `membrane serve` swaps its certificate for the files' new contents: on SIGHUP, or by
/// itself under `--watch`.
fn reloads_its_certificate(watch: bool) {
    let dir = tempfile::tempdir().unwrap();
    let Some((cert, key)) = certificate(dir.path(), "one") else {
        return;
    };
    let Some((cert2, key2)) = certificate(dir.path(), "two") else {
        return;
    };
    let (live_cert, live_key) = (dir.path().join("live.pem"), dir.path().join("live.key"));
    std::fs::copy(&cert, &live_cert).unwrap();
    std::fs::copy(&key, &live_key).unwrap();
    let manifest = write_manifest(
        dir.path(),
        &format!(
            "[app.http]\nroutes = {{ \"/\" = \"m\" }}\ntls_cert = \"live.pem\"\ntls_key = \"live.key\"\n\
             [modules.m]\ncomponent = {:?}\n",
            guests::HTTP_HELLO
        ),
    );
    let args: &[&str] = if watch { &["--watch"] } else { &[] };
    let p = super::cli::start_with(&manifest, args, &[]);
    let url = format!("https://127.0.0.1:{}/", p.addr.port());
    assert_eq!(curl(&url, &cert, &[]).0, 0);
    std::fs::copy(&cert2, &live_cert).unwrap();
    std::fs::copy(&key2, &live_key).unwrap();
    if !watch {
        p.signal(rustix::process::Signal::HUP);
    }
    p.wait_for_log("TLS certificate reloaded");
    let (code, body, _) = curl(&url, &cert2, &[]);
    assert_eq!((code, body.as_str()), (0, "hello\n"));
    assert_eq!(curl(&url, &cert, &[]).0, 60, "the old certificate is gone");
}
