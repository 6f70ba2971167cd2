//! Issue 22, class 3: a compromised worker process (`placement = "process"`) cannot forge or
//! flood the host's log, reach the host's own stdout or stderr, or make the host allocate
//! what it announces; every violation is a crashed worker, replaced for the next call.
//!
//! Each test starts a real host process (this test binary again, in [`host_driver`]) whose
//! worker program is the fake worker of `fake_worker.rs`, and reads what the host printed:
//! its log on stderr, and on stdout only the lines the driver writes itself.

use std::process::Command;
use std::time::{Duration, Instant};

use membrane::{
    AppSpec, BucketAccess, BucketSpec, KeyValueSpec, ModuleSpec, Placement, RestartPolicy, Runtime,
};
use serde_json::{Value, json};

use super::fake_worker::{FLOOD, FLOOD_LINES, FLOOD_OUTSIDE, script};
use super::logs::assert_clean;
use crate::common::*;

const DRIVER_ENV: &str = "MEMBRANE_TEST_HOST_DRIVER";
const SCRIPT_ENV: &str = "MEMBRANE_TEST_FAKE_SCRIPT";

/// The host's budget for a worker's events outside calls (`worker/relog.rs`): a burst, then
/// a rate per second.
const OUTSIDE_BURST: f64 = 1_000.0;
const OUTSIDE_RATE: f64 = 100.0;

/// How many calls the driver makes, and the module's timeout, per case.
fn plan(case: &str) -> (usize, Duration) {
    match case {
        "forged" => (1, Duration::from_secs(10)),
        "flood" => (1, Duration::from_secs(60)),
        "oversized" => (4, Duration::from_secs(2)),
        "garbage" => (7, Duration::from_secs(10)),
        "amplified" => (2, Duration::from_secs(10)),
        "ring" => (2, Duration::from_secs(10)),
        "keyvalue" => (4, Duration::from_secs(10)),
        other => panic!("no case {other}"),
    }
}

#[test]
#[ignore = "the entry point of the host process that the tests in hostile::worker start"]
fn host_driver() {
    let (Ok(case), Some(script)) = (std::env::var(DRIVER_ENV), std::env::var_os(SCRIPT_ENV)) else {
        return;
    };
    // As the `membrane` command logs, with its targets.
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .with_target(true)
        .with_env_filter(tracing_subscriber::EnvFilter::new("info"))
        .init();
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(drive(&case, script.into()));
    std::process::exit(0);
}

/// Loads the probe guest as a `process` module whose worker is the fake one, calls it, and
/// prints what happened: a `RESULT` line per call, a `STATUS` line, then `DONE` once the
/// app (and so its worker) is gone and everything the worker said has been logged.
async fn drive(case: &str, script: std::path::PathBuf) {
    let (calls, timeout) = plan(case);
    let mut config = crate::common::config();
    config.worker_program = Some(script);
    let mut policy = RestartPolicy::default();
    policy.max = u32::MAX;
    let mut module = ModuleSpec::from_file(guests::PROBE)
        .placement(Placement::Process)
        .timeout(timeout)
        .restart(policy);
    let mut spec = AppSpec::new();
    // The store is the host's; the module may read one bucket of it.
    let store = tempfile::tempdir().unwrap();
    if case == "keyvalue" {
        spec = spec.keyvalue(
            KeyValueSpec::embedded(store.path().join("state.redb"))
                .bucket("notes", BucketSpec::new())
                .bucket("secret", BucketSpec::new()),
        );
        module = module.bucket("notes", BucketAccess::ReadOnly);
    }
    let app = Runtime::new(config)
        .unwrap()
        .load_spec(spec.module("m", module))
        .await
        .expect("the app loads");
    for i in 0..calls {
        let before = reset_peak();
        let r = if case == "amplified" && i == 0 {
            caps(&app, "list-dir", &[s("/")]).await
        } else {
            caps(&app, "length", &[s("abc")]).await
        };
        let growth = peak().saturating_sub(before);
        let line = json!({
            "call": i,
            "ok": r.as_ref().ok().map(|v| format!("{v:?}")),
            "kind": r.as_ref().err().map(|e| format!("{:?}", e.kind())),
            "error": r.as_ref().err().map(|e| membrane::chain(e)),
            "pid_after": membrane::process::workers::worker_pid(&app, "m").unwrap(),
            "peak_growth": growth,
        });
        println!("RESULT {line}");
    }
    let st = app.status()["m"].clone();
    let metrics = app.metrics_text();
    let denied = metrics.lines().find_map(|l| {
        l.strip_prefix("membrane_denials_total{")
            .filter(|l| l.contains("capability=\"keyvalue\""))
            .and_then(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
    });
    println!(
        "STATUS {}",
        json!({
            "recent_failures": st.recent_failures,
            "worker_log_dropped": st.worker_log_dropped,
            "keyvalue_denied": denied,
        })
    );
    drop(app);
    println!("DONE");
}

/// Resets the process's peak resident size to its current size, and returns that size.
fn reset_peak() -> u64 {
    std::fs::write("/proc/self/clear_refs", "5").expect("clear_refs");
    status_kb("VmRSS")
}

/// The peak resident size since the last reset.
fn peak() -> u64 {
    status_kb("VmHWM")
}

fn status_kb(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status
        .lines()
        .find(|l| l.starts_with(field))
        .unwrap_or_else(|| panic!("no {field}"));
    let kb: u64 = line
        .split_whitespace()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap();
    kb << 10
}

/// What a host process with a fake worker printed.
struct Run {
    stdout: String,
    stderr: String,
    results: Vec<Value>,
    status: Value,
    /// How long the host ran.
    elapsed: Duration,
    /// How many worker processes it started.
    starts: usize,
}

fn run(case: &str) -> Run {
    let tmp = tempfile::tempdir().unwrap();
    let script = script(tmp.path(), case);
    let begun = Instant::now();
    let out = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "hostile::worker::host_driver",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(DRIVER_ENV, case)
        .env(SCRIPT_ENV, &script)
        .env("MEMBRANE_CACHE_DIR", cache_dir())
        .output()
        .expect("the host runs");
    let elapsed = begun.elapsed();
    let (stdout, stderr) = (stdout(&out), stderr(&out));
    assert!(out.status.success(), "{case}: {stdout}\n{stderr}");
    assert!(stdout.contains("DONE"), "{case}: {stdout}\n{stderr}");
    assert!(
        !stderr.contains("panicked"),
        "{case}: the host panicked: {stderr}"
    );
    // The harness starts its own line ("test ... ") without ending it: a tag may follow.
    let tagged = |tag: &str| -> Vec<Value> {
        stdout
            .lines()
            .filter_map(|l| l.find(tag).map(|i| &l[i + tag.len()..]))
            .map(|j| serde_json::from_str(j).unwrap())
            .collect()
    };
    let results = tagged("RESULT ");
    let status = tagged("STATUS ").pop().expect("a status line");
    let starts = std::fs::read_dir(tmp.path())
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .is_ok_and(|e| e.file_name().to_string_lossy().starts_with("start-"))
        })
        .count();
    Run {
        stdout,
        stderr,
        results,
        status,
        elapsed,
        starts,
    }
}

/// Every line of the host's log is one the host formatted (a timestamp first), so no text
/// from the worker started a line of its own.
fn only_host_lines(log: &str) {
    for line in log.lines().filter(|l| !l.is_empty()) {
        assert!(
            line.starts_with(|c: char| c.is_ascii_digit()),
            "a line the host did not write: {line:?}"
        );
    }
}

/// The target of a host log line (`<time> <LEVEL> <target>: ...`).
fn target(line: &str) -> &str {
    line.split_whitespace().nth(2).unwrap_or("")
}

/// The numbers after `key=` in `line`.
fn number(line: &str, key: &str) -> Option<u64> {
    let rest = &line[line.find(key)? + key.len()..];
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

fn kinds(run: &Run) -> Vec<String> {
    run.results
        .iter()
        .map(|r| match &r["kind"] {
            Value::String(k) => k.clone(),
            _ => "ok".into(),
        })
        .collect()
}

#[test]
fn a_compromised_worker_cannot_forge_host_log_lines_or_reach_its_streams() {
    let run = run("forged");
    assert_eq!(run.results[0]["ok"], "[U64(3)]", "{}", run.stderr);
    // Nothing the worker wrote reached the host's stdout (`membrane call`'s results).
    assert!(!run.stdout.contains("PWNED"), "{}", run.stdout);
    assert!(!run.stdout.contains('\u{1b}'), "{:?}", run.stdout);
    // The log: escaped, one host line per event, the host's fields first.
    assert_clean(&run.stderr, "the host's log");
    only_host_lines(&run.stderr);
    for marker in [
        "PWNED-STDOUT",
        "PWNED-STDERR",
        "forged-control",
        "forged-guest",
        "forged-quoted",
        "forged-message",
        "forged-name",
        "forged-denial",
        "forged-target",
    ] {
        let lines: Vec<&str> = run.stderr.lines().filter(|l| l.contains(marker)).collect();
        assert_eq!(lines.len(), 1, "{marker}: {}", run.stderr);
        let line = lines[0];
        // The first `module=` field is the host's own: the forged one comes later, if at all.
        assert_eq!(
            line.find("module="),
            line.find("module=m "),
            "{marker}: {line}"
        );
        assert!(
            ["membrane::worker:", "membrane::guest:", "membrane::audit:"].contains(&target(line)),
            "{marker}: {line}"
        );
    }
    // Raw output of the worker's process is the worker's, never the guest's.
    for marker in [
        "PWNED-STDOUT",
        "PWNED-STDERR",
        "forged-target",
        "forged-control",
    ] {
        let line = run.stderr.lines().find(|l| l.contains(marker)).unwrap();
        assert_eq!(target(line), "membrane::worker:", "{line}");
    }
    // Events that are no events (an unknown level or stream, a body that is not one) are
    // dropped and counted, with one warning after the call.
    for marker in ["forged-level", "forged-body", "forged-stream"] {
        assert!(!run.stderr.contains(marker), "{marker}: {}", run.stderr);
    }
    let warning = run
        .stderr
        .lines()
        .find(|l| l.contains("WARN") && l.contains("dropped="))
        .unwrap_or_else(|| panic!("no warning: {}", run.stderr));
    assert_eq!(number(warning, "dropped="), Some(3), "{warning}");
}

#[test]
fn log_floods_from_a_worker_are_bounded_and_counted() {
    let run = run("flood");
    assert_eq!(run.results[0]["ok"], "[U64(3)]", "{}", tail(&run.stderr));
    only_host_lines(&run.stderr);
    // During a call: the guest's budget, exactly.
    let in_call = run
        .stderr
        .lines()
        .filter(|l| l.contains("flood-call"))
        .count();
    assert_eq!(in_call, membrane::MAX_LOG_LINES as usize);
    let per_call = (FLOOD - membrane::MAX_LOG_LINES as usize) as u64;
    let warnings: Vec<&str> = run
        .stderr
        .lines()
        .filter(|l| l.contains("WARN") && l.contains("dropped="))
        .collect();
    assert!(
        warnings
            .iter()
            .any(|w| number(w, "dropped=") == Some(per_call)),
        "{warnings:#?}"
    );
    assert_eq!(
        run.status["worker_log_dropped"]
            .as_u64()
            .map(|d| d >= per_call),
        Some(true),
        "{}",
        run.status
    );
    // Outside calls (the control socket, the worker's stderr): a burst, then a rate; the
    // rest is dropped and every drop is counted in a warning.
    let outside = run
        .stderr
        .lines()
        .filter(|l| l.contains("flood-control") || l.contains("flood-stderr"))
        .count() as f64;
    let bound = OUTSIDE_BURST + OUTSIDE_RATE * run.elapsed.as_secs_f64().ceil() + 1.0;
    assert!(
        outside <= bound,
        "{outside} lines outside calls, over {bound}"
    );
    let dropped: u64 = warnings
        .iter()
        .filter(|w| number(w, "dropped=") != Some(per_call))
        .filter_map(|w| number(w, "dropped="))
        .sum();
    let sent = (FLOOD_OUTSIDE + FLOOD_LINES) as u64;
    // The worker's own chatter (the test harness's lines on its stdout) counts as well.
    let counted = outside as u64 + dropped;
    assert!(
        (sent..sent + 16).contains(&counted),
        "{outside} logged + {dropped} dropped for {sent} sent"
    );
}

#[test]
fn oversized_frames_are_refused_before_the_host_allocates() {
    let run = run("oversized");
    // A 64 MiB header then 1 KB, on a call's connection and on the control socket: refused
    // at the header, the worker killed. A header within the results' bound (32 MiB) and
    // 1 KB: the host waits for the rest until the deadline, holding only what came.
    assert_eq!(
        kinds(&run),
        ["Crashed", "Crashed", "Timeout", "ok"],
        "{:#?}",
        run.results
    );
    for r in &run.results[..3] {
        let growth = r["peak_growth"].as_u64().unwrap();
        eprintln!("call {}: peak resident growth {growth} bytes", r["call"]);
        assert!(growth < 16 << 20, "{r}");
        assert_eq!(r["pid_after"], Value::Null, "not killed: {r}");
    }
    assert_eq!(run.starts, 4);
}

#[test]
fn results_that_would_take_many_times_their_size_are_refused_while_decoding() {
    let run = run("amplified");
    // 30 MiB on the wire would be about a GiB of values: refused by the module's hostcall
    // budget (32 MiB of decoded values) as it decodes, the worker replaced.
    assert_eq!(kinds(&run), ["Crashed", "ok"], "{:#?}", run.results);
    let error = run.results[0]["error"].as_str().unwrap();
    assert!(error.contains("limits.hostcall"), "{error}");
    let growth = run.results[0]["peak_growth"].as_u64().unwrap();
    eprintln!("peak resident growth {growth} bytes");
    assert!(growth < 160 << 20, "{}", run.results[0]);
}

#[test]
fn a_worker_asking_past_its_buckets_is_killed_and_the_next_call_works() {
    let run = run("keyvalue");
    // A write to the read-only bucket, a read of a bucket not granted, a malformed request:
    // each refused by the host, whatever the worker's own checks say, and the worker killed.
    assert_eq!(
        kinds(&run),
        ["Crashed", "Crashed", "Crashed", "ok"],
        "{:#?}",
        run.results
    );
    for (r, why) in run.results[..3].iter().zip([
        "write to bucket \"notes\"",
        "open bucket \"secret\"",
        "malformed key-value request",
    ]) {
        let error = r["error"].as_str().unwrap();
        assert!(error.contains(why), "{error}");
        assert_eq!(r["pid_after"], Value::Null, "not killed: {r}");
    }
    // The two requests past the grants are denials, counted and audited.
    assert_eq!(run.status["keyvalue_denied"], 2, "{}", run.status);
    assert_eq!(run.starts, 4);
}

#[test]
fn garbage_frames_crash_only_their_worker_and_the_next_call_works() {
    let run = run("garbage");
    assert_eq!(
        kinds(&run),
        [
            "Crashed", "Crashed", "Crashed", "Crashed", "Crashed", "Crashed", "ok"
        ],
        "{:#?}",
        run.results
    );
    // Each violation killed its worker; each call after it had a new one.
    for r in &run.results[..6] {
        assert_eq!(r["pid_after"], Value::Null, "not killed: {r}");
    }
    assert!(run.results[6]["pid_after"].is_u64());
    assert_eq!(run.starts, 7);
    assert_eq!(run.status["recent_failures"], 6, "{}", run.status);
    assert_clean(&run.stderr, "the host's log");
    only_host_lines(&run.stderr);
}

#[test]
fn a_worker_that_corrupts_its_shared_memory_crashes_and_the_next_call_works() {
    let run = run("ring");
    assert_eq!(kinds(&run), ["Crashed", "ok"], "{:#?}", run.results);
    assert_eq!(run.results[0]["pid_after"], Value::Null, "not killed");
    let error = run.results[0]["error"].as_str().unwrap();
    assert!(error.contains("claims"), "{error}");
    assert_eq!(run.starts, 2);
    assert_clean(&run.stderr, "the host's log");
}

fn tail(text: &str) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(20)..].join("\n")
}

#[test]
fn a_process_modules_inherit_output_is_logged_not_written_to_the_hosts_streams() {
    let tmp = tempfile::tempdir().unwrap();
    let m = write_manifest(
        tmp.path(),
        &format!(
            "[modules.m]\ncomponent = {:?}\nplacement = \"process\"\n\
             grants = {{ stdout = \"inherit\", stderr = \"inherit\" }}\n",
            guests::PROBE
        ),
    );
    for to_stderr in ["false", "true"] {
        let o = membrane(&[
            "call",
            m.to_str().unwrap(),
            "m",
            &format!("{CAPS}#print"),
            "\"PWNED-INHERIT \\u{1b}[2J\"",
            to_stderr,
        ]);
        assert!(o.status.success(), "{}", stderr(&o));
        // Only the result (none) on stdout; the line in the log, escaped, as the guest's.
        assert_eq!(stdout(&o), "", "{to_stderr}");
        let log = stderr(&o);
        assert_clean(&log, "the log");
        let line = log
            .lines()
            .find(|l| l.contains("PWNED-INHERIT"))
            .unwrap_or_else(|| panic!("{to_stderr}: not logged: {log}"));
        assert!(line.contains("module=m"), "{line}");
        assert!(line.contains("\\u{1b}[2J"), "{line}");
        // As guest output (info), not as raw output of the worker's process (a warning).
        assert!(line.contains(" INFO "), "{line}");
    }
}
