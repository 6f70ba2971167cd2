//! The gate: the checks a new generation passes before it takes calls, against the live
//! app. They are the load's checks (declaration, compilation, grants that would reach host
//! code, routes, links in both directions with types and versions function by function,
//! cycles), run over the app as it would be after the switch: the modules being upgraded
//! as compiled now, every other module as its current generation. Every problem is
//! reported at once, as `membrane check` does, and a failed gate changes nothing.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use crate::boundary::decl;
use crate::compile::Compiled;
use crate::error::{Error, ErrorKind, Problems, Result};
use crate::generation::Generation;
use crate::link::{self, Planned};
use crate::load::{LoadCx, compile_all};
use crate::module::Module;
use crate::pipeline;
use crate::spec::{AppSpec, HttpSpec, ModuleSpec, Placement};
use crate::validate::{check, locate};

/// What passed the gate: the new modules compiled, and the links of each, providers first.
pub struct Passed {
    pub compiled: BTreeMap<String, Compiled>,
    pub links: BTreeMap<String, Vec<link::Link>>,
    /// The modules to switch, providers before their importers.
    pub order: Vec<String>,
    /// How long compiling (or reading the cache) took.
    pub compile: std::time::Duration,
}

/// A module as planning sees it: being upgraded, or live.
enum Side<'a> {
    New(&'a Compiled),
    Live(Arc<Generation>),
}

impl Planned for Side<'_> {
    fn spec(&self) -> &ModuleSpec {
        match self {
            Side::New(c) => &c.spec,
            Side::Live(g) => &g.spec,
        }
    }
    fn component(&self) -> &wasmtime::component::Component {
        match self {
            Side::New(c) => &c.component,
            Side::Live(g) => g.component(),
        }
    }
}

/// The app's state for the gate.
pub struct Live<'a> {
    pub cx: &'a LoadCx,
    pub modules: &'a BTreeMap<String, Arc<Module>>,
    pub http: Option<&'a HttpSpec>,
    pub admin: &'a crate::spec::AdminSpec,
    pub manifest: Option<&'a Path>,
    pub locations: Option<&'a crate::spec::Locations>,
    /// The largest component file read (`[app] max_component_size` at load).
    pub max_component: u64,
}

/// Runs every check for replacing the modules of `changes` with these declarations.
pub async fn check_upgrade(
    live: &Live<'_>,
    changes: BTreeMap<String, ModuleSpec>,
) -> Result<Passed> {
    let settings = pipeline::settings(live.cx, live.max_component);
    // The declaration as it would be: checked whole, so that links name real modules.
    let mut whole = AppSpec::new();
    for (name, m) in live.modules {
        let spec = match changes.get(name) {
            Some(new) => new.clone(),
            None => m.current().spec.clone(),
        };
        whole = whole.module(name.clone(), spec);
    }
    whole.http = live.http.cloned();
    whole.admin = live.admin.clone();
    if let Some(store) = live.cx.extensions.get::<crate::keyvalue::Store>() {
        whole.keyvalue = store.spec.clone();
        (whole.name, whole.nats) = store.app.clone();
    }
    let mut problems = check(&whole, &settings);
    let old: BTreeMap<String, ModuleSpec> = live
        .modules
        .iter()
        .map(|(n, m)| (n.clone(), m.current().spec.clone()))
        .collect();
    let changed: Vec<&str> = changes.keys().map(String::as_str).collect();
    let (old_decl, new_decl) = (decl(&old), decl(&whole.modules));
    for b in live.cx.boundaries.iter() {
        b.check_upgrade(&old_decl, &new_decl, &changed, &mut problems);
    }
    // Importers' links were built for the provider's boundary (see
    // `Boundary::moves_at_upgrade`): some moves take a restart.
    let moves = |p: Placement| {
        live.cx
            .boundaries
            .get(p)
            .is_none_or(|b| b.moves_at_upgrade())
    };
    for (name, new) in &changes {
        let was = old.get(name).map(|m| m.placement);
        if let Some(was) = was
            && was != new.placement
            && !(moves(was) && moves(new.placement))
        {
            problems.push(
                Error::new(
                    ErrorKind::Manifest,
                    format!(
                        "module `{name}`: its placement changes from \"{was}\" to \"{}\", which a live \
                         upgrade cannot do (the links to it were built for its boundary); restart the app \
                         to move it",
                        new.placement
                    ),
                )
                .with_module(name.as_str())
                .with_key(format!("modules.{name}.placement")),
            );
        }
    }
    locate(live.locations, &mut problems);
    problems.into_result()?;

    let specs = changes.clone();
    let mut problems = Problems::default();
    let started = std::time::Instant::now();
    let compiled = compile_all(live.cx, changes, &settings, None, &mut problems).await;
    let compile = started.elapsed();
    check_overlaps_whole(live, &specs, &compiled, &mut problems);
    pipeline::check_compiled(&live.cx.boundaries, live.http, &compiled, &mut problems);
    for (name, c) in &compiled {
        let Some(m) = live.modules.get(name) else {
            continue;
        };
        let was = m.current().recipe().wasi;
        if was != c.wasi {
            problems.push(
                Error::new(
                    ErrorKind::Manifest,
                    format!(
                        "module `{name}`: the upgrade changes it from a {} to a {} component, which a \
                         live upgrade cannot do (its callers' links and routes were built for how it \
                         runs); restart the app to change it",
                        was.as_str(),
                        c.wasi.as_str()
                    ),
                )
                .with_module(name.as_str())
                .with_key(format!("modules.{name}.component")),
            );
        }
    }
    let failed: Vec<&String> = specs
        .keys()
        .filter(|n| !compiled.contains_key(*n))
        .collect();
    let sides: BTreeMap<String, Side<'_>> = live
        .modules
        .iter()
        .filter(|(name, _)| !failed.contains(name))
        .map(|(name, m)| {
            let side = match compiled.get(name) {
                Some(c) => Side::New(c),
                None => Side::Live(m.current_full()),
            };
            (name.clone(), side)
        })
        .collect();
    let planned = pipeline::plan_links(
        live.cx,
        &sides,
        &failed,
        &whole.modules,
        live.http,
        &mut problems,
    );
    drop(sides);
    locate(live.locations, &mut problems);
    problems.into_result()?;
    let (plan, order) = planned.expect("no problems means a plan");
    let order = order
        .into_iter()
        .filter(|n| compiled.contains_key(n))
        .collect();
    let links = plan
        .links
        .into_iter()
        .filter(|(n, _)| compiled.contains_key(n))
        .collect();
    Ok(Passed {
        compiled,
        links,
        order,
        compile,
    })
}

/// The load's check that no read-write grant reaches code the host runs, over the whole app
/// as it would be: a new grant must not reach an unchanged module's component, nor an
/// unchanged grant a new component.
fn check_overlaps_whole(
    live: &Live<'_>,
    specs: &BTreeMap<String, ModuleSpec>,
    compiled: &BTreeMap<String, Compiled>,
    problems: &mut Problems,
) {
    use crate::capability::fs::Filesystem;
    use crate::capability::protect::{Protected, check_overlaps};
    use crate::spec::ComponentSource;
    let unchanged: Vec<Arc<Generation>> = live
        .modules
        .iter()
        .filter(|(n, _)| !specs.contains_key(*n))
        .map(|(_, m)| m.current_full())
        .collect();
    let mut writable = Vec::new();
    let mut components = Vec::new();
    for c in compiled.values() {
        if let Some(fs) = c.policy.get::<Filesystem>() {
            writable.extend(fs.writable().map(|d| (c.name.as_str(), d)));
        }
        if let ComponentSource::File(p) = &c.spec.source {
            components.push((c.name.as_str(), p.as_path(), c.component_dirs.as_slice()));
        }
    }
    for g in &unchanged {
        if let Some(fs) = g.recipe().policy.get::<Filesystem>() {
            writable.extend(fs.writable().map(|d| (&*g.name, d)));
        }
        if let ComponentSource::File(p) = &g.spec.source {
            components.push((&*g.name, p.as_path(), g.component_dirs.as_slice()));
        }
    }
    let protected = Protected {
        components,
        manifest: live.manifest,
        cache: live.cx.cache_dir.as_deref(),
    };
    check_overlaps(&writable, &protected, problems);
}
