//! Loading an app: from a declaration to modules ready to call.
//!
//! 1. Validate the declaration in one pass ([`crate::validate`]).
//! 2. Compile every module and prepare its units, in parallel, one worker per core.
//! 3. Refuse read-write grants that reach code the host runs ([`crate::capability::protect`]),
//!    and check routes and snapshots ([`pipeline::check_compiled`]).
//! 4. Plan the links (types and versions checked function by function), refuse cycles
//!    ([`pipeline::plan_links`]), and build each module's linker with its links forwarded,
//!    providers first.
//!
//! An upgrade's gate (`upgrade/gate.rs`) runs the same stages (`pipeline.rs`) on the app as
//! it would be, and stops before building.
//!
//! Every problem found up to the link plan is reported at once, so one `membrane check`
//! shows everything to fix.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use crate::capability::fs::Filesystem;
use crate::capability::protect::{Protected, check_overlaps};
use crate::compile::{Compiled, Engines};
use crate::error::{Error, ErrorKind, Problems, Result};
use crate::generation::Generation;
use crate::instance::Flavour;
use crate::link::{self, LinkInfo, forward::Provider};
use crate::metrics::Metrics;
use crate::module::Module;
use crate::names::HOST;
#[cfg(feature = "p3")]
use crate::p3::Wasi;
use crate::pipeline;
use crate::pool::Pool;
use crate::spec::{AdminSpec, AppSpec, HttpSpec, ModuleSpec};
use crate::unit::ModuleCx;
use crate::validate::{Settings, check, locate};

/// Progress of a load, for a progress bar: `done` of `total` modules compiled, the last
/// one being `module`.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub struct LoadProgress<'a> {
    /// Modules compiled so far.
    pub done: usize,
    /// Modules to compile.
    pub total: usize,
    /// The module just compiled.
    pub module: &'a str,
}

/// A callback told of each compiled module.
pub type OnProgress<'a> = &'a (dyn Fn(LoadProgress<'_>) + Send + Sync);

pub use crate::pipeline::LoadCx;

/// What a load produces.
pub struct Loaded {
    pub modules: BTreeMap<String, Arc<Module>>,
    pub entry: Option<String>,
    pub links: Vec<LinkInfo>,
    pub warnings: Vec<String>,
    pub http: Option<HttpSpec>,
    pub admin: AdminSpec,
}

pub async fn load(
    rt: &LoadCx,
    spec: AppSpec,
    progress: Option<OnProgress<'_>>,
    metrics: &Arc<Metrics>,
) -> Result<Loaded> {
    let settings = pipeline::settings(rt, spec.component_size_limit());
    let mut problems = check(&spec, &settings);
    if let Some(stack) = spec.stack
        && stack != rt.max_wasm_stack as u64
    {
        problems.push(
            Error::manifest(format!(
                "the app asks for a wasm stack of {}, but this runtime was created with {}; \
                 set Config::max_wasm_stack to match (the membrane command does)",
                crate::units::format_size(stack),
                crate::units::format_size(rt.max_wasm_stack as u64)
            ))
            .with_key("app.stack"),
        );
    }
    let locations = spec.locations.clone();
    // Problems of the declaration do not stop the load here: every module is still
    // compiled and its grants opened, so that one `membrane check` reports every problem
    // it can reach. What builds on a sound declaration (fused compositions, the link
    // plan) waits for one.
    let sound = problems.is_empty();

    // The remote modules this process hosts run here from now on.
    let mut spec = spec;
    // Components in registries become local files before anything reads them.
    crate::fetch::resolve_all(
        rt.fetcher.as_ref(),
        &mut spec.modules,
        settings.max_component,
        locations.as_deref(),
    )
    .await
    .map_err(|e| {
        problems.push(e);
        locate(locations.as_deref(), &mut problems);
        std::mem::take(&mut problems)
            .into_result()
            .expect_err("a problem was pushed")
    })?;
    for name in &spec.hosted {
        if let Some(m) = spec.modules.get_mut(name) {
            m.placement = crate::spec::Placement::Isolated;
        }
    }
    let entry = spec.entry_name().map(str::to_string);
    let (http, admin) = (spec.http.clone(), spec.admin.clone());
    let started = std::time::Instant::now();
    let specs = spec.modules.clone();
    let manifest = spec.manifest_path().map(std::path::Path::to_path_buf);
    // A placement may compile some modules as another component (fused importers as their
    // composition); they get their own identity back after.
    let prepared = if sound {
        prepare(rt, &specs, settings.max_component, &mut problems).await
    } else {
        Vec::new()
    };
    let mut to_compile = spec.modules;
    for p in &prepared {
        to_compile = p.swap(to_compile);
    }
    let mut compiled = compile_all(rt, to_compile, &settings, progress, &mut problems).await;
    for p in &prepared {
        compiled = p.restore(compiled);
    }
    tracing::debug!(target: "membrane::load", elapsed = ?started.elapsed(), modules = compiled.len(), "compiled");
    check_grant_overlaps(rt, &specs, &compiled, manifest.as_deref(), &mut problems);
    pipeline::check_compiled(&rt.boundaries, http.as_ref(), &compiled, &mut problems);
    let failed: Vec<&String> = specs
        .keys()
        .filter(|n| !compiled.contains_key(*n))
        .collect();
    let planned = sound
        .then(|| pipeline::plan_links(rt, &compiled, &failed, &specs, http.as_ref(), &mut problems))
        .flatten();
    locate(locations.as_deref(), &mut problems);
    problems.into_result()?;
    let (plan, order) = planned.expect("no problems means a plan");
    tracing::debug!(target: "membrane::load", elapsed = ?started.elapsed(), "links planned");
    let mut compiled = compiled;
    let mut modules: BTreeMap<String, Arc<Module>> = BTreeMap::new();
    let mut infos = Vec::new();
    for name in order {
        let Some(c) = compiled.remove(&name) else {
            continue;
        };
        let links = plan.links.get(&name).map_or(&[][..], Vec::as_slice);
        let limits = &c.spec.limits;
        let pool = Arc::new(Pool::new(limits.instances, limits.queue, c.spec.lifecycle));
        let (generation, mut module_links) =
            assemble(rt, c, links, &modules, 1, pool, metrics.module(&name))?;
        infos.append(&mut module_links);
        modules.insert(name, Arc::new(Module::new(generation)));
    }
    infos.sort_by(|a, b| (&a.importer, &a.import).cmp(&(&b.importer, &b.import)));
    let mut warnings = plan.warnings;
    for p in &prepared {
        p.report(&mut infos);
        warnings.extend(p.warnings());
    }
    warnings.extend(descriptor_warning(&specs));
    tracing::debug!(target: "membrane::load", elapsed = ?started.elapsed(), "linked and pre-instantiated");
    Ok(Loaded {
        modules,
        entry,
        links: infos,
        warnings,
        http,
        admin,
    })
}

/// What each placement replaces before compilation.
pub async fn prepare(
    rt: &LoadCx,
    specs: &BTreeMap<String, ModuleSpec>,
    max_component: u64,
    problems: &mut Problems,
) -> Vec<Box<dyn crate::boundary::Prepared>> {
    let mut prepared = Vec::new();
    for b in rt.boundaries.iter() {
        if let Some(p) = b.prepare(specs, max_component, problems).await {
            prepared.push(p);
        }
    }
    prepared
}

/// Builds generation `number` of a compiled module: its links forwarded to their providers
/// (modules of `modules`, or host interfaces), pre-instantiated in both flavours. Returns it
/// with its links as [`LinkInfo`]s.
pub fn assemble(
    rt: &LoadCx,
    c: Compiled,
    links: &[link::Link],
    modules: &BTreeMap<String, Arc<Module>>,
    number: u64,
    pool: Arc<Pool>,
    metrics: Arc<crate::metrics::ModuleMetrics>,
) -> Result<(Generation, Vec<LinkInfo>)> {
    #[cfg(feature = "p3")]
    if c.wasi == Wasi::P3 {
        return assemble_p3(rt, c, links, modules, number, pool, metrics);
    }
    let name = c.name.clone();
    let (mut sync, mut async_) = (rt.linkers.sync.clone(), rt.linkers.async_.clone());
    let mut link_slots = 0;
    let mut infos = Vec::new();
    for l in links {
        let provider = provider_of(rt, modules, l);
        let slot = link_slots;
        if !l.resources.is_empty() && l.provider != HOST {
            link_slots += 1;
        }
        link::forward::define(&mut sync, Flavour::Sync, &name, l, &provider, slot)?;
        link::forward::define(&mut async_, Flavour::Async, &name, l, &provider, slot)?;
        infos.push(link_info(&name, l));
    }
    let pres = (pre(&sync, &c)?, pre(&async_, &c)?);
    let transport = start_boundary(rt, &c, links, modules, &metrics)?;
    let mut generation = Generation::new(number, c, pres, link_slots, pool, metrics);
    if let Some(t) = transport {
        generation = generation.with_transport(t);
    }
    Ok((generation, infos))
}

/// Starts `c` in its placement: `Some` transport when its calls run elsewhere.
fn start_boundary(
    rt: &LoadCx,
    c: &Compiled,
    links: &[link::Link],
    modules: &BTreeMap<String, Arc<Module>>,
    metrics: &Arc<crate::metrics::ModuleMetrics>,
) -> Result<Option<Arc<dyn crate::transport::Transport>>> {
    let Some(b) = rt.boundaries.get(c.spec.placement) else {
        return Ok(None);
    };
    b.start(&crate::boundary::StartCx {
        engine: crate::boundary::EngineSettings {
            epoch_tick: rt.epoch_tick,
            max_wasm_stack: rt.max_wasm_stack,
            fuel: rt.metered,
        },
        worker_program: rt.worker_program.as_deref(),
        extensions: &rt.extensions,
        compiled: c,
        links,
        modules,
        metrics,
    })
}

/// Who serves link `l`: a module of the app, or an interface of the host.
fn provider_of(rt: &LoadCx, modules: &BTreeMap<String, Arc<Module>>, l: &link::Link) -> Provider {
    if l.provider == HOST {
        Provider::Host(rt.hosts[&l.export].clone())
    } else {
        Provider::Module(modules[&l.provider].clone())
    }
}

/// Link `l` of `importer`, as the app reports it.
fn link_info(importer: &str, l: &link::Link) -> LinkInfo {
    LinkInfo {
        importer: importer.to_string(),
        import: l.import.clone(),
        provider: l.provider.clone(),
        export: l.export.clone(),
        fused: false,
    }
}

/// `c` pre-instantiated against `linker`, which must satisfy every import.
fn pre(
    linker: &wasmtime::component::Linker<crate::instance::HostState>,
    c: &Compiled,
) -> Result<wasmtime::component::InstancePre<crate::instance::HostState>> {
    linker.instantiate_pre(&c.component).map_err(|e| {
        Error::link(format!(
            "module `{}`: its imports cannot be satisfied",
            c.name
        ))
        .with_module(&c.name)
        .with_source(e)
    })
}

#[cfg(feature = "p3")]
/// [`assemble`] for a WASI 0.3 module: one linker (the 0.3 engine's), links forwarded
/// without blocking the instance's other calls, and the generation's own executor (or its
/// placement's transport).
fn assemble_p3(
    rt: &LoadCx,
    c: Compiled,
    links: &[link::Link],
    modules: &BTreeMap<String, Arc<Module>>,
    number: u64,
    pool: Arc<Pool>,
    metrics: Arc<crate::metrics::ModuleMetrics>,
) -> Result<(Generation, Vec<LinkInfo>)> {
    let name = c.name.clone();
    let mut linker = rt.p3.linker.clone();
    let mut infos = Vec::new();
    for l in links {
        let provider = provider_of(rt, modules, l);
        link::forward::define(&mut linker, Flavour::Concurrent, &name, l, &provider, 0)?;
        infos.push(link_info(&name, l));
    }
    let pre = pre(&linker, &c)?;
    let transport = start_boundary(rt, &c, links, modules, &metrics)?;
    let generation = Generation::new(number, c, (pre.clone(), pre), 0, pool, metrics);
    match transport {
        // Served by another host (`carries_wasi_p3`): its calls go there as values.
        Some(t) => Ok((generation.with_transport(t), infos)),
        None => Ok((generation.with_executor()?, infos)),
    }
}

/// Compiles every module with one worker per core pulling from a shared queue (a thread per
/// module would only add start-up and contention: wasmtime parallelises each compilation
/// too). Failures go to `problems`, each naming its module.
pub async fn compile_all(
    rt: &LoadCx,
    modules: BTreeMap<String, ModuleSpec>,
    settings: &Settings,
    progress: Option<OnProgress<'_>>,
    problems: &mut Problems,
) -> BTreeMap<String, Compiled> {
    let total = modules.len();
    let queue = Arc::new(Mutex::new(modules.into_iter().collect::<Vec<_>>()));
    let (done_tx, mut done_rx) = tokio::sync::mpsc::unbounded_channel();
    let workers = std::thread::available_parallelism().map_or(2, |n| n.get());
    let (metered, epoch_tick, max_component) = (
        settings.metered,
        settings.epoch_tick,
        settings.max_component,
    );
    let keyvalue = rt
        .extensions
        .get::<crate::keyvalue::Store>()
        .map(|s| s.backend.clone());
    let mut tasks = Vec::new();
    for _ in 0..workers.min(total.max(1)) {
        let keyvalue = keyvalue.clone();
        let (engine, cache) = (rt.engine.clone(), rt.cache.clone());
        #[cfg(feature = "p3")]
        let p3 = rt.p3.clone();
        let (queue, done) = (queue.clone(), done_tx.clone());
        tasks.push(tokio::task::spawn_blocking(move || {
            loop {
                let next = queue.lock().unwrap_or_else(|p| p.into_inner()).pop();
                let Some((name, spec)) = next else { break };
                let cx = ModuleCx {
                    name: &name,
                    spec: &spec,
                    metered,
                    epoch_tick,
                    max_component,
                    keyvalue: keyvalue.clone(),
                };
                let engines = Engines {
                    p2: &engine,
                    p2_cache: cache.as_deref(),
                    #[cfg(feature = "p3")]
                    p3: &p3,
                };
                let result =
                    Compiled::new(engines, &cx, spec.clone()).map_err(|e| e.in_module(&name));
                if done.send((name, result)).is_err() {
                    break;
                }
            }
        }));
    }
    drop(done_tx);
    let mut compiled = BTreeMap::new();
    let mut done = 0;
    while let Some((name, result)) = done_rx.recv().await {
        done += 1;
        if let Some(report) = progress {
            report(LoadProgress {
                done,
                total,
                module: &name,
            });
        }
        match result {
            Ok(c) => {
                compiled.insert(name, c);
            }
            Err(e) => problems.push(e),
        }
    }
    for task in tasks {
        if let Err(join) = task.await {
            problems.push(Error::new(
                ErrorKind::HostPanic,
                format!("compiling a module panicked: {join}"),
            ));
        }
    }
    compiled
}

/// Refuses read-write grants that reach what decides the host's code: component files, the
/// manifest, the compiled-code cache.
pub fn check_grant_overlaps(
    rt: &LoadCx,
    specs: &BTreeMap<String, ModuleSpec>,
    compiled: &BTreeMap<String, Compiled>,
    manifest: Option<&std::path::Path>,
    problems: &mut Problems,
) {
    let writable: Vec<_> = compiled
        .values()
        .filter_map(|c| c.policy.get::<Filesystem>().map(|fs| (c.name.as_str(), fs)))
        .flat_map(|(name, fs)| fs.writable().map(move |d| (name, d)))
        .collect();
    let components = compiled
        .values()
        .filter_map(|c| match &specs[&c.name].source {
            crate::spec::ComponentSource::File(p) => {
                Some((c.name.as_str(), p.as_path(), c.component_dirs.as_slice()))
            }
            crate::spec::ComponentSource::Bytes(_) | crate::spec::ComponentSource::Oci(_) => None,
        })
        .collect();
    let protected = Protected {
        components,
        manifest,
        cache: rt.cache_dir.as_deref(),
    };
    check_overlaps(&writable, &protected, problems);
}

/// A warning when the modules together may hold more file descriptors than the process
/// may open: each instance up to its `files` limit.
fn descriptor_warning(specs: &BTreeMap<String, ModuleSpec>) -> Option<String> {
    let worst: u64 = specs
        .values()
        .map(|m| u64::from(m.limits.files) * m.limits.instances as u64)
        .sum();
    let (Some(soft), _) = crate::limits::files::open_files_limit() else {
        return None;
    };
    // The runtime itself needs some: compiled images, sockets of its own, stdio.
    let reserve = 64;
    (worst.saturating_add(reserve) > soft).then(|| {
        let w = format!(
            "the modules may hold up to {worst} open files together (`files` x `instances` per module), \
             more than this process's limit of {soft}; lower `files` or `instances`, or raise `ulimit -n`"
        );
        // Shown by `membrane check` (App::warnings); every run printing it would be noise
        // for apps that never come near the limit.
        tracing::debug!(target: "membrane::limits", "{w}");
        w
    })
}
