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
//! refused reload lists everything. [`LoadCx`], what both need of the runtime, lives here
//! too.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::cache::Cache;
use crate::compile::Compiled;
use crate::error::Error;
use crate::error::Problems;
use crate::exports::Exports;
use crate::link::host::HostInterface;
use crate::link::{self, Planned};
use crate::linkers::Linkers;
use crate::p3::Wasi;
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

/// Stage 3: the routes to and the snapshot interfaces of the modules that compiled, and
/// what WASI 0.3 modules cannot have yet.
pub fn check_compiled(
    boundaries: &crate::boundary::Boundaries,
    http: Option<&HttpSpec>,
    compiled: &BTreeMap<String, Compiled>,
    problems: &mut Problems,
) {
    if let Some(http) = http {
        check_routes(http, compiled, problems);
    }
    check_snapshots(compiled, problems);
    for c in compiled.values().filter(|c| c.wasi == Wasi::P3) {
        check_p3(boundaries, c, problems);
    }
}

/// Refuses what a WASI 0.3 module cannot have: a placement that cannot carry it, and fuel
/// shared by concurrent calls.
fn check_p3(boundaries: &crate::boundary::Boundaries, c: &Compiled, problems: &mut Problems) {
    let name = &c.name;
    let placement = c.spec.placement;
    // A placement that is not built in is refused by the declaration's checks already.
    if boundaries
        .get(placement)
        .is_some_and(|b| !b.carries_wasi_p3())
    {
        let carry: Vec<String> = boundaries
            .iter()
            .filter(|b| b.carries_wasi_p3())
            .map(|b| format!("{:?}", b.placement().as_str()))
            .collect();
        problems.push(
            Error::manifest(format!(
                "module `{name}` is a WASI 0.3 module, which cannot run with placement = {:?} yet; \
                 set `placement` to one of {} (or remove it for \"isolated\")",
                placement.as_str(),
                carry.join(", ")
            ))
            .with_module(name)
            .with_key(format!("modules.{name}.placement")),
        );
    }
    if c.spec.limits.fuel.is_some() && c.spec.limits.concurrency > 1 {
        problems.push(
            Error::manifest(format!(
                "module `{name}` is a WASI 0.3 module with limits.fuel and limits.concurrency = {}: fuel \
                 is counted per instance, so concurrent calls would share one budget; set \
                 limits.concurrency = 1 to meter each call, or remove limits.fuel",
                c.spec.limits.concurrency
            ))
            .with_module(name)
            .with_key(format!("modules.{name}.limits.fuel")),
        );
    }
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
    let plan = match link::plan(modules, failed, &cx.hosts, &cx.boundaries) {
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

/// What loading needs from the runtime.
#[derive(Clone)]
pub struct LoadCx {
    pub engine: wasmtime::Engine,
    /// The engine, linker and cache of WASI 0.3 modules.
    #[cfg(feature = "p3")]
    pub p3: crate::p3::engine::P3Engine,
    /// The runtime's linkers: WASI and its wrappers; each module adds its links to clones.
    pub linkers: Linkers,
    pub cache: Option<Arc<Cache>>,
    pub cache_dir: Option<std::path::PathBuf>,
    pub metered: bool,
    pub epoch_tick: std::time::Duration,
    pub max_wasm_stack: usize,
    /// Whether calls are counted in the app's metrics.
    pub metrics: bool,
    /// The program started as a `process` module's worker (`None`: this executable).
    pub worker_program: Option<std::path::PathBuf>,
    /// The host interfaces registered when the load started.
    pub hosts: std::collections::HashMap<String, Arc<HostInterface>>,
    /// What the placements attached to the app as it loaded (the remote placement's NATS
    /// connection).
    pub extensions: crate::extensions::Extensions,
    /// The placements this runtime serves, one boundary each.
    pub boundaries: crate::boundary::Boundaries,
    /// Whether to connect to NATS for `remote` modules ([`Config::connect_nats`](crate::Config)).
    pub connect_nats: bool,
    /// What pulls `oci://` components ([`Config::fetcher`](crate::Config)).
    pub fetcher: Option<Arc<dyn crate::fetch::ComponentFetcher>>,
}

/// Refuses a route to a module that does not export `wasi:http/incoming-handler@0.2.x`.
pub fn check_routes(
    http: &HttpSpec,
    compiled: &BTreeMap<String, Compiled>,
    problems: &mut Problems,
) {
    for (prefix, module) in &http.routes {
        let Some(c) = compiled.get(module) else {
            continue;
        };
        let exports = Exports::new(
            module.as_str().into(),
            c.component.clone(),
            c.component.engine().clone(),
        );
        if let Err(why) = crate::route::check_handler(&exports, c.wasi) {
            problems.push(
                Error::link(format!(
                    "module `{module}` is routed at {prefix:?} (app.http.routes) but {why}; \
                     build it for the wasi:http proxy world, or route the path to a module that is"
                ))
                .with_module(module)
                .with_export(crate::incoming::HANDLER)
                .with_key(format!("app.http.routes.{prefix}")),
            );
        }
    }
}

/// Refuses a module that exports the snapshot interface with other types.
pub fn check_snapshots(compiled: &BTreeMap<String, Compiled>, problems: &mut Problems) {
    for (name, c) in compiled {
        let exports = Exports::new(
            name.as_str().into(),
            c.component.clone(),
            c.component.engine().clone(),
        );
        if let Err(e) = crate::upgrade::snapshot::check(name, &exports) {
            problems.push(e.with_key(format!("modules.{name}.component")));
        }
    }
}
