//! A headless Chromium driven over the Chrome DevTools Protocol (CDP), for the tests of the
//! admin page: navigate, evaluate JavaScript in the page, take screenshots.
//!
//! Chromium comes from the Debian package (`chromium`, or `chromium-browser` elsewhere);
//! when it is missing, `scripts/test-deps.sh` is run once to install it (it does that only
//! as root with apt-get, and nothing otherwise). [`Browser::launch`] returns `None` when
//! there is still no browser, after a loud SKIPPED line on stderr.
//!
//! The client is synchronous (tungstenite): each method blocks its thread, inside
//! `block_in_place` when called on a (multi-threaded) tokio runtime, so the served app keeps
//! running on the other workers. The browser runs in its own process group, and the group
//! is killed when the [`Browser`] is dropped, panics included.

use std::io::{BufRead, BufReader};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, Once};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tungstenite::{Message, WebSocket};

/// How long one DevTools answer, a page load or a [`Browser::wait_for`] may take.
const PATIENCE: Duration = Duration::from_secs(30);

/// A running headless Chromium with one page (a CDP session attached to its tab).
pub struct Browser {
    child: Child,
    ws: WebSocket<TcpStream>,
    session: String,
    next_id: u64,
    /// Every event received, in order (`{"method", "params", "sessionId"}`).
    events: Vec<Value>,
    /// The browser's stderr, for failure messages.
    log: Arc<Mutex<Vec<String>>>,
    _profile: tempfile::TempDir,
}

/// Runs `f` where blocking is allowed.
fn blocking<R>(f: impl FnOnce() -> R) -> R {
    match tokio::runtime::Handle::try_current() {
        Ok(_) => tokio::task::block_in_place(f),
        Err(_) => f(),
    }
}

/// `name` on PATH, if it is there.
fn on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
}

fn find_chromium() -> Option<PathBuf> {
    on_path("chromium").or_else(|| on_path("chromium-browser"))
}

/// The browser, after installing it with scripts/test-deps.sh (once per test run) if needed.
fn chromium() -> Option<PathBuf> {
    static INSTALL: Once = Once::new();
    if let Some(p) = find_chromium() {
        return Some(p);
    }
    INSTALL.call_once(|| {
        let script = crate::common::repo_root().join("scripts/test-deps.sh");
        eprintln!("chromium is missing: running {}", script.display());
        match Command::new("bash").arg(&script).status() {
            Ok(s) if s.success() => {}
            other => eprintln!("{}: {other:?}", script.display()),
        }
    });
    find_chromium()
}

impl Browser {
    /// Starts a headless Chromium and opens a blank page, or returns `None` (and says so
    /// loudly) when Chromium is not installed and cannot be.
    pub fn launch() -> Option<Browser> {
        let Some(exe) = chromium() else {
            eprintln!(
                "\n==== SKIPPED: no Chromium, so the admin page was not tested in a browser; \
                 install with: sudo apt-get install chromium (or run scripts/test-deps.sh as root) ====\n"
            );
            return None;
        };
        Some(blocking(|| Browser::start(&exe)))
    }

    fn start(exe: &Path) -> Browser {
        use std::os::unix::process::CommandExt as _;
        let profile = tempfile::tempdir().expect("a profile directory");
        let mut child = Command::new(exe)
            .args([
                "--headless=new",
                "--no-sandbox",
                "--disable-gpu",
                "--remote-debugging-port=0",
                "--no-first-run",
                "--no-default-browser-check",
                "--disable-extensions",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--disable-dev-shm-usage",
                "--hide-scrollbars",
                "--window-size=1200,800",
            ])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .arg("about:blank")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .process_group(0)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", exe.display()));
        // Chromium says where DevTools listen on stderr; the rest of stderr is kept for
        // failure messages (and read to the end, so the browser never blocks on it).
        let log = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        let stderr = child.stderr.take().unwrap();
        let lines = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if let Some(at) = line.find("DevTools listening on ") {
                    let _ = tx.send(
                        line[at + "DevTools listening on ".len()..]
                            .trim()
                            .to_string(),
                    );
                }
                let mut l = lines.lock().unwrap();
                if l.len() < 500 {
                    l.push(line);
                }
            }
        });
        let url = match rx.recv_timeout(PATIENCE) {
            Ok(url) => url,
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "Chromium did not say where DevTools listen; its stderr:\n{}",
                    log.lock().unwrap().join("\n")
                );
            }
        };
        let host = url
            .strip_prefix("ws://")
            .and_then(|rest| rest.split('/').next())
            .unwrap_or_else(|| panic!("not a DevTools URL: {url}"));
        let stream = TcpStream::connect(host).expect("connect to DevTools");
        stream.set_read_timeout(Some(PATIENCE)).unwrap();
        let (ws, _) = tungstenite::client::client(url.as_str(), stream)
            .unwrap_or_else(|e| panic!("DevTools websocket handshake: {e}"));
        let mut b = Browser {
            child,
            ws,
            session: String::new(),
            next_id: 0,
            events: Vec::new(),
            log,
            _profile: profile,
        };
        let target = b.call(
            false,
            "Target.createTarget",
            json!({ "url": "about:blank" }),
        );
        let attached = b.call(
            false,
            "Target.attachToTarget",
            json!({ "targetId": target["targetId"], "flatten": true }),
        );
        b.session = attached["sessionId"].as_str().unwrap().to_string();
        for domain in ["Page.enable", "Runtime.enable", "Log.enable"] {
            b.call(true, domain, json!({}));
        }
        b
    }

    /// Sends one command (to the page when `page`, else to the browser) and returns its
    /// result; events that arrive meanwhile are kept.
    fn call(&mut self, page: bool, method: &str, params: Value) -> Value {
        self.next_id += 1;
        let id = self.next_id;
        let mut msg = json!({ "id": id, "method": method, "params": params });
        if page {
            msg["sessionId"] = json!(self.session);
        }
        self.ws
            .send(Message::text(msg.to_string()))
            .unwrap_or_else(|e| panic!("{method}: {e}"));
        let end = Instant::now() + PATIENCE;
        loop {
            let v = self.read(method, end);
            if v["id"] == json!(id) {
                if let Some(e) = v.get("error") {
                    panic!("{method}: {e}");
                }
                return v["result"].clone();
            }
        }
    }

    /// Reads one message; events are kept.
    fn read(&mut self, what: &str, end: Instant) -> Value {
        loop {
            assert!(
                Instant::now() < end,
                "{what}: no answer from Chromium within {PATIENCE:?}; its stderr:\n{}",
                self.log.lock().unwrap().join("\n")
            );
            let msg = self
                .ws
                .read()
                .unwrap_or_else(|e| panic!("{what}: reading from DevTools: {e}"));
            let Message::Text(text) = msg else { continue };
            let v: Value = serde_json::from_str(text.as_str()).expect("DevTools sends JSON");
            if v.get("method").is_some() {
                self.events.push(v.clone());
            }
            return v;
        }
    }

    /// Opens `url` and waits for its load event.
    pub fn navigate(&mut self, url: &str) {
        blocking(|| {
            let seen = self.events.len();
            let r = self.call(true, "Page.navigate", json!({ "url": url }));
            if let Some(e) = r.get("errorText") {
                panic!("navigate to {url}: {e}");
            }
            let end = Instant::now() + PATIENCE;
            let session = self.session.clone();
            let loaded =
                |v: &Value| v["method"] == "Page.loadEventFired" && v["sessionId"] == session;
            if self.events[seen..].iter().any(loaded) {
                return;
            }
            loop {
                let v = self.read("page load", end);
                if loaded(&v) {
                    return;
                }
            }
        })
    }

    /// Evaluates `expression` in the page (awaiting a promise) and returns its value as JSON.
    /// An exception fails the test.
    pub fn eval(&mut self, expression: &str) -> Value {
        blocking(|| self.eval_now(expression))
    }

    fn eval_now(&mut self, expression: &str) -> Value {
        let r = self.call(
            true,
            "Runtime.evaluate",
            json!({ "expression": expression, "returnByValue": true, "awaitPromise": true }),
        );
        if let Some(e) = r.get("exceptionDetails") {
            panic!("{expression}\nthrew: {e}");
        }
        r["result"].get("value").cloned().unwrap_or(Value::Null)
    }

    /// Evaluates `expression` until it is truthy (for up to 30 s) and returns that value.
    pub fn wait_for(&mut self, what: &str, expression: &str) -> Value {
        blocking(|| {
            let end = Instant::now() + PATIENCE;
            loop {
                let v = self.eval_now(expression);
                let truthy = !matches!(&v, Value::Null | Value::Bool(false))
                    && v != json!(0)
                    && v != json!("");
                if truthy {
                    return v;
                }
                assert!(Instant::now() < end, "{what}: not within {PATIENCE:?}");
                std::thread::sleep(Duration::from_millis(100));
            }
        })
    }

    /// Errors the page reported: uncaught exceptions, `console.error`, and browser log
    /// entries at level error (such as a Content-Security-Policy violation), and dialogs
    /// (`alert`) it opened.
    pub fn errors(&self) -> Vec<String> {
        self.events
            .iter()
            .filter_map(|v| {
                let p = &v["params"];
                match v["method"].as_str()? {
                    "Runtime.exceptionThrown" => Some(p["exceptionDetails"].to_string()),
                    "Runtime.consoleAPICalled" if p["type"] == "error" => {
                        Some(p["args"].to_string())
                    }
                    "Log.entryAdded" if p["entry"]["level"] == "error" => {
                        Some(p["entry"].to_string())
                    }
                    "Page.javascriptDialogOpening" => Some(format!("a dialog: {p}")),
                    _ => None,
                }
            })
            .collect()
    }

    /// A PNG of the page as laid out in a window `width` wide and as tall as the page
    /// (at most `max_height`).
    pub fn screenshot(&mut self, width: u32, max_height: u32) -> Vec<u8> {
        blocking(|| {
            let height = self
                .eval_now("document.documentElement.scrollHeight")
                .as_u64()
                .unwrap_or(800)
                .min(u64::from(max_height));
            self.call(
                true,
                "Emulation.setDeviceMetricsOverride",
                json!({ "width": width, "height": height, "deviceScaleFactor": 1, "mobile": false }),
            );
            let r = self.call(true, "Page.captureScreenshot", json!({ "format": "png" }));
            base64_decode(r["data"].as_str().expect("screenshot data"))
        })
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // The whole group: the browser and its renderer, GPU and utility processes.
        let pid = rustix::process::Pid::from_child(&self.child);
        let _ = rustix::process::kill_process_group(pid, rustix::process::Signal::KILL);
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Decodes standard base64 (what CDP sends binary data as).
fn base64_decode(text: &str) -> Vec<u8> {
    let value = |c: u8| match c {
        b'A'..=b'Z' => c - b'A',
        b'a'..=b'z' => c - b'a' + 26,
        b'0'..=b'9' => c - b'0' + 52,
        b'+' => 62,
        b'/' => 63,
        _ => panic!("not base64: {c:?}"),
    };
    let mut out = Vec::with_capacity(text.len() / 4 * 3);
    let (mut acc, mut bits) = (0u32, 0);
    for c in text.bytes().filter(|&c| c != b'=') {
        acc = (acc << 6) | u32::from(value(c));
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    out
}
