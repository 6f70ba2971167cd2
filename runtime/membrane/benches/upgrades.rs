//! Live upgrades under load (BENCHMARKS.md "Issue 12"). Not a criterion bench: a harness
//! that prints figures.
//!
//!     cargo bench -p membrane --bench upgrades
//!
//! Needs `wrk` (apt-get install wrk). One process serves `web` (guests/greet_http) linked to
//! `greet` (guests/greet_v1 / greet_v2) on 127.0.0.1 and, at the same time:
//! - wrk -t2 -c64 sends HTTP load; a checker sends requests one at a time and reads which
//!   version answered;
//! - two tasks call `greet` directly with `App::call` and check the version;
//! - the main task upgrades and downgrades `greet` 20 times.
//!
//! It prints failed requests and calls, responses from a version older than the one current
//! when the request started, p99 latency steady and during the switches (same run), and
//! the time from upgrade request to the new generation serving with and without the
//! compiled-code cache; then the rollback of a version that traps on every call, under
//! load.
#![allow(missing_docs)] // criterion_group! defines undocumented public functions

use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use membrane::{
    App, AppSpec, Config, HttpSpec, ModuleSpec, RestartPolicy, Runtime, UpgradePolicy, Val,
};
use membrane_test_artifacts as guests;

const API: &str = "acme:greet/api";
const SWITCHES: usize = 20;

fn wrk(addr: std::net::SocketAddr, secs: u64) -> (f64, f64, u64, u64) {
    let out = Command::new("wrk")
        .args(["-t2", "-c64", &format!("-d{secs}s"), "--latency"])
        .arg(format!("http://{addr}/load"))
        .output()
        .expect("wrk runs (apt-get install wrk)");
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let field = |prefix: &str| -> Option<String> {
        text.lines()
            .find(|l| l.trim_start().starts_with(prefix))
            .map(|l| l.trim_start()[prefix.len()..].trim().to_string())
    };
    let ms = |v: &str| -> f64 {
        if let Some(x) = v.strip_suffix("us") {
            x.parse::<f64>().unwrap() / 1000.0
        } else if let Some(x) = v.strip_suffix("ms") {
            x.parse().unwrap()
        } else if let Some(x) = v.strip_suffix('s') {
            x.parse::<f64>().unwrap() * 1000.0
        } else {
            f64::NAN
        }
    };
    let p99 = field("99%").map_or(f64::NAN, |v| ms(&v));
    let rps = field("Requests/sec:").map_or(f64::NAN, |v| v.parse().unwrap_or(f64::NAN));
    let non2xx = field("Non-2xx or 3xx responses:").map_or(0, |v| v.parse().unwrap_or(0));
    let socket = field("Socket errors:").map_or(0, |v| {
        v.split(',')
            .filter_map(|p| p.split_whitespace().last()?.parse::<u64>().ok())
            .sum()
    });
    (rps, p99, non2xx, socket)
}

fn spec(component: &str) -> ModuleSpec {
    ModuleSpec::from_file(component).upgrade(
        UpgradePolicy::default()
            .drain(Duration::from_secs(5))
            .probation(Duration::ZERO),
    )
}

async fn load(cache: Option<std::path::PathBuf>) -> (App, membrane::serve::Server) {
    let mut config = Config::default();
    config.cache_dir = cache;
    let runtime = Runtime::new(config).unwrap();
    let app = runtime
        .load_spec(
            AppSpec::new()
                .module(
                    "web",
                    ModuleSpec::from_file(guests::GREET_HTTP).link(API, "greet"),
                )
                .module("greet", spec(guests::GREET_V1))
                .http(HttpSpec::default().route("/", "web")),
        )
        .await
        .unwrap();
    let mut options = membrane::serve::ServeOptions::new();
    options.listen = Some("127.0.0.1:0".into());
    let server = membrane::serve::Server::bind(&app, options).await.unwrap();
    (app, server)
}

/// `current` holds the serving version (1 or 2) in bits 0-1, [`SWITCHING`] while an
/// upgrade runs, and the number of switches above. An answer is stale when it is not from
/// the version serving at the start although no switch began or ended during the call.
const SWITCHING: u64 = 4;

fn stale(answered: u64, at_start: u64, at_end: u64) -> bool {
    answered != at_start & 3 && at_start == at_end && at_start & SWITCHING == 0
}

/// Which version answered: 1 or 2 (0 for neither). An HTTP body may be chunked, so the
/// text is searched.
fn version_of(text: &str) -> u64 {
    if text.contains("v1 hello") {
        1
    } else if text.contains("v2 hello") {
        2
    } else {
        0
    }
}

#[derive(Default)]
struct Checks {
    ok: AtomicU64,
    failed: AtomicU64,
    stale: AtomicU64,
}

/// Calls greet directly until `stop`, checking each answer against the version that was
/// current when the call started (`current`: set after each switch returns, so a call may
/// see a newer version, never an older one).
async fn direct(app: App, current: Arc<AtomicU64>, stop: Arc<AtomicBool>, checks: Arc<Checks>) {
    while !stop.load(Ordering::Relaxed) {
        let at_start = current.load(Ordering::SeqCst);
        match app
            .call("greet", &format!("{API}#hello"), &[Val::String("d".into())])
            .await
        {
            Ok(out) => {
                let Val::String(s) = &out[0] else { panic!() };
                checks.ok.fetch_add(1, Ordering::Relaxed);
                if stale(version_of(s), at_start, current.load(Ordering::SeqCst)) {
                    checks.stale.fetch_add(1, Ordering::Relaxed);
                }
            }
            Err(_) => {
                checks.failed.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

/// One HTTP request at a time, checking the version like [`direct`].
async fn checker(
    addr: std::net::SocketAddr,
    current: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    checks: Arc<Checks>,
) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    while !stop.load(Ordering::Relaxed) {
        let at_start = current.load(Ordering::SeqCst);
        let Ok(mut s) = tokio::net::TcpStream::connect(addr).await else {
            checks.failed.fetch_add(1, Ordering::Relaxed);
            continue;
        };
        let _ = s
            .write_all(b"GET /c HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .await;
        let mut buf = Vec::new();
        let _ = s.read_to_end(&mut buf).await;
        let text = String::from_utf8_lossy(&buf);
        match text.split_once("\r\n\r\n") {
            Some((head, body)) if head.starts_with("HTTP/1.1 200") => {
                checks.ok.fetch_add(1, Ordering::Relaxed);
                if stale(version_of(body), at_start, current.load(Ordering::SeqCst)) {
                    checks.stale.fetch_add(1, Ordering::Relaxed);
                }
            }
            _ => {
                checks.failed.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(run());
}

async fn run() {
    let cache = std::env::temp_dir().join("membrane-bench-upgrade-cache");
    let (app, server) = load(Some(cache.clone())).await;
    let addr = server.local_addr().unwrap();
    let stop_server = Arc::new(tokio::sync::Notify::new());
    let s = stop_server.clone();
    let serving = tokio::spawn(async move { server.run(async move { s.notified().await }).await });

    // Warm up, and fill the cache with both versions.
    app.upgrade("greet", spec(guests::GREET_V2)).await.unwrap();
    app.upgrade("greet", spec(guests::GREET_V1)).await.unwrap();
    let _ = tokio::task::spawn_blocking(move || wrk(addr, 2))
        .await
        .unwrap();

    println!("== steady: wrk -t2 -c64 -d10s, 2 App::call tasks, 1 checking HTTP client");
    let (steady, steady_checks) = phase(&app, addr, 10, 0).await;
    println!(
        "steady:    {:>8.0} req/s  p99 {:>6.2} ms  non-2xx {}  socket errors {}  | checked: {} ok, {} failed, {} stale",
        steady.0,
        steady.1,
        steady.2,
        steady.3,
        steady_checks.ok.load(Ordering::Relaxed),
        steady_checks.failed.load(Ordering::Relaxed),
        steady_checks.stale.load(Ordering::Relaxed)
    );

    println!(
        "== switching: the same load, {SWITCHES} alternating upgrades and downgrades of greet (every 450 ms)"
    );
    let (switching, checks) = phase(&app, addr, 10, SWITCHES).await;
    println!(
        "switching: {:>8.0} req/s  p99 {:>6.2} ms  non-2xx {}  socket errors {}  | checked: {} ok, {} failed, {} stale",
        switching.0,
        switching.1,
        switching.2,
        switching.3,
        checks.ok.load(Ordering::Relaxed),
        checks.failed.load(Ordering::Relaxed),
        checks.stale.load(Ordering::Relaxed)
    );
    println!(
        "p99 during the switches / steady p99: {:.2}x",
        switching.1 / steady.1
    );

    // Reload latency: request to serving, cached compile vs none.
    let cached = alternate(&app, 20).await;
    let (plain, _) = load(None).await;
    let uncached = alternate(&plain, 10).await;
    let show = |name: &str, mut v: Vec<Duration>| {
        v.sort();
        println!(
            "upgrade request -> serving, {name}: median {:.2} ms, max {:.2} ms ({} upgrades)",
            v[v.len() / 2].as_secs_f64() * 1000.0,
            v[v.len() - 1].as_secs_f64() * 1000.0,
            v.len()
        );
    };
    show("cached compile", cached);
    show("no cache", uncached);

    // A broken version under load rolls back by itself.
    let max = 5;
    let mut restart = RestartPolicy::default();
    restart.max = max;
    let before = app.status()["greet"].generation;
    let broken = ModuleSpec::from_file(guests::GREET_BROKEN)
        .restart(restart)
        .upgrade(UpgradePolicy::default().probation(Duration::from_secs(60)));
    let current = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let failures = Arc::new(Checks::default());
    let mut tasks = Vec::new();
    for _ in 0..2 {
        tasks.push(tokio::spawn(direct(
            app.clone(),
            current.clone(),
            stop.clone(),
            failures.clone(),
        )));
    }
    let wrk_task = tokio::task::spawn_blocking(move || wrk(addr, 3));
    tokio::time::sleep(Duration::from_millis(500)).await;
    app.upgrade("greet", broken).await.unwrap();
    // From the switch (compiling the broken version is not counted).
    let t = Instant::now();
    while app.status()["greet"].generation != before {
        tokio::time::sleep(Duration::from_millis(1)).await;
        if t.elapsed() > Duration::from_secs(10) {
            break;
        }
    }
    let rolled_back_in = t.elapsed();
    let (_, _, non2xx, _) = wrk_task.await.unwrap();
    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        let _ = t.await;
    }
    println!(
        "broken version (traps on every call, restart.max = {max}) under wrk -c64 + 2 call tasks: rolled back after {:.1} ms; failed: {} HTTP 5xx + {} direct calls; last upgrade: {:?}",
        rolled_back_in.as_secs_f64() * 1000.0,
        non2xx,
        failures.failed.load(Ordering::Relaxed),
        app.status()["greet"]
            .last_upgrade
            .as_ref()
            .map(|u| u.message.clone())
    );
    stop_server.notify_one();
    let _ = serving.await;
}

/// `n` upgrades of greet, alternating v2 and v1; how long each took to serve.
async fn alternate(app: &App, n: usize) -> Vec<Duration> {
    let mut took = Vec::new();
    for i in 0..n {
        let c = if i % 2 == 0 {
            guests::GREET_V2
        } else {
            guests::GREET_V1
        };
        took.push(app.upgrade("greet", spec(c)).await.unwrap().elapsed);
    }
    took
}

/// `secs` of load with `switches` upgrades spread over it; returns wrk's figures and the
/// checks of the direct and HTTP checkers.
async fn phase(
    app: &App,
    addr: std::net::SocketAddr,
    secs: u64,
    switches: usize,
) -> ((f64, f64, u64, u64), Arc<Checks>) {
    let version = app.status()["greet"].hash.clone();
    let v1 = membrane_hash(guests::GREET_V1);
    let mut on = if version == v1 { 1u64 } else { 2 };
    let current = Arc::new(AtomicU64::new(on));
    let stop = Arc::new(AtomicBool::new(false));
    let checks = Arc::new(Checks::default());
    let mut tasks = Vec::new();
    for _ in 0..2 {
        tasks.push(tokio::spawn(direct(
            app.clone(),
            current.clone(),
            stop.clone(),
            checks.clone(),
        )));
    }
    tasks.push(tokio::spawn(checker(
        addr,
        current.clone(),
        stop.clone(),
        checks.clone(),
    )));
    let wrk_task = tokio::task::spawn_blocking(move || wrk(addr, secs));
    tokio::time::sleep(Duration::from_millis(300)).await;
    for i in 0..switches as u64 {
        current.store(on | SWITCHING | (i << 3), Ordering::SeqCst);
        on = 3 - on;
        let c = if on == 1 {
            guests::GREET_V1
        } else {
            guests::GREET_V2
        };
        app.upgrade("greet", spec(c)).await.unwrap();
        current.store(on | ((i + 1) << 3), Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(450)).await;
    }
    let figures = wrk_task.await.unwrap();
    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        let _ = t.await;
    }
    (figures, checks)
}

fn membrane_hash(path: &str) -> String {
    let out = Command::new("sha256sum").arg(path).output().unwrap();
    String::from_utf8_lossy(&out.stdout)[..64].to_string()
}
