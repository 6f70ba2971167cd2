//! Live upgrade: a module gets a new generation while the app serves.
//!
//! 1. The gate ([`gate`]) compiles the new versions and runs the load's checks against the
//!    live app; a failure changes nothing and lists every problem.
//! 2. Each new generation is built with its links forwarded to the (stable) provider
//!    modules, and a module's state moves over when both versions export
//!    `membrane:lifecycle/snapshot` ([`snapshot`]).
//! 3. The switch, providers first: new calls go to the new generation; calls and resource
//!    sessions already running finish on the old one, which is dropped once drained, or
//!    retired at its drain time (what still runs then ends as `Unavailable`).
//! 4. Probation: the previous generation stays ready; if the new one's circuit opens, or
//!    more than `rollback_ratio` of its calls fail, the module rolls back by itself.

pub mod gate;
pub mod grants;
pub mod report;
pub mod snapshot;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use crate::error::{Error, ErrorKind, Result};
use crate::generation::Generation;
use crate::link::LinkInfo;
use crate::load::assemble;
use crate::module::Module;
use crate::spec::ModuleSpec;
use report::{LastUpgrade, UpgradeReport};

/// How often the watcher of a switch looks at the old generation.
const WATCH_EVERY: Duration = Duration::from_millis(10);

/// Upgrades the modules of `changes` together: all gated before any switches.
/// Returns a report per module, providers first, and the new links of those modules.
pub async fn upgrade(
    live: &gate::Live<'_>,
    changes: BTreeMap<String, ModuleSpec>,
    options: grants::UpgradeOptions,
) -> Result<(Vec<UpgradeReport>, Vec<LinkInfo>)> {
    let started = Instant::now();
    let mut guards = Vec::new();
    for name in changes.keys() {
        let module = live.modules.get(name).ok_or_else(|| {
            Error::not_found(format!(
                "the app has no module `{name}` to upgrade; a reload cannot add modules (restart the app)"
            ))
            .with_module(name)
        })?;
        let guard = module.upgrades.try_lock().map_err(|_| {
            Error::new(
                ErrorKind::Conflict,
                format!("module `{name}` is being upgraded already; try again when that upgrade has finished"),
            )
            .with_module(name)
        })?;
        guards.push(guard);
    }
    let names: Vec<String> = changes.keys().cloned().collect();
    match switch_all(live, changes, options, started).await {
        Ok(done) => Ok(done),
        Err(e) => {
            let message = crate::error::chain(&e);
            for name in &names {
                let m = &live.modules[name];
                let number = m.current().number;
                m.history().last = Some(LastUpgrade {
                    ok: false,
                    from: number,
                    to: number,
                    message: message.clone(),
                    at: SystemTime::now(),
                });
            }
            tracing::warn!(target: "membrane::upgrade", modules = ?names, error = %message, "upgrade refused; nothing changed");
            Err(e)
        }
    }
}

async fn switch_all(
    live: &gate::Live<'_>,
    changes: BTreeMap<String, ModuleSpec>,
    options: grants::UpgradeOptions,
    started: Instant,
) -> Result<(Vec<UpgradeReport>, Vec<LinkInfo>)> {
    // A module may get more authority only with the operator's word.
    let mut authority: BTreeMap<String, Vec<grants::GrantChange>> = changes
        .iter()
        .map(|(name, new)| {
            let old = live.modules[name].current();
            (name.clone(), grants::changes(name, &old.spec, new))
        })
        .collect();
    let all: Vec<grants::GrantChange> = authority.values().flatten().cloned().collect();
    grants::consent(&all, options)?;
    let mut passed = gate::check_upgrade(live, changes).await?;
    let mut built = Vec::new();
    let mut infos = Vec::new();
    for name in &passed.order {
        let m = &live.modules[name];
        let c = passed
            .compiled
            .remove(name)
            .expect("gated modules are compiled");
        let links = passed.links.get(name).map_or(&[][..], Vec::as_slice);
        let number = m.history().highest + 1;
        let (generation, mut module_links) = assemble(
            live.cx,
            c,
            links,
            live.modules,
            number,
            m.pool.clone(),
            m.metrics.clone(),
        )?;
        infos.append(&mut module_links);
        built.push((m.clone(), Arc::new(generation)));
    }
    // The state of every module that keeps one moves before anything switches.
    let mut held = Vec::new();
    let mut moved = Vec::new();
    for (m, new) in &built {
        let old = m.current_full();
        if !snapshot::applies(&old, new) {
            moved.push(false);
            continue;
        }
        match snapshot::carry(&old, new).await {
            Ok(h) => {
                moved.push(h.is_some());
                held.extend(h);
            }
            Err(e) => {
                held.into_iter().for_each(snapshot::Held::abort);
                return Err(e);
            }
        }
    }
    let mut reports = Vec::new();
    for ((m, new), state_moved) in built.into_iter().zip(moved) {
        let old = switch(&m, new.clone());
        tracing::info!(
            target: "membrane::upgrade",
            module = %m.name,
            from = old.number,
            to = new.number,
            hash = %&new.hash[..12],
            elapsed = ?started.elapsed(),
            "upgraded"
        );
        let grants = authority.remove(&*m.name).unwrap_or_default();
        grants::audit(&grants);
        reports.push(UpgradeReport {
            module: m.name.to_string(),
            from: old.number,
            to: new.number,
            hash: new.hash.to_string(),
            state_moved,
            elapsed: started.elapsed(),
            compile: passed.compile,
            grants,
        });
        watch(&m, old, Some(new));
    }
    held.into_iter().for_each(snapshot::Held::release);
    Ok((reports, infos))
}

/// Makes `new` the module's current generation; the old one starts draining and, when the
/// new one has a probation, stays ready for a rollback.
fn switch(m: &Arc<Module>, new: Arc<Generation>) -> Arc<Generation> {
    let policy = new.spec.upgrade;
    let mut h = m.history();
    let old = m.switch(new.clone());
    // Replaced while on probation: its failures no longer say anything about what serves.
    old.life.unwatch();
    reconfigure(m, &old, &new);
    h.highest = h.highest.max(new.number);
    // A generation kept for an earlier probation is no longer needed; if it still runs
    // calls, its own watcher drains it.
    h.previous = None;
    h.draining.push(old.clone());
    if policy.probation.is_zero() {
        h.probation_until = None;
    } else {
        h.previous = Some(old.clone());
        h.probation_until = Some(Instant::now() + policy.probation);
        let (weak, tripped) = (Arc::downgrade(m), Arc::downgrade(&new));
        new.life.watch(
            policy.rollback_ratio,
            new.spec.restart.max,
            Box::new(move |reason| {
                // Only the generation that serves is rolled back.
                if let (Some(m), Some(g)) = (weak.upgrade(), tripped.upgrade())
                    && Arc::ptr_eq(&m.current(), &g)
                {
                    let _ = rollback(&m, Some(reason));
                }
            }),
        );
    }
    h.last = Some(LastUpgrade {
        ok: true,
        from: old.number,
        to: new.number,
        message: "upgraded".into(),
        at: SystemTime::now(),
    });
    old
}

/// The pool takes the new generation's concurrency when it changed.
fn reconfigure(m: &Module, old: &Generation, new: &Generation) {
    let (a, b) = (&old.spec, &new.spec);
    if a.limits.instances != b.limits.instances
        || a.limits.queue != b.limits.queue
        || a.lifecycle != b.lifecycle
    {
        m.pool
            .reconfigure(b.limits.instances, b.limits.queue, b.lifecycle);
    }
}

/// Goes back to the previous generation (kept during the current one's probation). `why`
/// is the automatic rollback's reason; `None` for a rollback by hand.
pub fn rollback(m: &Arc<Module>, why: Option<String>) -> Result<UpgradeReport> {
    let started = Instant::now();
    let mut h = m.history();
    let Some(previous) = h.previous.take() else {
        return Err(Error::not_found(format!(
            "module `{}` has no previous generation to roll back to: a rollback is possible during the probation after an upgrade ([modules.{}.upgrade] probation)",
            m.name, m.name
        ))
        .with_module(&*m.name));
    };
    let bad = m.current_full();
    bad.life.unwatch();
    previous
        .life
        .retired
        .store(false, std::sync::atomic::Ordering::Release);
    let replaced = m.switch(previous.clone());
    reconfigure(m, &replaced, &previous);
    h.draining.retain(|g| !Arc::ptr_eq(g, &previous));
    h.draining.push(bad.clone());
    h.probation_until = None;
    let message = match &why {
        Some(why) => format!("rolled back: {why}"),
        None => "rolled back by hand".to_string(),
    };
    tracing::warn!(
        target: "membrane::upgrade",
        module = %m.name,
        from = bad.number,
        to = previous.number,
        reason = %message,
        "rolled back"
    );
    h.last = Some(LastUpgrade {
        ok: true,
        from: bad.number,
        to: previous.number,
        message,
        at: SystemTime::now(),
    });
    drop(h);
    watch(m, bad.clone(), None);
    Ok(UpgradeReport {
        module: m.name.to_string(),
        from: bad.number,
        to: previous.number,
        hash: previous.hash.to_string(),
        state_moved: false,
        elapsed: started.elapsed(),
        compile: Duration::ZERO,
        // The grants of a version that served before, back with it.
        grants: grants::changes(&m.name, &bad.spec, &previous.spec),
    })
}

/// Watches a switch on a thread of its own (upgrades are rare; this works under any
/// executor): drops `old` from the draining list once nothing runs on it, retires it at its
/// drain time, and ends `new`'s probation when it has passed. It holds the module weakly:
/// an app dropped meanwhile is freed at once, and the thread ends.
fn watch(m: &Arc<Module>, old: Arc<Generation>, new: Option<Arc<Generation>>) {
    let name = m.name.clone();
    let start = Instant::now();
    let drain_end = start + old.spec.upgrade.drain;
    let probation_end = new.as_ref().map(|n| start + n.spec.upgrade.probation);
    let (m, old, new) = (
        Arc::downgrade(m),
        Arc::downgrade(&old),
        new.as_ref().map(Arc::downgrade),
    );
    let spawned = std::thread::Builder::new()
        .name(format!("membrane-upgrade-{name}"))
        .spawn(move || {
            let mut drained = false;
            let mut probation_done = probation_end.is_none();
            loop {
                let Some(m) = m.upgrade() else { break };
                let now = Instant::now();
                if !drained {
                    drained = match old.upgrade() {
                        Some(old) => drain_step(&m, &old, now >= drain_end),
                        None => true,
                    };
                }
                if !probation_done && probation_end.is_some_and(|end| now >= end) {
                    if let (Some(old), Some(new)) = (
                        old.upgrade(),
                        new.as_ref().and_then(std::sync::Weak::upgrade),
                    ) {
                        end_probation(&m, &old, &new);
                    }
                    probation_done = true;
                }
                drop(m);
                if drained && probation_done {
                    break;
                }
                std::thread::sleep(WATCH_EVERY);
            }
        });
    if let Err(e) = spawned {
        tracing::error!(target: "membrane::upgrade", module = %name, error = %e, "cannot start the thread that drains the old generation");
    }
}

/// One look at a draining generation; true when done with it.
fn drain_step(m: &Module, old: &Arc<Generation>, time_is_up: bool) -> bool {
    let mut h = m.history();
    if Arc::ptr_eq(&m.current(), old) {
        // Rolled back to it: it serves again.
        return true;
    }
    if old.life.drained() {
        h.draining.retain(|g| !Arc::ptr_eq(g, old));
        tracing::debug!(target: "membrane::upgrade", module = %m.name, generation = old.number, "drained");
        return true;
    }
    // Kept ready for a rollback: not retired while the probation lasts.
    let kept = h.previous.as_ref().is_some_and(|p| Arc::ptr_eq(p, old));
    if time_is_up && !kept {
        let running = old
            .life
            .in_flight
            .load(std::sync::atomic::Ordering::Acquire);
        let sessions = old.life.sessions.load(std::sync::atomic::Ordering::Acquire);
        old.life
            .retired
            .store(true, std::sync::atomic::Ordering::Release);
        h.draining.retain(|g| !Arc::ptr_eq(g, old));
        tracing::warn!(
            target: "membrane::upgrade",
            module = %m.name,
            generation = old.number,
            running,
            sessions,
            "drain time over: ending what still runs on the old generation"
        );
        return true;
    }
    false
}

/// The probation of `new` passed: it is kept for good, `old` is no longer kept ready.
fn end_probation(m: &Module, old: &Arc<Generation>, new: &Arc<Generation>) {
    let mut h = m.history();
    if !Arc::ptr_eq(&m.current(), new) {
        return;
    }
    new.life.unwatch();
    if h.previous.as_ref().is_some_and(|p| Arc::ptr_eq(p, old)) {
        h.previous = None;
    }
    h.probation_until = None;
    let (calls, failed) = new.life.probation_counts();
    tracing::info!(target: "membrane::upgrade", module = %m.name, generation = new.number, calls, failed, "probation passed");
}
