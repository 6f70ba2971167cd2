//! What an upgrade, reload or rollback reports, and what a module's status shows of it.

use std::time::{Duration, SystemTime};

/// How one module's upgrade (or rollback) went.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct UpgradeReport {
    /// The module.
    pub module: String,
    /// The generation that served before.
    pub from: u64,
    /// The generation that serves now.
    pub to: u64,
    /// The SHA-256 of the component now serving, in hex.
    pub hash: String,
    /// Whether the module's state moved through `membrane:lifecycle/snapshot`.
    pub state_moved: bool,
    /// From the request to the new generation taking calls (compile, gate, state, switch).
    pub elapsed: Duration,
    /// Of that, compiling (or reading the compiled-code cache).
    pub compile: Duration,
    /// What changed in the module's grants, limits and sandbox (the wider changes were
    /// accepted explicitly, see [`UpgradeOptions`](crate::UpgradeOptions)).
    pub grants: Vec<super::grants::GrantChange>,
}

/// What [`App::reload`](crate::App::reload) did.
#[derive(Debug, Clone, Default, PartialEq)]
#[non_exhaustive]
pub struct ReloadReport {
    /// The modules that got a new generation, providers first.
    pub upgraded: Vec<UpgradeReport>,
    /// The modules whose component, grants, limits and links are unchanged.
    pub unchanged: Vec<String>,
    /// Changes the reload does not apply (they take a restart), such as `[app.http]`.
    pub warnings: Vec<String>,
}

impl UpgradeReport {
    /// The report as JSON, the shape the admin listener's `POST /reload` and
    /// `POST /rollback/<module>` answer with and the C API returns: `module`, `from`, `to`,
    /// `hash` (`sha256:...`), `state_moved`, `elapsed_ms`, `compile_ms`, `grants` (each
    /// change's `kind`, `key`, `old`, `new`, `wider`).
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "module": self.module,
            "from": self.from,
            "to": self.to,
            "hash": format!("sha256:{}", self.hash),
            "state_moved": self.state_moved,
            "elapsed_ms": self.elapsed.as_secs_f64() * 1000.0,
            "compile_ms": self.compile.as_secs_f64() * 1000.0,
            "grants": self.grants.iter().map(|g| serde_json::json!({
                "kind": g.kind,
                "key": g.key,
                "old": g.old,
                "new": g.new,
                "wider": g.wider,
            })).collect::<Vec<_>>(),
        })
    }
}

impl ReloadReport {
    /// The report as JSON: `upgraded` (each an [`UpgradeReport::to_json`]), `unchanged`,
    /// `warnings`.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "upgraded": self.upgraded.iter().map(UpgradeReport::to_json).collect::<Vec<_>>(),
            "unchanged": self.unchanged,
            "warnings": self.warnings,
        })
    }
}

/// The last upgrade or rollback of a module, as its status shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct LastUpgrade {
    /// Whether it switched generations.
    pub ok: bool,
    /// The generation serving before.
    pub from: u64,
    /// The generation serving after (`from` when it failed).
    pub to: u64,
    /// What happened: `upgraded`, `rolled back by hand`, `rolled back: <why>`, or why the
    /// gate refused it.
    pub message: String,
    /// When.
    pub at: SystemTime,
}

/// Where a module's current generation is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum GenerationState {
    /// Serving, with no previous generation kept.
    Serving,
    /// Serving, watched, with the previous generation ready for a rollback.
    Probation {
        /// Time left until the generation is kept for good.
        left: Duration,
    },
}

impl GenerationState {
    /// `serving` or `probation`.
    pub fn as_str(&self) -> &'static str {
        match self {
            GenerationState::Serving => "serving",
            GenerationState::Probation { .. } => "probation",
        }
    }
}
