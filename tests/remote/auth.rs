//! The connection of an app with `remote` modules to NATS: credentials (user/password and
//! NKey, from an environment variable or a file), TLS, a server that cannot be reached,
//! an outage while loaded, and a module nobody serves. Real `nats-server` processes on
//! 127.0.0.1 and the real `adder` guest; every test skips loudly without `nats-server`.

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use membrane::remote::RemoteHost;
use membrane::{App, AppSpec, ErrorKind, ModuleSpec, NatsSpec, Placement, Secret, Val};

use super::nats::{Nats, nats_server, tls_files, user_nkey};
use crate::common::*;

const ADD: &str = "membrane-test:placement/math#add";

/// The adder's timeout: long, so that a call failing fast is told from one that waited.
const TIMEOUT: Duration = Duration::from_secs(30);

/// How long a call that must fail "at once" may take: far below [`TIMEOUT`], so that a
/// call that waited for its deadline is told apart, and far above the milliseconds failing
/// takes, so that a machine busy with other builds does not fail the test.
const FAST: Duration = Duration::from_secs(5);

/// An app `auth` whose module `adder` is remote, reached through `nats`.
fn spec(nats: NatsSpec) -> AppSpec {
    AppSpec::new().name("auth").nats(nats).module(
        "adder",
        ModuleSpec::from_file(guests::ADDER)
            .placement(Placement::Remote)
            .timeout(TIMEOUT),
    )
}

/// Loads the caller's side of the app.
async fn load(nats: NatsSpec) -> membrane::Result<App> {
    runtime().load_spec(spec(nats)).await
}

/// Loads the app as a host of `adder` and serves it. The host must outlive the calls.
async fn serve(nats: NatsSpec) -> (App, RemoteHost) {
    let app = runtime()
        .load_spec(spec(nats).host(["adder"]))
        .await
        .expect("the host loads");
    let host = membrane::remote::RemoteHost::start(&app)
        .await
        .expect("the host serves");
    (app, host)
}

/// `adder.add(a, b)`, timed.
async fn add(app: &App, a: u32, b: u32) -> (membrane::Result<u32>, Duration) {
    let t = Instant::now();
    let out = app.call("adder", ADD, &[Val::U32(a), Val::U32(b)]).await;
    let took = t.elapsed();
    let out = out.map(|vals| match vals.as_slice() {
        [Val::U32(n)] => *n,
        other => panic!("add returned {other:?}"),
    });
    (out, took)
}

/// Asserts `add` works end to end through a host.
async fn adds(app: &App) {
    let (out, _) = add(app, 40, 2).await;
    assert_eq!(out.expect("a remote call"), 42);
}

/// Asserts that loading failed with `kind` and `key`.
fn refused(result: membrane::Result<App>, kind: ErrorKind, key: &str) -> membrane::Error {
    let e = result.err().expect("the load must fail");
    assert_eq!(e.kind(), kind, "{e:#}");
    assert_eq!(e.key(), Some(key), "{e:#}");
    e
}

/// An environment variable name no other test (or test run) uses.
fn unique_var(what: &str) -> String {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    format!(
        "MEMBRANE_TEST_NATS_{what}_{}_{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// Sets a fresh environment variable to `value` and returns its name.
fn env_var(what: &str, value: &str) -> String {
    let var = unique_var(what);
    // SAFETY: a name of its own, set once and never removed while the tests run.
    unsafe { std::env::set_var(&var, value) };
    var
}

/// Writes `text` to `name` in `dir`.
fn file(dir: &Path, name: &str, text: &str) -> std::path::PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

/// A port on 127.0.0.1 nothing listens on (bound, then released).
fn dead_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .unwrap()
        .port()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn user_and_password_are_required_and_checked() {
    let Some(_) = nats_server() else { return };
    let server = Nats::with_users(&[("svc", "right horse battery")]);
    let dir = tempfile::tempdir().unwrap();

    // No credentials, then a wrong password (from a file), then an unknown user.
    let t = Instant::now();
    refused(
        load(NatsSpec::new([&server.url])).await,
        ErrorKind::Denied,
        "app.nats_auth",
    );
    assert!(t.elapsed() < FAST, "refused after {:?}", t.elapsed());
    let wrong = file(dir.path(), "wrong", "staple\n");
    refused(
        load(NatsSpec::new([&server.url]).user_password("svc", Secret::File(wrong))).await,
        ErrorKind::Denied,
        "app.nats_auth",
    );
    let var = env_var("PASSWORD", "right horse battery");
    refused(
        load(NatsSpec::new([&server.url]).user_password("mallory", Secret::Env(var.clone()))).await,
        ErrorKind::Denied,
        "app.nats_auth",
    );

    // The password from an environment variable: a host serves, a caller calls.
    let by_env = NatsSpec::new([&server.url]).user_password("svc", Secret::Env(var));
    let (_host_app, host) = serve(by_env.clone()).await;
    let caller = load(by_env).await.expect("loads with the right password");
    adds(&caller).await;

    // From a file (surrounding whitespace ignored), for the caller and another host.
    let right = file(dir.path(), "password", "  right horse battery\n");
    let by_file = NatsSpec::new([&server.url]).user_password("svc", Secret::File(right));
    let caller = load(by_file.clone())
        .await
        .expect("loads with the password file");
    adds(&caller).await;
    host.shutdown().await;
    let (_host_app, _host) = serve(by_file).await;
    adds(&caller).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nkey_seeds_are_checked() {
    let Some(_) = nats_server() else { return };
    let (public, seed) = user_nkey();
    let server = Nats::with_nkey(&public);
    let dir = tempfile::tempdir().unwrap();

    refused(
        load(NatsSpec::new([&server.url])).await,
        ErrorKind::Denied,
        "app.nats_auth",
    );
    let (_, other_seed) = user_nkey();
    refused(
        load(NatsSpec::new([&server.url]).nkey(Secret::Env(env_var("SEED", &other_seed)))).await,
        ErrorKind::Denied,
        "app.nats_auth",
    );
    let other = file(dir.path(), "other.nk", &other_seed);
    refused(
        load(NatsSpec::new([&server.url]).nkey(Secret::File(other))).await,
        ErrorKind::Denied,
        "app.nats_auth",
    );

    let by_env = NatsSpec::new([&server.url]).nkey(Secret::Env(env_var("SEED", &seed)));
    let by_file =
        NatsSpec::new([&server.url]).nkey(Secret::File(file(dir.path(), "app.nk", &seed)));
    let (_host_app, _host) = serve(by_env).await;
    let caller = load(by_file).await.expect("loads with the seed file");
    adds(&caller).await;
}

#[tokio::test]
async fn a_credential_that_cannot_be_read_fails_the_load_before_connecting() {
    // Nothing listens here: a connection attempt would fail with Unavailable instead.
    let url = format!("nats://127.0.0.1:{}", dead_port());
    let dir = tempfile::tempdir().unwrap();

    let unset = unique_var("UNSET");
    assert!(std::env::var_os(&unset).is_none());
    refused(
        load(NatsSpec::new([&url]).user_password("svc", Secret::Env(unset.clone()))).await,
        ErrorKind::Manifest,
        "app.nats_auth.password_env",
    );
    refused(
        load(NatsSpec::new([&url]).nkey(Secret::Env(unset))).await,
        ErrorKind::Manifest,
        "app.nats_auth.nkey_env",
    );
    let empty = env_var("EMPTY", " \n");
    refused(
        load(NatsSpec::new([&url]).user_password("svc", Secret::Env(empty))).await,
        ErrorKind::Manifest,
        "app.nats_auth.password_env",
    );

    let missing = dir.path().join("missing");
    refused(
        load(NatsSpec::new([&url]).user_password("svc", Secret::File(missing.clone()))).await,
        ErrorKind::Manifest,
        "app.nats_auth.password_file",
    );
    // A directory cannot be read as a file (even by root, unlike a file without
    // permissions).
    refused(
        load(NatsSpec::new([&url]).user_password("svc", Secret::File(dir.path().into()))).await,
        ErrorKind::Manifest,
        "app.nats_auth.password_file",
    );
    refused(
        load(NatsSpec::new([&url]).nkey(Secret::File(missing))).await,
        ErrorKind::Manifest,
        "app.nats_auth.nkey_file",
    );
}

#[tokio::test]
async fn an_inline_password_is_not_a_manifest_key() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(guests::ADDER, dir.path().join("adder.wasm")).unwrap();
    let manifest = write_manifest(
        dir.path(),
        &format!(
            "[app]\nname = \"auth\"\nnats = \"nats://127.0.0.1:{}\"\n\n\
             [app.nats_auth]\nuser = \"svc\"\npassword = \"inline\"\n\n\
             [modules.adder]\ncomponent = \"adder.wasm\"\nplacement = \"remote\"\n",
            dead_port()
        ),
    );
    let e = runtime().load(&manifest).await.err().expect("refused");
    assert_eq!(e.kind(), ErrorKind::Manifest, "{e:#}");
    // An unknown key, as TOML reports it: at its line, without a manifest key.
    assert_eq!(e.location().map(|l| l.line), Some(7), "{e:#}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_with_the_servers_ca() {
    let Some(_) = nats_server() else { return };
    let Some(tls) = tls_files() else { return };
    let server = Nats::with_tls(&tls);
    let url = format!("tls://127.0.0.1:{}", server.port);

    // Trusting the test CA: a host serves and a caller calls over TLS.
    let trusted = NatsSpec::new([&url]).tls_ca(&tls.ca);
    let (_host_app, _host) = serve(trusted.clone()).await;
    let caller = load(trusted).await.expect("loads over TLS");
    adds(&caller).await;

    // The system's roots do not know the test CA.
    let t = Instant::now();
    let e = refused(
        load(NatsSpec::new([&url])).await,
        ErrorKind::Unavailable,
        "app.nats",
    );
    eprintln!(
        "tls:// without tls_ca: {:?}: {}",
        t.elapsed(),
        membrane::chain(&e)
    );
    assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());

    // A nats:// URL to a server that requires TLS: the client follows the server into
    // TLS, so it fails like tls:// without the CA and works with it, never hangs.
    let t = Instant::now();
    let e = refused(
        load(NatsSpec::new([&server.url])).await,
        ErrorKind::Unavailable,
        "app.nats",
    );
    eprintln!(
        "nats:// to a TLS server: {:?}: {}",
        t.elapsed(),
        membrane::chain(&e)
    );
    assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());
    let app = load(NatsSpec::new([&server.url]).tls_ca(&tls.ca))
        .await
        .expect("nats:// to a TLS server, trusting its CA");
    adds(&app).await;

    // A tls_ca file that is not there fails the load cleanly.
    let t = Instant::now();
    let missing = tls.ca.with_file_name("missing.pem");
    let e = load(NatsSpec::new([&url]).tls_ca(missing))
        .await
        .err()
        .expect("refused");
    eprintln!(
        "a missing tls_ca: {:?} {:?} in {:?}: {}",
        e.kind(),
        e.key(),
        t.elapsed(),
        membrane::chain(&e)
    );
    assert_eq!(e.kind(), ErrorKind::Manifest, "{e:#}");
    assert_eq!(e.key(), Some("app.nats_auth.tls_ca"), "{e:#}");
    assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());
}

#[tokio::test]
async fn an_unreachable_server_fails_the_load_at_once() {
    let Some(_) = nats_server() else { return };
    let url = format!("nats://127.0.0.1:{}", dead_port());
    let t = Instant::now();
    refused(
        load(NatsSpec::new([&url])).await,
        ErrorKind::Unavailable,
        "app.nats",
    );
    let took = t.elapsed();
    eprintln!("unreachable server refused in {took:?}");
    assert!(took < Duration::from_secs(4), "{took:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_module_nobody_serves_is_unavailable_at_once() {
    let Some(_) = nats_server() else { return };
    let server = Nats::start();
    let caller = load(NatsSpec::new([&server.url]))
        .await
        .expect("loads without a host");
    for _ in 0..3 {
        let (out, took) = add(&caller, 1, 2).await;
        let e = out.expect_err("nobody serves adder");
        assert_eq!(e.kind(), ErrorKind::Unavailable, "{e:#}");
        assert_eq!(e.module(), Some("adder"), "{e:#}");
        assert!(took < FAST, "no responders answered after {took:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outage_fails_calls_fast_and_both_sides_reconnect() {
    let Some(_) = nats_server() else { return };
    let mut server = Nats::start();
    let nats = NatsSpec::new([&server.url]);
    let (_host_app, _host) = serve(nats.clone()).await;
    let caller = load(nats).await.expect("loads");
    adds(&caller).await;

    server.kill();
    let down = Instant::now();
    // Long enough for the reconnection back-off to grow near its cap.
    let mut times = Vec::new();
    while down.elapsed() < Duration::from_secs(2) {
        let (out, took) = add(&caller, 1, 1).await;
        times.push(took);
        let e = out.expect_err("NATS is down");
        assert_eq!(e.kind(), ErrorKind::Unavailable, "{e:#}");
        assert!(took < FAST, "a call during the outage took {took:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    eprintln!("calls during the outage failed in {times:?}");

    server.restart();
    let up = Instant::now();
    let mut failed = 0;
    loop {
        let (out, took) = add(&caller, 20, 22).await;
        match out {
            Ok(n) => {
                assert_eq!(n, 42);
                break;
            }
            Err(e) => {
                assert_eq!(e.kind(), ErrorKind::Unavailable, "{e:#}");
                assert!(took < FAST, "a call while reconnecting took {took:?}");
                failed += 1;
            }
        }
        // A hang guard: reconnecting takes the client's back-off (under a second or two).
        assert!(
            up.elapsed() < HANG_GUARD,
            "calls did not come back in {HANG_GUARD:?} after the restart ({failed} failed)"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    eprintln!(
        "outage of {:?}; calls back {:?} after the restart ({failed} failed meanwhile)",
        up - down,
        up.elapsed()
    );
    for i in 0..20 {
        let (out, _) = add(&caller, i, i).await;
        assert_eq!(out.expect("calls keep working"), 2 * i);
    }
}

/// A call waiting for its answer when the connection drops. The server is stopped
/// (SIGSTOP) so that the call is surely in flight, then killed: the caller's connection
/// goes down at once, and the call should fail then with `Unavailable` rather than wait
/// for its deadline.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_in_flight_when_the_connection_drops_fails_fast() {
    let Some(_) = nats_server() else { return };
    let mut server = Nats::start();
    let nats = NatsSpec::new([&server.url]);
    let (_host_app, _host) = serve(nats.clone()).await;
    let caller = load(nats).await.expect("loads");
    adds(&caller).await;

    let pid = server.pid().expect("running").to_string();
    let stopped = std::process::Command::new("kill")
        .args(["-STOP", &pid])
        .status()
        .expect("kill runs");
    assert!(stopped.success());
    // SIGSTOP lands on each of the server's threads as it next leaves the kernel: until
    // every one shows `T` a running thread could still route the call.
    crate::common::eventually("the NATS server stops", || all_stopped(&pid)).await;
    let in_flight = {
        let caller = caller.clone();
        tokio::spawn(async move { add(&caller, 1, 1).await })
    };
    // Time for the call to be written into the stopped server's socket. Nothing on the
    // caller's side tells that it was (a remote call takes no place in the caller's pool),
    // and nothing needs to: a call that is still being sent when the connection drops must
    // fail just as fast (see the outage test), so a busy machine that is slower here
    // changes which of the two paths is taken, never the outcome.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let t = Instant::now();
    server.kill();
    let (out, took) = in_flight.await.unwrap();
    let after_kill = t.elapsed();
    eprintln!("the call in flight ended {after_kill:?} after the kill ({took:?} in all)");
    let e = out.expect_err("the connection dropped");
    assert_eq!(e.kind(), ErrorKind::Unavailable, "{}", membrane::chain(&e));
    assert!(after_kill < FAST, "{after_kill:?}");
}

/// Loading validates the declaration before it connects: a user without a password is a
/// manifest problem, whatever the server would say.
#[tokio::test]
async fn a_bad_declaration_is_reported_before_connecting() {
    let url = format!("nats://127.0.0.1:{}", dead_port());
    let mut nats = NatsSpec::new([&url]);
    nats.user = Some("svc".into());
    refused(load(nats).await, ErrorKind::Manifest, "app.nats_auth");
}

/// Whether every thread of process `pid` is stopped (state `T` in /proc).
fn all_stopped(pid: &str) -> bool {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return false;
    };
    tasks.flatten().all(|t| {
        std::fs::read_to_string(t.path().join("stat")).is_ok_and(|stat| {
            // The state follows the command name in parentheses, which may hold spaces.
            stat.rsplit_once(") ")
                .is_some_and(|(_, rest)| rest.starts_with('T'))
        })
    })
}
