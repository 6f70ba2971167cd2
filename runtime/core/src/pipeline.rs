//! The stages a fresh load ([`crate::load::load`]) and an upgrade's gate
//! ([`crate::upgrade::gate::check_upgrade`]) share, so that an upgrade is refused for exactly
//! what a load of the app as it would be would refuse:
//!
//! 1. the declaration's checks, with the runtime's [`Settings`];
//! 2. compilation (each mode its own: a load may compile some modules as another component);
//! 3. what the compiled components must satisfy ([`check_compiled`]): routed modules export
//!    the HTTP handler, snapshot interfaces have the snapshot types;
//! 4. the links of the app as it would be ([`plan_links`]): every import satisfied and
//!    type-checked, no cycle, and each placement's rules on the links.
//!
//! Each stage pushes its problems and goes on where it can, so that one `check` or one
//! refused reload lists everything.

use std::collections::BTreeMap;

use crate::compile::Compiled;
use crate::error::Problems;
use crate::link::{self, Planned};
use crate::load::{LoadCx, check_routes, check_snapshots};
use crate::spec::{HttpSpec, ModuleSpec};
use crate::validate::Settings;

/// The settings of the declaration's checks for this runtime; `max_component` is the app's
/// largest component file.
pub fn settings(cx: &LoadCx, max_component: u64) -> Settings {
    Settings {
        metered: cx.metered,
        epoch_tick: cx.epoch_tick,
        max_component,
        boundaries: cx.boundaries.clone(),
    }
}

/// Stage 3: the routes to and the snapshot interfaces of the modules that compiled.
pub fn check_compiled(
    cx: &LoadCx,
    http: Option<&HttpSpec>,
    compiled: &BTreeMap<String, Compiled>,
    problems: &mut Problems,
) {
    if let Some(http) = http {
        check_routes(cx, http, compiled, problems);
    }
    check_snapshots(cx, compiled, problems);
}

/// Stage 4: the links of `modules` (every module of the app as it would be, compiled or
/// live; `failed` did not compile and are skipped, their own error says why), the order to
/// build them in (providers first), and each placement's rules on them given `decl` (every
/// module's declaration) and the HTTP routes. `None` when a problem was pushed.
pub fn plan_links<M: Planned>(
    cx: &LoadCx,
    modules: &BTreeMap<String, M>,
    failed: &[&String],
    decl: &BTreeMap<String, ModuleSpec>,
    http: Option<&HttpSpec>,
    problems: &mut Problems,
) -> Option<(link::Plan, Vec<String>)> {
    let plan = match link::plan(&cx.engine, modules, failed, &cx.hosts, &cx.boundaries) {
        Ok(plan) => plan,
        Err(e) => {
            problems.push(e);
            return None;
        }
    };
    let routes: Vec<(&str, &str)> = http
        .iter()
        .flat_map(|h| h.routes.iter().map(|(p, m)| (p.as_str(), m.as_str())))
        .collect();
    for b in cx.boundaries.iter() {
        b.check_links(decl, &plan.links, &routes, problems);
    }
    match link::order(&plan.links) {
        Ok(order) => Some((plan, order)),
        Err(e) => {
            problems.push(e);
            None
        }
    }
}
