//! `membrane serve` as the caller of a hostile host: a served app whose HTTP module (`web`)
//! links to a remote module (`greet`) answered by a fake host (`fake.rs`) on a NATS server
//! that carries messages of up to 64 MiB. Errors with millions of causes or a message of
//! 20 MiB, and a result past the `hostcall` limit, each make one request fail with a 500
//! that carries no detail, logged in one line of bounded length; the server stays up and
//! answers the next request. Once in this process (the library's server), once as a real
//! `membrane serve` process.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use membrane::ErrorKind;
use tracing_subscriber::fmt::MakeWriter;

use super::fake::{ERR, Fake, HOST, error_of, string_result};
use super::host::app_name;
use super::nats::{Nats, nats_server};
use crate::common::{guests, runtime, write_manifest};
use crate::serve::cli::start_with;
use crate::serve::{Reply, get, serve_app};

/// A bound on waits for what surely comes: only a broken test waits this long.
const GUARD: Duration = Duration::from_secs(60);

/// The longest log line a failed request can take: the text of a peer's error that a
/// caller keeps, measured as printed (wire/bounds.rs: a 16 KiB message and 48 KiB of
/// causes), plus room for the marks of what was cut and the host's own words. (A JSON log
/// writes each escape's backslash twice: at most twice as long.)
const MAX_LINE: usize = (16 + 48 + 4) << 10;

/// web (HTTP, local) -> greet (remote) of app `name` on `url`.
fn manifest(dir: &Path, name: &str, url: &str) -> PathBuf {
    write_manifest(
        dir,
        &format!(
            "[app]\nname = {name:?}\nnats = {url:?}\n\
             [app.http]\nroutes = {{ \"/\" = \"web\" }}\n\
             [modules.web]\ncomponent = {:?}\nlinks = {{ \"acme:greet/api\" = \"greet\" }}\n\
             [modules.greet]\ncomponent = {:?}\nplacement = \"remote\"\n",
            guests::GREET_HTTP,
            guests::GREET_V1
        ),
    )
}

/// A hostile answer: what it is, its headers, its body, and the kind of the error the
/// caller logs for it.
type Case = (
    &'static str,
    Vec<(&'static str, &'static str)>,
    Vec<u8>,
    ErrorKind,
);

fn cases() -> Vec<Case> {
    let error = |message: &str, causes| error_of("greet", "denied", message, causes);
    vec![
        // The issue's: 6 MB of `"",` overflowed the stack of `membrane call`.
        (
            "an error of two million causes",
            vec![HOST, ERR],
            error("no", 2_000_000),
            ErrorKind::Crashed,
        ),
        (
            "an error with a message of 20 MiB",
            vec![HOST, ERR],
            error(&"m".repeat(20 << 20), 0),
            ErrorKind::Crashed,
        ),
        // Within 1 MiB, so read: kept to its bounds, escaped.
        (
            "an error of terminal escapes and a quarter of a million causes",
            vec![HOST, ERR],
            error(&"\u{1b}[31mred".repeat(12_000), 250_000),
            ErrorKind::Denied,
        ),
        // The longest text a caller keeps, every byte of it needing an escape.
        (
            "an error of escape characters as long as a caller keeps",
            vec![HOST, ERR],
            serde_json::to_vec(&serde_json::json!({
                "kind": "denied",
                "message": "\u{1b}".repeat(16 << 10),
                "module": "greet",
                "export": null,
                "key": null,
                "upstream": false,
                "exit": null,
                "causes": (0..6)
                    .map(|i| format!("{i}{}", "\u{1b}".repeat((8 << 10) - 1)))
                    .collect::<Vec<_>>(),
            }))
            .unwrap(),
            ErrorKind::Denied,
        ),
        (
            "a string result of 60 MiB",
            vec![HOST],
            string_result(&vec![b'x'; 60 << 20]),
            ErrorKind::HostcallLimit,
        ),
    ]
}

/// `GET /bob` while `fake` answers the link's call with `headers` and `body`.
async fn request(
    addr: std::net::SocketAddr,
    fake: &mut Fake,
    headers: &[(&str, &str)],
    body: Vec<u8>,
) -> Reply {
    let get = tokio::spawn(async move { get(addr, "/bob").await });
    fake.answer(headers, body).await;
    tokio::time::timeout(GUARD, get)
        .await
        .expect("the request is answered")
        .expect("the client does not panic")
}

/// What the server logs, one JSON object per line.
#[derive(Clone, Default)]
struct Log(Arc<Mutex<Vec<u8>>>);

impl Write for Log {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for Log {
    type Writer = Log;

    fn make_writer(&'a self) -> Log {
        self.clone()
    }
}

impl Log {
    /// The lines logged since the last call.
    fn take(&self) -> Vec<String> {
        let bytes = std::mem::take(&mut *self.0.lock().unwrap());
        String::from_utf8(bytes)
            .expect("the log is UTF-8")
            .lines()
            .map(str::to_owned)
            .collect()
    }
}

// One thread, so that the subscriber set here sees every task of the server.
#[tokio::test(flavor = "current_thread")]
async fn the_server_answers_500_logs_within_bounds_and_goes_on() {
    let Some(_) = nats_server() else { return };
    let log = Log::default();
    let subscriber = tracing_subscriber::fmt()
        .json()
        .with_writer(log.clone())
        .finish();
    let _default = tracing::subscriber::set_default(subscriber);
    let nats = Nats::with_max_payload(64 << 20);
    let name = app_name();
    let dir = tempfile::tempdir().unwrap();
    let app = runtime()
        .load(manifest(dir.path(), &name, &nats.url))
        .await
        .unwrap();
    let served = serve_app(app).await;
    let mut fake = Fake::start(&nats.url, &name, "greet").await;
    for (what, headers, body, kind) in cases() {
        let r = request(served.addr, &mut fake, &headers, body).await;
        assert_eq!(
            (r.status, r.body.as_str()),
            (500, "internal error\n"),
            "{what}"
        );
        let failed: Vec<serde_json::Value> = log
            .take()
            .into_iter()
            .inspect(|line| assert!(line.len() < 2 * MAX_LINE, "{what}: {} bytes", line.len()))
            .map(|line| serde_json::from_str(&line).unwrap())
            .filter(|e: &serde_json::Value| e["fields"]["message"] == "request failed: 500")
            .collect();
        assert_eq!(failed.len(), 1, "{what}: {failed:#?}");
        let fields = &failed[0]["fields"];
        assert_eq!(fields["kind"], kind.as_str(), "{what}");
        let error = fields["error"].as_str().unwrap();
        assert!(error.len() < MAX_LINE, "{what}: {} bytes", error.len());
        assert!(!error.contains('\u{1b}'), "{what}: raw controls");
        if what.contains("quarter") {
            assert!(
                error.contains("more causes cut"),
                "{what}: the cut is visible"
            );
        }
    }
    // Still serving: an honest answer goes through.
    let r = request(served.addr, &mut fake, &[HOST], string_result(b"hi bob")).await;
    assert_eq!((r.status, r.body.as_str()), (200, "hi bob"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_membrane_serve_process_answers_500_logs_within_bounds_and_goes_on() {
    let Some(_) = nats_server() else { return };
    let nats = Nats::with_max_payload(64 << 20);
    let name = app_name();
    let dir = tempfile::tempdir().unwrap();
    let mut p = start_with(&manifest(dir.path(), &name, &nats.url), &[], &[]);
    let mut fake = Fake::start(&nats.url, &name, "greet").await;
    for (what, headers, body, kind) in cases() {
        let r = request(p.addr, &mut fake, &headers, body).await;
        assert_eq!(
            (r.status, r.body.as_str()),
            (500, "internal error\n"),
            "{what}"
        );
        let line = p.wait_for_log("request failed: 500");
        assert!(line.len() < MAX_LINE, "{what}: {} bytes", line.len());
        assert!(
            line.contains(&format!("kind={kind}")),
            "{what}: {line:.2000}"
        );
        assert!(!line.contains('\u{1b}'), "{what}: raw controls");
    }
    let r = request(p.addr, &mut fake, &[HOST], string_result(b"hi bob")).await;
    assert_eq!((r.status, r.body.as_str()), (200, "hi bob"));
    assert!(p.child.try_wait().unwrap().is_none(), "the server is up");
}
