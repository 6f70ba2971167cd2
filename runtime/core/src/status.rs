//! What an app's modules are doing: instances, circuit, generation and upgrades.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::time::Instant;

use crate::app::App;
use crate::supervisor::Health;
use crate::upgrade::report::{GenerationState, LastUpgrade};

/// A snapshot of one module: its instances, health and generation.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ModuleStatus {
    /// Instances running a call (of any generation).
    pub busy: usize,
    /// Calls running now: one per busy instance of a WASI 0.2 module; on a WASI 0.3 module,
    /// the calls its instances (of every generation) run at once.
    pub running: usize,
    /// Callers waiting for an instance.
    pub waiting: usize,
    /// Instances kept for reuse.
    pub idle: usize,
    /// Whether the module takes calls (see [`RestartPolicy`](crate::RestartPolicy)).
    pub health: Health,
    /// Failures counted in the restart policy's window.
    pub recent_failures: usize,
    /// The current generation: 1 as loaded, one more per upgrade (a rollback goes back to
    /// the previous number).
    pub generation: u64,
    /// The SHA-256 of the current generation's component, in hex.
    pub hash: String,
    /// Serving, or on probation after an upgrade.
    pub state: GenerationState,
    /// Replaced generations still finishing calls or resource sessions.
    pub draining: usize,
    /// Calls ended or refused because their generation's drain time ran out.
    pub ended: u64,
    /// Calls counted since the app loaded (when metrics are on).
    pub calls: u64,
    /// The last upgrade or rollback, if any.
    pub last_upgrade: Option<LastUpgrade>,
    /// Where the current generation's instances run.
    pub placement: crate::spec::Placement,
    /// The process id of its worker (`placement = "process"`), while one runs.
    pub worker_pid: Option<u32>,
    /// Log events and output lines of its workers (`placement = "process"`) that the host
    /// dropped past their budgets since the app loaded (each drop also said in a warning
    /// on `membrane::limits`); 0 for other placements.
    pub worker_log_dropped: u64,
    /// For a `remote` module: how many hosts answered its calls in the last minute.
    pub remote_hosts: Option<usize>,
    /// Whether this process hosts the module for other hosts' calls over NATS
    /// ([`AppSpec::host`](crate::AppSpec::host)).
    pub hosted: bool,
    /// Its calls in the last minute: outcomes by kind, p50 and p99 (when calls are
    /// counted).
    pub recent: crate::metrics::window::Recent,
    /// Whether it is the app's entry module.
    pub entry: bool,
    /// The HTTP routes (path prefixes) that go to it.
    pub routes: Vec<String>,
    /// Its disk quotas: the grant's guest path, its limits, and what it holds.
    pub quotas: Vec<QuotaStatus>,
}

/// A disk quota of a module's directory grant, and its use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuotaStatus {
    /// The grant's path inside the guest.
    pub guest: String,
    /// `quota`: bytes at most.
    pub max_bytes: Option<u64>,
    /// `quota_files`: names at most.
    pub max_files: Option<u64>,
    /// Bytes and names it holds, as measured at the first write and charged since; `None`
    /// before the first write.
    pub used: Option<(u64, u64)>,
}

impl ModuleStatus {
    /// Whether the module is failing: its circuit is open, or calls failed in the last
    /// minute (cancelled calls aside: their callers went away).
    pub fn failing(&self) -> bool {
        !matches!(self.health, Health::Healthy)
            || self.recent.failures.iter().any(|(k, _)| *k != "cancelled")
    }
}

impl App {
    /// What each module is doing right now.
    pub fn status(&self) -> BTreeMap<String, ModuleStatus> {
        self.inner
            .modules
            .iter()
            .map(|(name, m)| {
                #[cfg_attr(not(feature = "p3"), allow(unused_mut))]
                let (mut busy, waiting, mut idle) = m.pool.load();
                let current = m.current_full();
                // A WASI 0.3 instance holds its slot while it lives: it is idle when it runs
                // no call.
                #[cfg(feature = "p3")]
                if let Some(x) = current.executor() {
                    let waiting_for_calls = x.idle_instances().min(busy);
                    busy -= waiting_for_calls;
                    idle += waiting_for_calls;
                }
                let (health, recent_failures) = current.supervisor.health();
                let h = m.history();
                #[cfg(feature = "p3")]
                let running = match current.executor() {
                    Some(x) => {
                        x.calls_in_flight()
                            + h.draining
                                .iter()
                                .filter_map(|g| g.executor())
                                .map(|x| x.calls_in_flight())
                                .sum::<usize>()
                    }
                    None => busy,
                };
                #[cfg(not(feature = "p3"))]
                let running = busy;
                let state = match h.probation_until {
                    Some(until) => GenerationState::Probation {
                        left: until.saturating_duration_since(Instant::now()),
                    },
                    None => GenerationState::Serving,
                };
                let ended = m.metrics.ended.load(Ordering::Relaxed);
                let placed = current.transport().map(|t| t.status()).unwrap_or_default();
                let status = ModuleStatus {
                    busy,
                    running,
                    waiting,
                    idle,
                    health,
                    recent_failures,
                    generation: current.number,
                    hash: current.hash.to_string(),
                    state,
                    draining: h.draining.len(),
                    ended,
                    calls: m.metrics.calls.load(Ordering::Relaxed),
                    last_upgrade: h.last.clone(),
                    placement: current.spec.placement,
                    worker_pid: placed.pid,
                    worker_log_dropped: placed.log_dropped,
                    remote_hosts: placed.hosts_answering,
                    hosted: self.inner.hosted.contains(name),
                    recent: m.metrics.window.recent(),
                    entry: self.entry() == Some(name.as_str()),
                    routes: self
                        .http_spec()
                        .map(|h| {
                            h.routes
                                .iter()
                                .filter(|(_, to)| *to == name)
                                .map(|(prefix, _)| prefix.clone())
                                .collect()
                        })
                        .unwrap_or_default(),
                    quotas: current
                        .spec
                        .grants
                        .dirs
                        .iter()
                        .filter(|d| d.quota.is_some() || d.quota_files.is_some())
                        .map(|d| QuotaStatus {
                            guest: d.guest.clone(),
                            max_bytes: d.quota,
                            max_files: d.quota_files,
                            used: crate::capability::quota::usage_of(&d.host),
                        })
                        .collect(),
                };
                (name.clone(), status)
            })
            .collect()
    }
}
