//! `placement = "remote"` (issue 14): the cost of a call over NATS beside a raw async-nats
//! request/reply of the same payload, the throughput of a CPU-bound export with one and two
//! `membrane host` processes, and the gap in calls when the NATS server a host is connected
//! to dies in a 3-server cluster. Every figure with its baseline from the same run.
//!
//! ```sh
//! cargo bench -p membrane --bench remote                  # all three sections
//! cargo bench -p membrane --bench remote -- latency       # or throughput, failover
//! ```
//!
//! A custom harness (`harness = false`): each section starts its own `nats-server`
//! processes on free 127.0.0.1 ports (tests/remote/nats.rs; the Debian package
//! `nats-server`, installed by scripts/test-deps.sh when missing) and `membrane host`
//! processes of the release binary, and prints a markdown table.
//!
//! - `latency`: one call at a time, timed one by one, in 10 rounds of 2,000 calls per
//!   variant, the variants interleaved round by round (after a round of warm-up), so that
//!   drift hits them all alike. Medians and percentiles over the 20,000 calls.
//! - `throughput`: 16 calls in flight of a CPU-bound export (`markdown` of a 20 KiB
//!   CommonMark document; `calc.loop-add(1500)`, 4 bytes in) in four configurations: in
//!   this process with 1 and 2 instances (the machine's own ceiling), and from 1 and 2
//!   `membrane host` processes whose module has `instances = 1`; 5 rounds of the four in
//!   turn, each 3 s measured after 1 s of warm-up and after the machine is quiet; the CPU
//!   each process used in the window, from /proc/<pid>/stat, and the machine's, from
//!   /proc/stat.
//! - `failover`: 5 times, a fresh cluster of 3 servers, a host on server A (only A on its
//!   command line), the caller on B, a call started every millisecond (open loop: a call
//!   lost at the kill, which waits for its deadline, holds up no other); A killed with
//!   SIGKILL: the time to the first successful call started after the kill, and the calls
//!   failed meanwhile.
#![allow(missing_docs)] // criterion_group! defines undocumented public functions

mod common;
#[path = "../../../tests/remote/hostproc.rs"]
mod hostproc;
#[path = "../../../tests/remote/nats.rs"]
mod nats;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::*;
use futures_util::StreamExt;
use hostproc::HostProc;
use membrane::{App, AppSpec, Config, ErrorKind, ModuleSpec, NatsSpec, Placement, Runtime, Val};
use nats::{Nats, nats_server};

const ADD: &str = "membrane-test:placement/math#add";
const MARKDOWN: &str = "membrane-bench:calls/api#markdown";
const LOOP_ADD: &str = "membrane-test:placement/calc#loop-add";

fn main() {
    // `cargo bench` passes `--bench`; other words select sections.
    let words: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let wanted = |section: &str| words.is_empty() || words.iter().any(|w| section.contains(w));
    if nats_server().is_none() {
        return;
    }
    if wanted("latency") {
        latency();
    }
    if wanted("throughput") {
        throughput();
    }
    if wanted("failover") {
        failover();
    }
}

fn cache_dir() -> PathBuf {
    std::env::temp_dir().join("membrane-bench-remote-cache")
}

fn runtime() -> Runtime {
    let mut config = Config::default();
    config.cache_dir = Some(cache_dir());
    Runtime::new(config).expect("runtime")
}

/// `membrane host MANIFEST --modules MODULE [--nats URL]` of the release binary built with
/// this bench, once it says it hosts.
fn host(manifest: &Path, module: &str, nats: Option<&str>) -> HostProc {
    let m = manifest.to_str().unwrap();
    let mut args = vec!["host", m, "--modules", module];
    if let Some(url) = nats {
        args.extend(["--nats", url]);
    }
    HostProc::start_with_cache(&args, &cache_dir())
}

/// A manifest of app `name` on `url` with one remote module, in `dir`.
fn manifest(dir: &Path, name: &str, url: &str, module: &str, body: &str) -> PathBuf {
    let path = dir.join("membrane.toml");
    std::fs::write(
        &path,
        format!("[app]\nname = {name:?}\nnats = {url:?}\n\n[modules.{module}]\n{body}"),
    )
    .unwrap();
    path
}

fn adder_manifest(dir: &Path, name: &str, url: &str) -> PathBuf {
    manifest(
        dir,
        name,
        url,
        "adder",
        &format!(
            "component = {:?}\nplacement = \"remote\"\n[modules.adder.limits]\n\
             instances = 4\nqueue = 64\ntimeout = \"300ms\"\n",
            guests::ADDER
        ),
    )
}

/// Waits until `module` answers `export(args)`.
async fn until_served(app: &App, module: &str, export: &str, args: &[Val]) {
    let end = Instant::now() + Duration::from_secs(10);
    loop {
        match app.call(module, export, args).await {
            Ok(_) => return,
            Err(e) if Instant::now() < end => {
                let _ = e;
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            Err(e) => panic!("{module} is not served: {}", membrane::chain(&e)),
        }
    }
}

fn us(d: Duration) -> String {
    format!("{:.1} us", d.as_secs_f64() * 1e6)
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1e3)
}

// ---------------------------------------------------------------------------------------
// latency

const ROUNDS: usize = 10;
const PER_ROUND: usize = 2_000;

fn latency() {
    let server = Nats::start();
    let rt = tokio_rt();
    let args = [Val::U32(40), Val::U32(2)];

    // (i) Raw async-nats: a responder with a connection of its own answers 4 bytes to
    // every 8-byte request; the requester is another connection on the same runtime.
    let (requester, _responder) = rt.block_on(async {
        let responder = async_nats::connect(&server.url).await.unwrap();
        let mut sub = responder.subscribe("bench.raw.add").await.unwrap();
        responder.flush().await.unwrap();
        let r = responder.clone();
        let task = tokio::spawn(async move {
            while let Some(msg) = sub.next().await {
                if let Some(reply) = msg.reply {
                    let _ = r.publish(reply, Bytes::from_static(&[42, 0, 0, 0])).await;
                }
            }
        });
        let requester = async_nats::connect(&server.url).await.unwrap();
        (requester, (responder, task))
    });
    let raw_request = || {
        rt.block_on(async {
            let msg = requester
                .request(
                    "bench.raw.add",
                    Bytes::from_static(&[40, 0, 0, 0, 2, 0, 0, 0]),
                )
                .await
                .unwrap();
            assert_eq!(msg.payload.len(), 4);
        })
    };

    // (ii, iii) A host app in this process (its listeners on `rt`) and a caller app.
    let spec = |name: &str| {
        AppSpec::new()
            .name(name)
            .nats(NatsSpec::new([server.url.as_str()]))
            .module(
                "adder",
                ModuleSpec::from_file(guests::ADDER)
                    .placement(Placement::Remote)
                    .concurrency(4, 64),
            )
    };
    let host_app = rt
        .block_on(runtime().load_spec(spec("bench-inproc").host(["adder"])))
        .expect("host loads");
    let _serving = rt
        .block_on(membrane::remote::RemoteHost::start(&host_app))
        .expect("serves");
    let inproc = rt
        .block_on(runtime().load_spec(spec("bench-inproc")))
        .expect("caller loads");
    rt.block_on(until_served(&inproc, "adder", ADD, &args));

    // (iv, v) A `membrane host` process.
    let dir = tempfile::tempdir().unwrap();
    let m = adder_manifest(dir.path(), "bench-proc", &server.url);
    let _host = host(&m, "adder", None);
    let proc_caller = rt.block_on(runtime().load(&m)).expect("caller loads");
    rt.block_on(until_served(&proc_caller, "adder", ADD, &args));

    // The floor: the same export of a local isolated module.
    let local = rt
        .block_on(
            runtime()
                .load_spec(AppSpec::new().module("adder", ModuleSpec::from_file(guests::ADDER))),
        )
        .expect("loads");

    let call_async = |app: &App| {
        rt.block_on(async {
            let out = app.call("adder", ADD, &args).await.unwrap();
            assert_eq!(out, [Val::U32(42)]);
        })
    };
    let call_blocking = |app: &App| {
        let out = app.call_blocking("adder", ADD, &args).unwrap();
        assert_eq!(out, [Val::U32(42)]);
    };
    type Variant<'a> = (&'a str, Box<dyn Fn() + 'a>);
    let variants: Vec<Variant> = vec![
        (
            "raw async-nats request/reply, 8 B in, 4 B out (**baseline**)",
            Box::new(raw_request),
        ),
        (
            "remote `add`, `App::call`, host app in this process",
            Box::new(|| call_async(&inproc)),
        ),
        (
            "remote `add`, `App::call_blocking`, host app in this process",
            Box::new(|| call_blocking(&inproc)),
        ),
        (
            "remote `add`, `App::call`, `membrane host` process",
            Box::new(|| call_async(&proc_caller)),
        ),
        (
            "remote `add`, `App::call_blocking`, `membrane host` process",
            Box::new(|| call_blocking(&proc_caller)),
        ),
        (
            "local isolated `add`, `App::call` (no NATS)",
            Box::new(|| call_async(&local)),
        ),
    ];
    let mut samples: Vec<Vec<Duration>> =
        vec![Vec::with_capacity(ROUNDS * PER_ROUND); variants.len()];
    for round in 0..=ROUNDS {
        for (i, (_, f)) in variants.iter().enumerate() {
            for _ in 0..PER_ROUND {
                let t = Instant::now();
                f();
                let took = t.elapsed();
                if round > 0 {
                    samples[i].push(took);
                }
            }
        }
    }
    let at = |s: &[Duration], q: f64| s[((s.len() - 1) as f64 * q).round() as usize];
    for s in &mut samples {
        s.sort();
    }
    let base = at(&samples[0], 0.5);
    println!(
        "\n### remote/latency: one call at a time ({ROUNDS} rounds x {PER_ROUND} calls per variant, interleaved)\n"
    );
    println!("| what | median | p90 | p99 | mean | median / raw |");
    println!("|---|---|---|---|---|---|");
    for ((what, _), s) in variants.iter().zip(&samples) {
        let mean = s.iter().sum::<Duration>() / s.len() as u32;
        let median = at(s, 0.5);
        println!(
            "| {what} | {} | {} | {} | {} | {:.2}x |",
            us(median),
            us(at(s, 0.9)),
            us(at(s, 0.99)),
            us(mean),
            median.as_secs_f64() / base.as_secs_f64()
        );
    }
}

// ---------------------------------------------------------------------------------------
// throughput

const IN_FLIGHT: usize = 16;
const WARM_UP: Duration = Duration::from_secs(1);
const MEASURE: Duration = Duration::from_secs(3);
const ROUNDS_TPUT: usize = 5;

/// The CommonMark document of `--bench calls`' markdown (`common::markdown_doc`, 60
/// sections, 13.8 KB) at 89 sections: about 20 KiB.
fn doc() -> String {
    let mut doc = markdown_doc();
    let mut i = 60;
    while doc.len() < 20 * 1024 {
        doc += &format!(
            "## Section {i}\n\nSome *emphasis*, some **strong** text, `code`, and a [link](https://example.com/{i}).\n\n\
             - item one\n- item two with `inline`\n- item three\n\n> A quote that goes on for a while.\n\n\
             ```rust\nfn main() {{ println!(\"{i}\"); }}\n```\n\n"
        );
        i += 1;
    }
    doc
}

/// A CPU-bound export to load: which module, which export, its arguments.
#[derive(Clone)]
struct Work {
    title: String,
    module: &'static str,
    export: &'static str,
    args: Arc<Vec<Val>>,
    /// The `[modules.<module>]` tables of the manifest (the module limited to one
    /// instance, and whatever it links to).
    manifest: String,
}

impl Work {
    fn markdown() -> Work {
        let doc = doc();
        Work {
            title: format!("`markdown` of a {}-byte document", doc.len()),
            module: "md",
            export: MARKDOWN,
            args: Arc::new(vec![Val::String(doc)]),
            manifest: format!(
                "component = {:?}\nplacement = \"remote\"\n[modules.md.limits]\n\
                 instances = 1\nqueue = 256\ntimeout = \"60s\"\n",
                guests::BENCH_PROVIDER
            ),
        }
    }

    /// `calc.loop-add(n)`: `n` calls of `math.add` across the link from calc to adder,
    /// both on the host: CPU-bound, with 4 bytes in and 8 out.
    fn loop_add(n: u32) -> Work {
        Work {
            title: format!("`calc.loop-add({n})` (calc -> adder, both on the host)"),
            module: "calc",
            export: LOOP_ADD,
            args: Arc::new(vec![Val::U32(n)]),
            manifest: format!(
                "component = {:?}\nplacement = \"remote\"\n\
                 links = {{ \"membrane-test:placement/math\" = \"adder\" }}\n\
                 [modules.calc.limits]\ninstances = 1\nqueue = 256\ntimeout = \"60s\"\n\n\
                 [modules.adder]\ncomponent = {:?}\n",
                guests::CALC,
                guests::ADDER
            ),
        }
    }

    /// The same module in this process, isolated, with `instances`.
    fn local_spec(&self, instances: usize) -> AppSpec {
        let one = |m: ModuleSpec| {
            m.concurrency(instances, 256)
                .timeout(Duration::from_secs(60))
        };
        match self.module {
            "md" => AppSpec::new().module("md", one(ModuleSpec::from_file(guests::BENCH_PROVIDER))),
            _ => AppSpec::new()
                .module(
                    "calc",
                    one(ModuleSpec::from_file(guests::CALC)
                        .link("membrane-test:placement/math", "adder")),
                )
                .module("adder", ModuleSpec::from_file(guests::ADDER)),
        }
    }
}

/// The median time of one call of `work` at a time, over 300 calls (after 30).
fn one_at_a_time(rt: &tokio::runtime::Runtime, app: &App, work: &Work) -> Duration {
    let mut times: Vec<Duration> = (0..330)
        .map(|_| {
            let t = Instant::now();
            rt.block_on(app.call(work.module, work.export, &work.args))
                .unwrap();
            t.elapsed()
        })
        .skip(30)
        .collect();
    times.sort();
    times[times.len() / 2]
}

/// The bytes a value takes on the wire, near enough (a string or list: its bytes and a
/// length).
fn wire_len(v: &Val) -> usize {
    match v {
        Val::String(s) => s.len() + 4,
        Val::U64(_) | Val::S64(_) => 8,
        _ => 4,
    }
}

/// The median round trip of one raw async-nats request of `request` bytes answered with
/// `reply` bytes, one at a time, over 300 (after 30), on its own two connections.
fn raw_one_at_a_time(
    rt: &tokio::runtime::Runtime,
    url: &str,
    request: usize,
    reply: usize,
) -> Duration {
    rt.block_on(async {
        let responder = async_nats::connect(url).await.unwrap();
        let mut sub = responder.subscribe("bench.raw.sized").await.unwrap();
        responder.flush().await.unwrap();
        let r = responder.clone();
        let answer = Bytes::from(vec![b'x'; reply]);
        let task = tokio::spawn(async move {
            while let Some(msg) = sub.next().await {
                if let Some(to) = msg.reply {
                    let _ = r.publish(to, answer.clone()).await;
                }
            }
        });
        let requester = async_nats::connect(url).await.unwrap();
        let body = Bytes::from(vec![b'x'; request]);
        let mut times = Vec::new();
        for i in 0..330 {
            let t = Instant::now();
            let msg = requester
                .request("bench.raw.sized", body.clone())
                .await
                .unwrap();
            assert_eq!(msg.payload.len(), reply);
            if i >= 30 {
                times.push(t.elapsed());
            }
        }
        task.abort();
        times.sort();
        times[times.len() / 2]
    })
}

/// CPU time (user + system) of a process so far.
fn cpu_of(pid: u32) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // After the command name in parentheses: state is field 3, utime 14, stime 15.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i - 3)
            .and_then(|f| f.parse::<u64>().ok())
            .unwrap_or(0)
    };
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
    Duration::from_millis((ticks(14) + ticks(15)) * 1000 / hz)
}

/// The machine's busy and total CPU time so far (/proc/stat).
fn machine_cpu() -> (u64, u64) {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let line = stat.lines().next().unwrap_or("");
    let v: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|f| f.parse().ok())
        .collect();
    let total: u64 = v.iter().take(8).sum();
    let idle = v.get(3).copied().unwrap_or(0) + v.get(4).copied().unwrap_or(0);
    (total - idle, total)
}

/// The cores of the machine busy over `d` (from /proc/stat).
fn busy_cores(d: Duration) -> f64 {
    let a = machine_cpu();
    std::thread::sleep(d);
    let b = machine_cpu();
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
    (b.0 - a.0) as f64 / (b.1 - a.1).max(1) as f64 * cores
}

/// Waits (up to a minute) until the machine is quiet: other work on it (builds, tests)
/// would take CPU from the processes measured. Says so when it stays busy.
fn wait_quiet() {
    let end = Instant::now() + Duration::from_secs(60);
    loop {
        let busy = busy_cores(Duration::from_millis(500));
        if busy < 0.2 {
            return;
        }
        if Instant::now() >= end {
            eprintln!("the machine stayed busy ({busy:.2} cores) for a minute: measuring anyway");
            return;
        }
    }
}

/// One throughput run's result.
struct Run {
    calls_per_s: f64,
    errors: u64,
    /// CPU used in the window, by process, in cores (1.0 = one core busy).
    cpu: Vec<(String, f64)>,
    /// Cores of the machine busy in the window, all processes.
    machine_busy: f64,
    answers: BTreeMap<String, u64>,
}

/// [`IN_FLIGHT`] tasks calling `work` for [`WARM_UP`] + [`MEASURE`]; the CPU of this
/// process and of `pids` in the measured window.
fn run_load(rt: &tokio::runtime::Runtime, app: &App, work: &Work, pids: &[(String, u32)]) -> Run {
    wait_quiet();
    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(AtomicU64::new(0));
    let tasks: Vec<_> = (0..IN_FLIGHT)
        .map(|_| {
            let (app, work, stop, done, errors) = (
                app.clone(),
                work.clone(),
                stop.clone(),
                done.clone(),
                errors.clone(),
            );
            rt.spawn(async move {
                while !stop.load(Ordering::Relaxed) {
                    match app.call(work.module, work.export, &work.args).await {
                        Ok(out) => {
                            assert_eq!(out.len(), 1);
                            done.fetch_add(1, Ordering::Relaxed);
                        }
                        Err(e) => {
                            if errors.fetch_add(1, Ordering::Relaxed) == 0 {
                                eprintln!("{} failed: {}", work.export, membrane::chain(&e));
                            }
                            tokio::time::sleep(Duration::from_millis(5)).await;
                        }
                    }
                }
            })
        })
        .collect();
    std::thread::sleep(WARM_UP);
    let mut all: Vec<(String, u32)> = vec![("caller".into(), std::process::id())];
    all.extend(pids.iter().cloned());
    let answers0 = membrane::remote::remotes::answers(app, work.module).unwrap_or_default();
    let cpu0: Vec<Duration> = all.iter().map(|(_, p)| cpu_of(*p)).collect();
    let m0 = machine_cpu();
    let (n0, e0, t0) = (
        done.load(Ordering::Relaxed),
        errors.load(Ordering::Relaxed),
        Instant::now(),
    );
    std::thread::sleep(MEASURE);
    let (n1, e1, t1) = (
        done.load(Ordering::Relaxed),
        errors.load(Ordering::Relaxed),
        Instant::now(),
    );
    let m1 = machine_cpu();
    let cpu1: Vec<Duration> = all.iter().map(|(_, p)| cpu_of(*p)).collect();
    let answers1 = membrane::remote::remotes::answers(app, work.module).unwrap_or_default();
    stop.store(true, Ordering::Relaxed);
    rt.block_on(async {
        for t in tasks {
            t.await.unwrap();
        }
    });
    let secs = (t1 - t0).as_secs_f64();
    Run {
        calls_per_s: (n1 - n0) as f64 / secs,
        errors: e1 - e0,
        cpu: all
            .iter()
            .zip(cpu0.iter().zip(&cpu1))
            .map(|((name, _), (a, b))| (name.clone(), (*b - *a).as_secs_f64() / secs))
            .collect(),
        machine_busy: (m1.0 - m0.0) as f64 / (m1.1 - m0.1).max(1) as f64
            * std::thread::available_parallelism().map_or(1, |n| n.get()) as f64,
        answers: answers1
            .into_iter()
            .map(|(h, n)| {
                let was = answers0.get(&h).copied().unwrap_or(0);
                (h, n - was)
            })
            .collect(),
    }
}

fn throughput() {
    for work in [Work::markdown(), Work::loop_add(1_500)] {
        scale_out(&work);
    }
}

/// `work` in this process with 1 and 2 instances, and from 1 and 2 `membrane host`
/// processes whose module has 1 instance each: four configurations measured in turn,
/// [`ROUNDS_TPUT`] times, so that the machine's drift (it is a shared VM) hits them alike.
/// The remote ones are two apps on one server: one served by one host, the other by two.
fn scale_out(work: &Work) {
    let server = Nats::start();
    let rt = tokio_rt();
    let nats_pid = server.pid().expect("nats-server runs");
    let dirs = [tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap()];
    let manifests: Vec<PathBuf> = dirs
        .iter()
        .enumerate()
        .map(|(i, d)| {
            let name = format!("bench-{}-{}", work.module, i + 1);
            manifest(d.path(), &name, &server.url, work.module, &work.manifest)
        })
        .collect();
    let one_host = [host(&manifests[0], work.module, None)];
    let two_hosts = [
        host(&manifests[1], work.module, None),
        host(&manifests[1], work.module, None),
    ];
    let remote_one = rt.block_on(runtime().load(&manifests[0])).expect("loads");
    let remote_two = rt.block_on(runtime().load(&manifests[1])).expect("loads");
    rt.block_on(until_served(
        &remote_one,
        work.module,
        work.export,
        &work.args,
    ));
    // Both hosts in the queue group before measuring.
    let end = Instant::now() + Duration::from_secs(10);
    while membrane::remote::remotes::answers(&remote_two, work.module)
        .unwrap_or_default()
        .len()
        < 2
    {
        assert!(Instant::now() < end, "the second host never answered");
        rt.block_on(until_served(
            &remote_two,
            work.module,
            work.export,
            &work.args,
        ));
    }
    let local = |instances| {
        rt.block_on(runtime().load_spec(work.local_spec(instances)))
            .expect("loads")
    };
    let (local_one, local_two) = (local(1), local(2));
    let out = rt
        .block_on(local_one.call(work.module, work.export, &work.args))
        .expect("the export answers");
    let (request, reply) = (
        work.args.iter().map(wire_len).sum::<usize>(),
        out.iter().map(wire_len).sum::<usize>(),
    );
    let raw_what =
        format!("raw async-nats request/reply of the same sizes ({request} B in, {reply} B out)");
    let single = [
        (
            "in this process, isolated".to_string(),
            one_at_a_time(&rt, &local_one, work),
        ),
        (
            "remote, 1 `membrane host`".to_string(),
            one_at_a_time(&rt, &remote_one, work),
        ),
        (
            raw_what,
            raw_one_at_a_time(&rt, &server.url, request, reply),
        ),
    ];

    let pids = |hosts: &[HostProc]| -> Vec<(String, u32)> {
        let mut p = vec![("nats-server".to_string(), nats_pid)];
        for (i, h) in hosts.iter().enumerate() {
            p.push((format!("host {}", i + 1), h.pid()));
        }
        p
    };
    type Setup<'a> = (&'a str, &'a App, Vec<(String, u32)>);
    let configs: [Setup; 4] = [
        (
            "in this process, isolated, `instances = 1`",
            &local_one,
            Vec::new(),
        ),
        (
            "in this process, isolated, `instances = 2`",
            &local_two,
            Vec::new(),
        ),
        (
            "remote, 1 `membrane host` (`instances = 1`)",
            &remote_one,
            pids(&one_host),
        ),
        (
            "remote, 2 `membrane host`s (`instances = 1` each)",
            &remote_two,
            pids(&two_hosts),
        ),
    ];
    let mut runs: Vec<Vec<Run>> = (0..configs.len()).map(|_| Vec::new()).collect();
    for _ in 0..ROUNDS_TPUT {
        for (i, (_, app, pids)) in configs.iter().enumerate() {
            runs[i].push(run_load(&rt, app, work, pids));
        }
    }

    println!(
        "\n### remote/throughput: {}, {IN_FLIGHT} calls in flight, {ROUNDS_TPUT} rounds of \
         the four in turn, each {} s measured after {} s\n",
        work.title,
        MEASURE.as_secs(),
        WARM_UP.as_secs()
    );
    println!(
        "| what | calls/s, median (per round) | CPU used, cores (mean) | CPU per call, these processes | machine busy, cores (of which others) | answers per host | errors |"
    );
    println!("|---|---|---|---|---|---|---|");
    let median = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    for ((what, _, _), rs) in configs.iter().zip(&runs) {
        let n = rs.len() as f64;
        let rate = median(rs.iter().map(|r| r.calls_per_s).collect());
        let rounds: Vec<String> = rs.iter().map(|r| format!("{:.0}", r.calls_per_s)).collect();
        let cpu: Vec<(String, f64)> = rs[0]
            .cpu
            .iter()
            .enumerate()
            .map(|(i, (name, _))| (name.clone(), rs.iter().map(|r| r.cpu[i].1).sum::<f64>() / n))
            .collect();
        let ours: f64 = cpu.iter().map(|(_, c)| c).sum();
        let mean_rate = rs.iter().map(|r| r.calls_per_s).sum::<f64>() / n;
        let busy = rs.iter().map(|r| r.machine_busy).sum::<f64>() / n;
        let mut answers: BTreeMap<String, u64> = BTreeMap::new();
        for r in rs {
            for (h, a) in &r.answers {
                *answers.entry(h.clone()).or_default() += a;
            }
        }
        let answers: Vec<String> = answers.values().map(|n| n.to_string()).collect();
        let cpu: Vec<String> = cpu
            .iter()
            .map(|(name, c)| format!("{name} {c:.2}"))
            .collect();
        println!(
            "| {what} | {rate:.0} ({}) | {} | {:.0} us | {busy:.2} ({:.2}) | {} | {} |",
            rounds.join(", "),
            cpu.join(", "),
            ours / mean_rate * 1e6,
            (busy - ours).max(0.0),
            if answers.is_empty() {
                "-".to_string()
            } else {
                answers.join(" / ")
            },
            rs.iter().map(|r| r.errors).sum::<u64>()
        );
    }
    let ratio = |a: usize, b: usize| {
        let per_round: Vec<f64> = runs[a]
            .iter()
            .zip(&runs[b])
            .map(|(x, y)| x.calls_per_s / y.calls_per_s)
            .collect();
        let shown: Vec<String> = per_round.iter().map(|r| format!("{r:.2}")).collect();
        format!("{:.2}x (per round {})", median(per_round), shown.join(", "))
    };
    println!(
        "\n2 hosts / 1 host: **{}**; in this process, 2 instances / 1 instance: {}; \
         1 remote host / 1 local instance: {}",
        ratio(3, 2),
        ratio(1, 0),
        ratio(2, 0)
    );
    for (what, t) in single {
        println!("one call at a time, {what}: median {}", us(t));
    }
}

// ---------------------------------------------------------------------------------------
// failover

const REPEATS: usize = 5;
/// How often the failover load starts a call.
const EVERY: Duration = Duration::from_millis(1);

/// One call of the failover load.
#[derive(Clone, Copy)]
struct Rec {
    start: Instant,
    end: Instant,
    error: Option<ErrorKind>,
}

fn failover() {
    let rt = tokio_rt();
    let mut rows = Vec::new();
    for i in 0..REPEATS {
        let mut cluster = Nats::cluster(3);
        let dir = tempfile::tempdir().unwrap();
        let m = adder_manifest(dir.path(), &format!("bench-fo{i}"), &cluster[1].url);
        let _host = host(&m, "adder", Some(&cluster[0].url));
        let caller = rt.block_on(runtime().load(&m)).expect("caller loads");
        rt.block_on(until_served(
            &caller,
            "adder",
            ADD,
            &[Val::U32(1), Val::U32(2)],
        ));
        let stop = Arc::new(AtomicBool::new(false));
        let recs = Arc::new(Mutex::new(Vec::<Rec>::new()));
        // Open loop: a call every EVERY, each on a task of its own, so that calls lost at
        // the kill (waiting for their deadline) hold up no later call.
        let ticker = {
            let (app, stop, recs) = (caller.clone(), stop.clone(), recs.clone());
            rt.spawn(async move {
                let mut calls = tokio::task::JoinSet::new();
                let mut tick = tokio::time::interval(EVERY);
                let mut n = 0u32;
                while !stop.load(Ordering::Relaxed) {
                    tick.tick().await;
                    n = n.wrapping_add(1);
                    let (app, recs) = (app.clone(), recs.clone());
                    calls.spawn(async move {
                        let start = Instant::now();
                        let r = app.call("adder", ADD, &[Val::U32(n), Val::U32(1)]).await;
                        let end = Instant::now();
                        let error = r.err().map(|e| e.kind());
                        recs.lock().unwrap().push(Rec { start, end, error });
                    });
                    while calls.try_join_next().is_some() {}
                }
                while calls.join_next().await.is_some() {}
            })
        };
        std::thread::sleep(Duration::from_millis(700));
        let killed = Instant::now();
        cluster[0].kill();
        let end = Instant::now() + Duration::from_secs(10);
        let resumed = loop {
            let first = recs
                .lock()
                .unwrap()
                .iter()
                .filter(|r| r.start >= killed && r.error.is_none())
                .map(|r| r.end)
                .min();
            if let Some(t) = first {
                break Some(t);
            }
            if Instant::now() >= end {
                break None;
            }
            std::thread::sleep(Duration::from_millis(1));
        };
        std::thread::sleep(Duration::from_millis(500));
        stop.store(true, Ordering::Relaxed);
        rt.block_on(ticker).unwrap();
        let recs = recs.lock().unwrap().clone();
        let resumed = resumed.expect("calls resumed within 10 s");
        let mut kinds: BTreeMap<String, usize> = BTreeMap::new();
        for r in recs.iter().filter(|r| r.start < resumed) {
            if let Some(k) = r.error {
                let when = if r.start < killed { "before" } else { "after" };
                *kinds.entry(format!("{k:?} ({when})")).or_default() += 1;
            }
        }
        let after = recs.iter().filter(|r| r.start >= resumed).count();
        let failed_after = recs
            .iter()
            .filter(|r| r.start >= resumed && r.error.is_some())
            .count();
        let last_failure = recs
            .iter()
            .filter(|r| r.error.is_some())
            .map(|r| r.end.saturating_duration_since(killed))
            .max()
            .unwrap_or_default();
        let mut lost: Vec<String> = recs
            .iter()
            .filter(|r| r.start >= killed && r.error == Some(ErrorKind::Timeout))
            .map(|r| format!("{:.1}", (r.start - killed).as_secs_f64() * 1e3))
            .collect();
        if lost.is_empty() {
            lost.push("-".into());
        }
        rows.push((
            resumed - killed,
            kinds,
            after,
            failed_after,
            last_failure,
            lost.join(", "),
        ));
    }
    println!(
        "\n### remote/failover: the host's server killed in a 3-server cluster (a call started every {EVERY:?}, each on its own task)\n"
    );
    println!(
        "| run | calls resumed after | failed before that (started before/after the kill) | last failure ended after the kill | timed-out calls started after the kill at (ms) | calls after resuming (failed) |"
    );
    println!("|---|---|---|---|---|---|");
    for (i, (gap, kinds, after, failed_after, last, lost)) in rows.iter().enumerate() {
        println!(
            "| {} | {} | {kinds:?} | {} | {lost} | {after} ({failed_after}) |",
            i + 1,
            ms(*gap),
            ms(*last)
        );
    }
    let mut gaps: Vec<Duration> = rows.iter().map(|r| r.0).collect();
    gaps.sort();
    println!(
        "\ngap: median {}, max {} (target <= 2 s)",
        ms(gaps[gaps.len() / 2]),
        ms(gaps[gaps.len() - 1])
    );
}
