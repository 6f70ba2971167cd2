//! `membrane serve` as a process: signals, logs, traces, bad command lines.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use crate::common::{guests, membrane, stderr, write_manifest};

/// A running `membrane serve`; killed when dropped.
pub struct Proc {
    pub child: Child,
    pub addr: SocketAddr,
    /// The admin listener, when the app has one.
    pub admin: Option<SocketAddr>,
    lines: std::sync::mpsc::Receiver<String>,
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Proc {
    /// The admin token `membrane serve` made up and wrote for `membrane reload`.
    pub fn token(&self) -> String {
        let admin = self.admin.expect("an admin listener");
        let path = crate::common::runtime_dir().join(format!(
            "admin-{}-{}.token",
            admin.ip(),
            admin.port()
        ));
        std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
            .trim()
            .to_string()
    }

    /// The log lines written so far (waits `settle` for more).
    pub fn logs(&self, settle: Duration) -> Vec<String> {
        let mut out = Vec::new();
        let end = Instant::now() + settle;
        while let Ok(l) = self
            .lines
            .recv_timeout(end.saturating_duration_since(Instant::now()))
        {
            out.push(l);
        }
        out
    }

    /// What each thread of the server is doing now, for a test that found it stuck: name,
    /// state and the kernel function it waits in (`/proc/<pid>/task/*`), then the log lines
    /// written since the last read.
    pub fn diagnose(&self) -> String {
        let mut out = String::new();
        let tasks = format!("/proc/{}/task", self.child.id());
        let mut ids: Vec<_> = std::fs::read_dir(&tasks)
            .map(|d| d.filter_map(|e| e.ok()).map(|e| e.file_name()).collect())
            .unwrap_or_default();
        ids.sort();
        for id in ids {
            let read = |f: &str| {
                std::fs::read_to_string(Path::new(&tasks).join(&id).join(f)).unwrap_or_default()
            };
            let stat = read("stat");
            // The state follows the name in parentheses, which may itself hold spaces.
            let state = stat.rsplit_once(") ").map_or("?", |(_, r)| &r[..1]);
            out.push_str(&format!(
                "thread {} {:?} state {state} waits in {:?}\n",
                id.to_string_lossy(),
                read("comm").trim(),
                read("wchan")
            ));
        }
        while let Ok(l) = self.lines.try_recv() {
            out.push_str(&l);
            out.push('\n');
        }
        out
    }

    /// Waits (up to a minute) for a log line containing `text`.
    pub fn wait_for_log(&self, text: &str) -> String {
        let end = Instant::now() + Duration::from_secs(60);
        while let Ok(l) = self
            .lines
            .recv_timeout(end.saturating_duration_since(Instant::now()))
        {
            if l.contains(text) {
                return l;
            }
        }
        panic!(
            "no log line with {text:?}; the server:\n{}",
            self.diagnose()
        );
    }

    /// Sends the process a signal.
    pub fn signal(&self, sig: rustix::process::Signal) {
        let pid = rustix::process::Pid::from_raw(self.child.id() as i32).unwrap();
        rustix::process::kill_process(pid, sig).unwrap();
    }
}

fn start(manifest: &Path, env: &[(&str, &str)]) -> Proc {
    start_with(manifest, &[], env)
}

/// Starts `membrane serve MANIFEST --listen 127.0.0.1:0 ARGS` with `env`, and waits for the
/// line that says where it listens.
pub fn start_with(manifest: &Path, args: &[&str], env: &[(&str, &str)]) -> Proc {
    let mut cmd = crate::common::membrane_command();
    cmd.args([
        "serve",
        manifest.to_str().unwrap(),
        "--listen",
        "127.0.0.1:0",
    ])
    .args(args)
    .stdout(Stdio::null())
    .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("membrane serve starts");
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    // The first line says where it listens.
    let line = loop {
        let line = rx
            .recv_timeout(Duration::from_secs(120))
            .expect("membrane serve says where it listens");
        if line.contains("serving on http://") || line.contains("serving on https://") {
            break line;
        }
    };
    let after = |marker: &str, end: char| -> Option<SocketAddr> {
        let rest = line.split(marker).nth(1)?;
        rest.split(end).next()?.parse().ok()
    };
    Proc {
        addr: after("serving on http://", ' ')
            .or_else(|| after("serving on https://", ' '))
            .expect("an address"),
        admin: after("admin: http://", '/'),
        child,
        lines: rx,
    }
}

fn probe_manifest(dir: &Path, extra: &str) -> std::path::PathBuf {
    write_manifest(
        dir,
        &format!(
            "[app.http]\nroutes = {{ \"/\" = \"m\" }}\n{extra}\n[modules.m]\ncomponent = {:?}\n",
            guests::HTTP_PROBE
        ),
    )
}

fn sigterm(p: &Proc) {
    p.signal(rustix::process::Signal::TERM);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_drains_requests_in_flight_and_exits_0() {
    let dir = tempfile::tempdir().unwrap();
    let mut p = start(&probe_manifest(dir.path(), ""), &[]);
    let addr = p.addr;
    let in_flight = tokio::spawn(async move { super::get(addr, "/sleep?ms=1500").await });
    tokio::time::sleep(Duration::from_millis(400)).await;
    sigterm(&p);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        tokio::net::TcpStream::connect(addr).await.is_err(),
        "new connections are refused while draining"
    );
    let r = in_flight.await.unwrap();
    assert_eq!((r.status, r.body.as_str()), (200, "slept 1500\n"));
    let status = p.child.wait().unwrap();
    assert_eq!(status.code(), Some(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failures_are_logged_with_their_kind_as_json() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = write_manifest(
        dir.path(),
        &format!(
            "[app.http]\nroutes = {{ \"/\" = \"m\" }}\n[modules.m]\ncomponent = {:?}\nlimits = {{ timeout = \"300ms\", body = \"8B\" }}\n",
            guests::HTTP_PROBE
        ),
    );
    let p = start(&manifest, &[("MEMBRANE_LOG_FORMAT", "json")]);
    assert_eq!(super::get(p.addr, "/trap").await.status, 500);
    assert_eq!(super::get(p.addr, "/spin").await.status, 504);
    let big = super::request("POST", "/echo", vec![b'x'; 100]);
    assert_eq!(super::send(p.addr, big).await.unwrap().status, 413);
    let logs = p.logs(Duration::from_millis(500));
    let events: Vec<serde_json::Value> = logs
        .iter()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    let kinds: Vec<&str> = events
        .iter()
        .filter_map(|e| e["fields"]["kind"].as_str())
        .collect();
    assert!(kinds.contains(&"trap"), "{logs:#?}");
    assert!(kinds.contains(&"timeout"), "{logs:#?}");
    // Each failure names its request's trace (the request span is at debug; its trace id
    // is on the events written while it runs).
    for e in events.iter().filter(|e| e["fields"]["kind"].is_string()) {
        let id = e["fields"]["trace_id"].as_str().unwrap_or_default();
        assert!(
            id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit()),
            "{e}"
        );
    }
    assert!(
        events.iter().any(|e| e["fields"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("413"))),
        "{logs:#?}"
    );
    // No guest detail in what the client saw, but the cause chain in the log.
    assert!(
        events.iter().any(|e| e["fields"]["error"]
            .as_str()
            .is_some_and(|m| m.contains("trapped"))),
        "{logs:#?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_linked_request_traces_each_module_as_a_child_span() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = write_manifest(
        dir.path(),
        &format!(
            "[app.http]\nroutes = {{ \"/\" = \"relay\" }}\n\
             [modules.relay]\ncomponent = {:?}\nlinks = {{ \"membrane-bench:calls/driver\" = \"driver\" }}\n\
             [modules.driver]\ncomponent = {:?}\nlinks = {{ \"membrane-bench:calls/api\" = \"provider\", \"membrane-bench:calls/res\" = \"provider\" }}\n\
             [modules.provider]\ncomponent = {:?}\n",
            guests::HTTP_RELAY,
            guests::BENCH_DRIVER,
            guests::BENCH_PROVIDER
        ),
    );
    let p = start(
        &manifest,
        &[
            ("MEMBRANE_LOG_FORMAT", "json"),
            (
                "MEMBRANE_LOG",
                "info,membrane::http=debug,membrane::call=debug",
            ),
            ("MEMBRANE_LOG_SPANS", "1"),
        ],
    );
    let trace = "4bf92f3577b34da6a3ce929d0e0e4736";
    let req = http::Request::builder()
        .uri("/")
        .header("host", "x")
        .header("traceparent", format!("00-{trace}-00f067aa0ba902b7-01"))
        .body(http_body_util::Full::new(bytes::Bytes::new()))
        .unwrap();
    let r = super::send(p.addr, req).await.unwrap();
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.headers["traceparent"].to_str().unwrap().contains(trace));
    let logs = p.logs(Duration::from_millis(500));
    let closes: Vec<serde_json::Value> = logs
        .iter()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|e| e["fields"]["message"] == "close")
        .collect();
    // The provider's call closes inside the driver's, inside the relay's, inside the request.
    let store = closes
        .iter()
        .find(|e| e["span"]["name"] == "call" && e["span"]["module"] == "provider")
        .unwrap_or_else(|| panic!("no span of the provider's call: {logs:#?}"));
    let parents: Vec<&serde_json::Value> = store["spans"].as_array().unwrap().iter().collect();
    assert_eq!(parents[0]["name"], "request", "{store}");
    assert_eq!(parents[0]["trace_id"], trace, "{store}");
    assert!(
        parents
            .iter()
            .any(|s| s["name"] == "call" && s["module"] == "driver"),
        "{store}"
    );
    assert_eq!(store["span"]["outcome"], "ok", "{store}");
    assert!(store["fields"]["time.busy"].is_string(), "{store}");
}

#[test]
fn bad_command_lines_and_manifests_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = probe_manifest(dir.path(), "");
    let m = manifest.to_str().unwrap();
    let o = membrane(&["serve", m, "--listen", "localhost"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("--listen"), "{}", stderr(&o));
    assert!(!stderr(&o).contains("panicked"));
    // No address anywhere.
    let o = membrane(&["serve", m]);
    assert!(stderr(&o).contains("--listen"), "{}", stderr(&o));
    // An app that is not a service.
    let plain = write_manifest(
        dir.path(),
        &format!("[modules.m]\ncomponent = {:?}\n", guests::HTTP_PROBE),
    );
    let o = membrane(&["serve", plain.to_str().unwrap(), "--listen", "127.0.0.1:0"]);
    assert!(stderr(&o).contains("[app.http]"), "{}", stderr(&o));
    // A bad value in the manifest names the key and the line.
    for (extra, key) in [
        ("drain = \"soon\"", "app.http.drain"),
        ("listen = \"nowhere\"", "app.http.listen"),
    ] {
        let bad = probe_manifest(dir.path(), extra);
        let o = membrane(&["check", bad.to_str().unwrap()]);
        assert_eq!(o.status.code(), Some(1));
        let e = stderr(&o);
        assert!(e.contains(key) && e.contains("membrane.toml:3"), "{e}");
    }
}
