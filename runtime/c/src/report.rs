//! Statuses as JSON text (upgrade and reload reports are the core's `to_json`), the shape of the admin listener's `/status`
//! where they overlap (runtime/serve/src/admin.rs), so a C host and an operator read the
//! same names.

use membrane::{App, GenerationState, ModuleStatus};
use serde_json::{Value, json};

fn ms(d: std::time::Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// One module's status.
pub fn module_status(app: &App, name: &str, s: &ModuleStatus) -> Value {
    let limits = app.spec(name).map(|spec| spec.limits);
    let probation_left_ms = match s.state {
        GenerationState::Probation { left } => Some(ms(left)),
        _ => None,
    };
    let last_upgrade = s.last_upgrade.as_ref().map(|u| {
        json!({
            "ok": u.ok,
            "from": u.from,
            "to": u.to,
            "message": u.message,
        })
    });
    json!({
        "generation": s.generation,
        "hash": format!("sha256:{}", s.hash),
        "placement": s.placement.as_str(),
        "state": s.state.as_str(),
        "probation_left_ms": probation_left_ms,
        "draining": s.draining,
        "calls": s.calls,
        "busy": s.busy,
        "running": s.running,
        "idle": s.idle,
        "waiting": s.waiting,
        "circuit": s.health.as_str(),
        "retry_in_ms": s.health.retry_in().map(ms),
        "recent_failures": s.recent_failures,
        "failing": s.failing(),
        "instances_limit": limits.as_ref().map(|l| l.instances),
        "memory_limit": limits.as_ref().map(|l| l.memory),
        "timeout_ms": limits.as_ref().map(|l| ms(l.timeout)),
        "entry": s.entry,
        "last_upgrade": last_upgrade,
        "last_minute": {
            "calls": s.recent.calls,
            "failures": s.recent.failures.iter()
                .map(|(k, n)| (k.to_string(), json!(n)))
                .collect::<serde_json::Map<_, _>>(),
        },
    })
}

/// Every module's status: `{"modules": {"<name>": {...}}}`.
pub fn app_status(app: &App) -> Value {
    let modules: serde_json::Map<String, Value> = app
        .status()
        .iter()
        .map(|(name, s)| (name.clone(), module_status(app, name, s)))
        .collect();
    json!({ "modules": modules })
}
