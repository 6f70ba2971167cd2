//! Failover of remote modules under steady load, with real processes: a `membrane host`
//! killed with SIGKILL and started again, the NATS server a host is connected to killed in
//! a 3-server cluster, and the caller's own server restarted.
//!
//! Each test puts a steady load on the module and records every call: when it started, when it ended, and its error kind. The
//! assertions are about which calls may fail and use only generous time bounds; the
//! numbers (calls failed, gaps) are printed with `eprintln!` (run with `--nocapture`) and
//! recorded in BENCHMARKS.md, "Issue 14: remote placement".

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use membrane::{App, ErrorKind, Val};

use super::hostproc::HostProc;
use super::nats::{Nats, nats_server};
use crate::common::*;

const ADD: &str = "membrane-test:placement/math#add";

/// Callers running at once in each test.
const CALLERS: usize = 4;

/// The pause of a caller between two calls (in the reconnection test), and after a failed
/// one.
const PAUSE: Duration = Duration::from_millis(2);
const PAUSE_FAILED: Duration = Duration::from_millis(5);

/// The open-loop load's interval between calls.
const OPEN_EVERY: Duration = Duration::from_millis(1);

/// The generous bound on anything that should take milliseconds to seconds.
const BOUND: Duration = Duration::from_secs(10);

/// An app name no other test of this run uses.
fn app_name() -> String {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    format!(
        "f{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// A manifest of app `name` on `url` with one module, `adder`, remote, whose calls have
/// `timeout`.
fn manifest(dir: &Path, name: &str, url: &str, timeout: &str) -> PathBuf {
    write_manifest(
        dir,
        &format!(
            "[app]\nname = {name:?}\nnats = {url:?}\n\n\
             [modules.adder]\ncomponent = {:?}\nplacement = \"remote\"\n\
             [modules.adder.limits]\ntimeout = {timeout:?}\ninstances = 4\nqueue = 256\n",
            guests::ADDER
        ),
    )
}

/// `membrane host MANIFEST --modules adder [--nats URL]`, once it says it hosts.
fn host(manifest: &Path, nats: Option<&str>) -> HostProc {
    let m = manifest.to_str().unwrap();
    let mut args = vec!["host", m, "--modules", "adder"];
    if let Some(url) = nats {
        args.extend(["--nats", url]);
    }
    super::host_proc(&args)
}

/// One call made by [`Load`].
#[derive(Debug, Clone, Copy)]
struct Rec {
    start: Instant,
    end: Instant,
    error: Option<ErrorKind>,
}

/// [`CALLERS`] tasks calling `adder.add` in a loop until stopped ([`Load::start`]), or
/// calls started at a fixed rate ([`Load::open`]).
struct Load {
    stop: Arc<AtomicBool>,
    recs: Arc<Mutex<Vec<Rec>>>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Load {
    /// Closed loop: [`CALLERS`] tasks, each making a call, then pausing `pause` (none: it
    /// only yields), or [`PAUSE_FAILED`] after a failed call.
    fn start(app: &App, pause: Duration) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let recs = Arc::new(Mutex::new(Vec::new()));
        let tasks = (0..CALLERS as u32)
            .map(|i| {
                let (app, stop, recs) = (app.clone(), stop.clone(), recs.clone());
                tokio::spawn(async move {
                    let mut n = 0u32;
                    while !stop.load(Ordering::Relaxed) {
                        n = n.wrapping_add(1);
                        let start = Instant::now();
                        let r = app.call("adder", ADD, &[Val::U32(n), Val::U32(i)]).await;
                        let end = Instant::now();
                        let error = match r {
                            Ok(out) => {
                                assert_eq!(out, [Val::U32(n.wrapping_add(i))]);
                                None
                            }
                            Err(e) => Some(e.kind()),
                        };
                        recs.lock().unwrap().push(Rec { start, end, error });
                        match (error, pause.is_zero()) {
                            (None, true) => tokio::task::yield_now().await,
                            (None, false) => tokio::time::sleep(pause).await,
                            (Some(_), _) => tokio::time::sleep(PAUSE_FAILED).await,
                        }
                    }
                })
            })
            .collect();
        Load { stop, recs, tasks }
    }

    /// Open loop: a call started every `every`, each on a task of its own, so that a call
    /// lost at a failure (waiting for its deadline) holds up no later call.
    fn open(app: &App, every: Duration) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let recs = Arc::new(Mutex::new(Vec::new()));
        let ticker = {
            let (app, stop, recs) = (app.clone(), stop.clone(), recs.clone());
            tokio::spawn(async move {
                let mut calls = tokio::task::JoinSet::new();
                let mut tick = tokio::time::interval(every);
                let mut n = 0u32;
                while !stop.load(Ordering::Relaxed) {
                    tick.tick().await;
                    n = n.wrapping_add(1);
                    let (app, recs) = (app.clone(), recs.clone());
                    calls.spawn(async move {
                        let start = Instant::now();
                        let r = app.call("adder", ADD, &[Val::U32(n), Val::U32(1)]).await;
                        let end = Instant::now();
                        let error = match r {
                            Ok(out) => {
                                assert_eq!(out, [Val::U32(n.wrapping_add(1))]);
                                None
                            }
                            Err(e) => Some(e.kind()),
                        };
                        recs.lock().unwrap().push(Rec { start, end, error });
                    });
                    while let Some(done) = calls.try_join_next() {
                        done.expect("a call panicked");
                    }
                }
                while let Some(done) = calls.join_next().await {
                    done.expect("a call panicked");
                }
            })
        };
        Load {
            stop,
            recs,
            tasks: vec![ticker],
        }
    }

    /// The calls recorded so far.
    fn recs(&self) -> Vec<Rec> {
        self.recs.lock().unwrap().clone()
    }

    /// Waits (up to `bound`) for a call that started at or after `after` and succeeded;
    /// returns when it ended.
    async fn success_after(&self, after: Instant, bound: Duration) -> Option<Instant> {
        let end = Instant::now() + bound;
        loop {
            let found = self
                .recs
                .lock()
                .unwrap()
                .iter()
                .filter(|r| r.start >= after && r.error.is_none())
                .map(|r| r.end)
                .min();
            if found.is_some() {
                return found;
            }
            if Instant::now() >= end {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }

    /// Stops the callers and returns every call, by start.
    async fn stop(self) -> Vec<Rec> {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.tasks {
            t.await.expect("a caller panicked");
        }
        let mut recs = self.recs.lock().unwrap().clone();
        recs.sort_by_key(|r| r.start);
        recs
    }
}

/// `d` in milliseconds, for reports.
fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1e3)
}

/// How many calls failed, by kind.
fn kinds<'a>(recs: impl IntoIterator<Item = &'a Rec>) -> BTreeMap<String, usize> {
    let mut by = BTreeMap::new();
    for r in recs {
        if let Some(k) = r.error {
            *by.entry(format!("{k:?}")).or_default() += 1;
        }
    }
    by
}

/// Waits until a call of `adder` succeeds (bounded), for a host just started.
async fn until_served(app: &App) {
    let end = Instant::now() + BOUND;
    loop {
        match app.call("adder", ADD, &[Val::U32(1), Val::U32(2)]).await {
            Ok(_) => return,
            Err(e) if Instant::now() < end => {
                let _ = e;
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            Err(e) => panic!("adder not served in {BOUND:?}: {}", membrane::chain(&e)),
        }
    }
}

/// The answers each host gave since `before`.
fn answers_since(app: &App, before: &BTreeMap<String, u64>) -> BTreeMap<String, u64> {
    membrane::remote::remotes::answers(app, "adder")
        .unwrap()
        .into_iter()
        .map(|(h, n)| {
            let was = before.get(&h).copied().unwrap_or(0);
            (h, n - was)
        })
        .collect()
}

/// Two hosts of `adder` under steady load ([`CALLERS`] callers calling back to back); one
/// is killed with SIGKILL. Only the calls it had in flight fail (`Timeout` at their
/// deadline: NATS says nothing about a request whose responder died); every call started a
/// deadline after the kill succeeds on the other host; started again, the killed host gets
/// its share of the calls back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_one_of_two_hosts_fails_only_its_calls_in_flight() {
    let Some(_) = nats_server() else { return };
    let nats = Nats::start();
    let dir = tempfile::tempdir().unwrap();
    let timeout = Duration::from_millis(300);
    let m = manifest(dir.path(), &app_name(), &nats.url, "300ms");
    let mut first = host(&m, None);
    let second = host(&m, None);
    let caller = runtime().load(&m).await.expect("caller loads");
    until_served(&caller).await;

    let load = Load::start(&caller, Duration::ZERO);
    // Both hosts answer before the kill.
    let end = Instant::now() + BOUND;
    while membrane::remote::remotes::answers(&caller, "adder")
        .unwrap()
        .len()
        < 2
    {
        assert!(
            Instant::now() < end,
            "both hosts did not answer: {:?}",
            membrane::remote::remotes::answers(&caller, "adder")
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let killing = Instant::now();
    first.kill9();
    let killed = Instant::now();
    // Beyond the deadline (and the caller's grace) of every call in flight at the kill.
    tokio::time::sleep(timeout * 3).await;
    let before_back = membrane::remote::remotes::answers(&caller, "adder").unwrap();
    let again = host(&m, None);
    let back = Instant::now();
    // The returning host answers its share: wait for its first answers, then a second more.
    let end = Instant::now() + BOUND;
    while answers_since(&caller, &before_back)
        .get(&again.id)
        .copied()
        .unwrap_or(0)
        == 0
    {
        assert!(
            Instant::now() < end,
            "the restarted host got no calls: {:?}",
            membrane::remote::remotes::answers(&caller, "adder")
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let returned = Instant::now();
    let before_share = membrane::remote::remotes::answers(&caller, "adder").unwrap();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let share = answers_since(&caller, &before_share);
    let recs = load.stop().await;

    let failed: Vec<&Rec> = recs.iter().filter(|r| r.error.is_some()).collect();
    let in_flight = recs
        .iter()
        .filter(|r| r.start < killed && r.end >= killing)
        .count();
    eprintln!(
        "kill -9 of 1 of 2 hosts under load ({CALLERS} callers, {} calls in all): {} calls in \
         flight at the kill (on either host), {} failed {:?}; failed calls ended {:?} after the \
         kill; the restarted host answered {} after it said it hosts; in the next second it \
         answered {} of {} calls",
        recs.len(),
        in_flight,
        failed.len(),
        kinds(failed.iter().copied()),
        failed
            .iter()
            .map(|r| ms(r.end.saturating_duration_since(killing)))
            .collect::<Vec<_>>(),
        ms(returned - back),
        share.get(&again.id).copied().unwrap_or(0),
        share.values().sum::<u64>(),
    );
    // Only calls that may have been on the killed host fail, and with Timeout.
    for r in &failed {
        assert!(
            r.start < killed + timeout,
            "a call started {:?} after the kill failed: {r:?}",
            r.start.saturating_duration_since(killed)
        );
        assert_eq!(r.error, Some(ErrorKind::Timeout), "{r:?}");
    }
    assert!(
        failed.len() <= CALLERS,
        "more calls failed than callers: {failed:?}"
    );
    // The survivor served everything in between.
    let after = recs.iter().filter(|r| r.start >= killed + timeout).count();
    assert!(after > 0, "no call after the kill");
    // The returning host's share, with two hosts in the queue group, is about half.
    let total = share.values().sum::<u64>();
    let got = share.get(&again.id).copied().unwrap_or(0);
    assert!(
        total > 0 && got * 5 >= total,
        "share {got} of {total}: {share:?}"
    );
    assert!(share.get(&second.id).copied().unwrap_or(0) > 0, "{share:?}");
    assert_eq!(share.get(&first.id).copied().unwrap_or(0), 0, "{share:?}");
}

/// A host connected to server A of a 3-server cluster (only A in its configuration), the
/// caller to B. A is killed under load (a call started every millisecond, each on its own
/// task, so that the calls lost with A, which wait for their deadline, hold up no other):
/// the host reconnects to a server it learned from the cluster and the calls resume; after
/// that every call succeeds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_follows_the_cluster_when_its_server_dies() {
    let Some(_) = nats_server() else { return };
    let mut cluster = Nats::cluster(3);
    let dir = tempfile::tempdir().unwrap();
    let m = manifest(dir.path(), &app_name(), &cluster[1].url, "300ms");
    let _host = host(&m, Some(&cluster[0].url));
    let caller = runtime().load(&m).await.expect("caller loads");
    // The host's subscription reaches B over the route.
    until_served(&caller).await;

    let load = Load::open(&caller, OPEN_EVERY);
    tokio::time::sleep(Duration::from_millis(700)).await;
    let killing = Instant::now();
    cluster[0].kill();
    let killed = Instant::now();
    let resumed = load.success_after(killing, BOUND).await.unwrap_or_else(|| {
        panic!(
            "calls did not resume in {BOUND:?}: {:?}",
            kinds(&load.recs())
        )
    });
    tokio::time::sleep(Duration::from_secs(1)).await;
    let recs = load.stop().await;

    let gap: Vec<&Rec> = recs
        .iter()
        .filter(|r| r.error.is_some() && r.start < resumed)
        .collect();
    eprintln!(
        "3-server cluster, the host's server killed under load (a call every \
         {OPEN_EVERY:?}): calls resumed {} after the kill; {} calls failed in the gap {:?}, \
         of which {} started before the kill",
        ms(resumed - killing),
        gap.len(),
        kinds(gap.iter().copied()),
        gap.iter().filter(|r| r.start < killing).count(),
    );
    assert!(resumed - killed < BOUND);
    let late = lost_after(&recs, resumed);
    assert!(late.is_empty(), "calls failed after resuming: {late:?}");
    assert!(
        recs.iter().filter(|r| r.start >= resumed).count() > 10,
        "too few calls after resuming"
    );
    // The failures in the gap are no responders (Unavailable) or the calls in flight on
    // the dead server (Timeout).
    for r in &gap {
        assert!(
            matches!(r.error, Some(ErrorKind::Unavailable | ErrorKind::Timeout)),
            "{r:?}"
        );
    }
}

/// The caller's own server is killed and started again on the same port. The calls
/// waiting for answers then, and every call during the outage, fail at once with
/// `Unavailable` (not at their 2 s deadline); after the restart the connection comes back
/// by itself and calls succeed again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_fail_fast_while_disconnected_and_resume_after_a_restart() {
    let Some(_) = nats_server() else { return };
    let mut nats = Nats::start();
    let dir = tempfile::tempdir().unwrap();
    let m = manifest(dir.path(), &app_name(), &nats.url, "2s");
    let _host = host(&m, None);
    let caller = runtime().load(&m).await.expect("caller loads");
    until_served(&caller).await;

    let load = Load::start(&caller, PAUSE);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let killing = Instant::now();
    nats.kill();
    // The outage: from the first call refused as Unavailable (plus a margin for callers
    // that started before it but checked the connection later), one second.
    let end = Instant::now() + BOUND;
    let first_unavailable = loop {
        let first = load
            .recs()
            .iter()
            .filter(|r| r.start >= killing && r.error == Some(ErrorKind::Unavailable))
            .map(|r| r.start)
            .min();
        if let Some(t) = first {
            break t;
        }
        assert!(
            Instant::now() < end,
            "no call failed with Unavailable: {:?}",
            kinds(&load.recs())
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    };
    let noticed = first_unavailable + Duration::from_millis(20);
    tokio::time::sleep(Duration::from_secs(1)).await;
    let restarting = Instant::now();
    nats.restart();
    let restarted = Instant::now();
    let resumed = load
        .success_after(restarted, BOUND)
        .await
        .unwrap_or_else(|| {
            panic!(
                "calls did not resume in {BOUND:?}: {:?}",
                kinds(&load.recs())
            )
        });
    tokio::time::sleep(Duration::from_millis(500)).await;
    let recs = load.stop().await;

    let outage: Vec<&Rec> = recs
        .iter()
        .filter(|r| r.start >= noticed && r.end < restarting)
        .collect();
    let slowest = outage
        .iter()
        .map(|r| r.end - r.start)
        .max()
        .unwrap_or_default();
    let before_noticed: Vec<&Rec> = recs
        .iter()
        .filter(|r| r.end >= killing && r.start < noticed)
        .collect();
    eprintln!(
        "the caller's server killed, restarted {} later: the first call refused as \
         Unavailable started {} after the kill; until 20 ms after it {} calls ended {:?}; \
         during the outage {} calls failed, kinds {:?}, the slowest in {}; calls resumed {} \
         after the restart",
        ms(restarting - killing),
        ms(first_unavailable.saturating_duration_since(killing)),
        before_noticed.len(),
        kinds(before_noticed.iter().copied()),
        outage.len(),
        kinds(outage.iter().copied()),
        ms(slowest),
        ms(resumed - restarted),
    );
    assert!(outage.len() > 10, "too few calls during the outage");
    for r in &outage {
        assert_eq!(r.error, Some(ErrorKind::Unavailable), "{r:?}");
        assert!(r.end - r.start < Duration::from_millis(100), "{r:?}");
    }
    // The calls waiting for an answer when the connection dropped fail then too, not at
    // their 2 s deadline.
    for r in &before_noticed {
        assert!(
            matches!(r.error, None | Some(ErrorKind::Unavailable)),
            "{r:?}"
        );
        assert!(
            r.end.saturating_duration_since(killing) < Duration::from_secs(1),
            "a call in flight at the kill ended {:?} after it",
            r.end.saturating_duration_since(killing)
        );
    }
    let late = lost_after(&recs, resumed);
    assert!(late.is_empty(), "calls failed after resuming: {late:?}");
}

/// The calls started at or after `resumed` that failed, but for those shed as Overloaded:
/// the host shedding the backlog the gap left (a queue of 256, a call every millisecond)
/// is load shedding working, and how much of it happens depends on how busy the machine
/// is; any other failure is a call lost to the failover.
fn lost_after(recs: &[Rec], resumed: Instant) -> Vec<&Rec> {
    let shed = recs
        .iter()
        .filter(|r| r.start >= resumed && r.error == Some(ErrorKind::Overloaded))
        .count();
    eprintln!("{shed} calls shed as Overloaded after resuming");
    recs.iter()
        .filter(|r| r.start >= resumed)
        .filter(|r| r.error.is_some_and(|k| k != ErrorKind::Overloaded))
        .collect()
}
