//! The plugins of examples/plugins, per language (Rust, Python, JavaScript): cold compile
//! (a load without a cache), cached load, the cost of one typed call of `name()`, and
//! resident memory per idle instance. A plain harness of wall-clock medians:
//!
//! ```text
//! cargo bench -p membrane --bench plugins [-- RUNS]
//! ```
//!
//! RUNS (default 5) is how many loads each load figure is the median of. The first run
//! installs the plugin tools and builds the plugins under target/plugins.
#![allow(missing_docs)] // criterion_group! defines undocumented public functions

#[path = "../examples/plugins/text.rs"]
mod text;

use std::path::Path;
use std::time::{Duration, Instant};

use membrane::{App, AppSpec, Config, ModuleSpec, Runtime};
use membrane_test_artifacts::plugins::{self, Language};

use text::TextPlugin;

/// Idle instances prewarmed for the memory figure.
const IDLE: usize = 32;
/// Typed calls per sample, and samples, for the call figure.
const CALLS: u32 = 2_000;
const SAMPLES: usize = 15;

fn main() {
    let runs: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(5);
    if let Err(e) = plugins::all_components() {
        eprintln!("error: cannot build the plugins: {e}");
        std::process::exit(1);
    }
    let tokio = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    println!(
        "| plugin | component | cold compile (load, no cache) | cached load | typed call `name()` | RSS per idle instance |"
    );
    println!("|---|---|---|---|---|---|");
    for language in Language::ALL {
        let path = plugins::component(language).expect("built above");
        let size = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
        let cold = median((0..runs).map(|_| load(&tokio, &path, None).1).collect());
        let cache = tempfile::tempdir().expect("temp dir");
        load(&tokio, &path, Some(cache.path()));
        let cached = median(
            (0..runs)
                .map(|_| load(&tokio, &path, Some(cache.path())).1)
                .collect(),
        );
        let (app, _) = load(&tokio, &path, Some(cache.path()));
        let call = call_cost(&tokio, &app);
        let idle = idle_rss(&tokio, &app);
        println!(
            "| {} | {} | {} | {} | {:.1} µs | {} |",
            language.module(),
            mib(size),
            ms(cold),
            ms(cached),
            call.as_secs_f64() * 1e6,
            kib(idle),
        );
    }
}

/// One module of the plugin, with the grants and limits of examples/plugins/membrane.toml.
fn load(tokio: &tokio::runtime::Runtime, path: &Path, cache: Option<&Path>) -> (App, Duration) {
    let mut config = Config::default();
    config.cache_dir = cache.map(Path::to_path_buf);
    let runtime = Runtime::new(config).expect("runtime");
    let spec = AppSpec::new().module(
        "p",
        ModuleSpec::from_file(path)
            .env("PLUGIN_GREETING", "hello from the manifest")
            .memory(64 << 20)
            .timeout(Duration::from_secs(1))
            .concurrency(IDLE, 64),
    );
    let started = Instant::now();
    let app = tokio.block_on(runtime.load_spec(spec)).expect("loads");
    (app, started.elapsed())
}

/// The median over samples of the mean time of one `name()` call, from one task, on a
/// warm instance.
fn call_cost(tokio: &tokio::runtime::Runtime, app: &App) -> Duration {
    let plugin = TextPlugin::new(app, "p").expect("typed handles");
    tokio.block_on(async {
        for _ in 0..100 {
            plugin.name.call(()).await.expect("call");
        }
        let mut samples = Vec::new();
        for _ in 0..SAMPLES {
            let started = Instant::now();
            for _ in 0..CALLS {
                plugin.name.call(()).await.expect("call");
            }
            samples.push(started.elapsed() / CALLS);
        }
        median(samples)
    })
}

/// The growth of this process's resident set from prewarming [`IDLE`] instances, per
/// new instance (the calls before have left an idle instance or more).
fn idle_rss(tokio: &tokio::runtime::Runtime, app: &App) -> u64 {
    let idle_before = app.status().get("p").map_or(0, |s| s.idle);
    let before = rss_bytes();
    let idle = tokio.block_on(app.prewarm("p", IDLE)).expect("prewarm");
    let after = rss_bytes();
    let added = idle.saturating_sub(idle_before).max(1);
    after.saturating_sub(before) / added as u64
}

fn rss_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    pages * 4096
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / f64::from(1 << 20))
}

fn kib(bytes: u64) -> String {
    format!("{:.0} KiB", bytes as f64 / 1024.0)
}

fn ms(d: Duration) -> String {
    format!("{:.0} ms", d.as_secs_f64() * 1e3)
}
