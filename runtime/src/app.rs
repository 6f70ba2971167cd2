//! A loaded app: compiled, checked modules ready to be called.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use wasmtime::component::Val;

use crate::capability::RunContext;
use crate::error::{Error, ErrorKind, Problems, Result};
use crate::link::{self, LinkInfo, forward::Provider};
use crate::module::{Compiled, Module};
use crate::runtime::RuntimeInner;
use crate::spec::{AppSpec, ModuleSpec};
use crate::supervisor::Health;
use crate::value::Function;

/// How long past a module's timeout the host waits for a call stuck in a host function
/// (a blocking read, a sleep) before answering the caller with `Timeout` anyway.
const HOST_CALL_GRACE: Duration = Duration::from_millis(250);

/// A snapshot of one module's instances.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct ModuleStatus {
    /// Instances running a call.
    pub busy: usize,
    /// Callers waiting for an instance.
    pub waiting: usize,
    /// Instances kept for reuse.
    pub idle: usize,
    /// Whether the module takes calls (see [`RestartPolicy`](crate::RestartPolicy)).
    pub health: Health,
    /// Failures counted in the restart policy's window.
    pub recent_failures: usize,
}

/// A loaded app. Cheap to clone; calls may run concurrently.
#[derive(Clone)]
pub struct App {
    inner: Arc<AppInner>,
}

struct AppInner {
    // Keeps the engine and its epoch clock alive as long as the app.
    _runtime: Arc<RuntimeInner>,
    modules: BTreeMap<String, Arc<Module>>,
    specs: BTreeMap<String, ModuleSpec>,
    entry: Option<String>,
    links: Vec<LinkInfo>,
    warnings: Vec<String>,
}

impl App {
    pub(crate) async fn load(rt: Arc<RuntimeInner>, spec: AppSpec) -> Result<App> {
        let entry = spec.entry_name().map(str::to_string);
        let mut problems = Problems::default();
        if spec.modules.is_empty() {
            problems.push(Error::manifest("the app has no modules"));
        }
        for name in spec.modules.keys() {
            if let Err(msg) = crate::manifest::validate_module_name(name) {
                problems.push(Error::manifest(msg));
            }
        }
        if let Some(stack) = spec.stack
            && stack != rt.config.max_wasm_stack as u64
        {
            problems.push(Error::manifest(format!(
                "the app asks for a wasm stack of {}, but this runtime was created with {}; \
                 set Config::max_wasm_stack to match (the membrane command does)",
                crate::units::format_size(stack),
                crate::units::format_size(rt.config.max_wasm_stack as u64)
            )));
        }
        if let Some(e) = &spec.entry
            && !spec.modules.contains_key(e)
        {
            problems.push(Error::manifest(format!(
                "the entry `{e}` is not a module of the app"
            )));
        }
        for (name, m) in &spec.modules {
            for key in m.links.keys() {
                if let Err(msg) = link::validate_link_key(key) {
                    problems.push(Error::manifest(format!("module `{name}`: links: {msg}")));
                }
            }
        }
        problems.into_result()?;
        let specs = spec.modules.clone();
        let manifest = spec.manifest.clone();

        let started = std::time::Instant::now();
        // Modules compile in parallel; every module's problems are reported together.
        // One worker per core pulls modules from a shared queue: a thread per module would
        // only add thread start-up and contention (wasmtime compiles each module in
        // parallel internally too).
        let queue = Arc::new(std::sync::Mutex::new(
            spec.modules.into_iter().collect::<Vec<_>>(),
        ));
        let workers = std::thread::available_parallelism().map_or(2, |n| n.get());
        let mut tasks = Vec::new();
        for _ in 0..workers {
            let (rt, queue) = (rt.clone(), queue.clone());
            tasks.push(tokio::task::spawn_blocking(move || {
                let mut done = Vec::new();
                loop {
                    let next = queue.lock().unwrap_or_else(|p| p.into_inner()).pop();
                    let Some((name, module)) = next else { break };
                    done.push(Compiled::new(&rt, &name, module));
                }
                done
            }));
        }
        let mut compiled = BTreeMap::new();
        let mut problems = Problems::default();
        for task in tasks {
            match task.await {
                Ok(results) => {
                    for r in results {
                        match r {
                            Ok(c) => {
                                compiled.insert(c.name.clone(), c);
                            }
                            Err(e) => problems.push(e),
                        }
                    }
                }
                Err(join) => problems.push(Error::new(
                    ErrorKind::Trap,
                    format!("compiling a module panicked: {join}"),
                )),
            }
        }
        tracing::debug!(target: "membrane::load", elapsed = ?started.elapsed(), modules = compiled.len(), "compiled");
        check_grant_overlaps(&rt, &specs, &compiled, manifest.as_deref(), &mut problems);
        // Links are checked even when some modules failed, so that one `check` lists
        // everything; links to a failed module are skipped (its own error says why).
        let failed: Vec<&String> = specs
            .keys()
            .filter(|n| !compiled.contains_key(*n))
            .collect();
        let hosts = rt.hosts();
        let plan = match link::plan(&rt.engine, &compiled, &failed, &hosts) {
            Ok(plan) => Some(plan),
            Err(e) => {
                problems.push(e);
                None
            }
        };
        problems.into_result()?;
        let plan = plan.expect("no problems means a plan");
        tracing::debug!(target: "membrane::load", elapsed = ?started.elapsed(), "links planned");
        let order = link::order(&plan.links)?;
        let mut modules: BTreeMap<String, Arc<Module>> = BTreeMap::new();
        let mut infos = Vec::new();
        for name in order {
            let Some(c) = compiled.remove(&name) else {
                continue;
            };
            let mut linker = rt.linker.clone();
            let mut sessions = 0;
            for l in plan.links.get(&name).into_iter().flatten() {
                let provider = if l.provider == link::HOST {
                    Provider::Host(hosts[&l.export].clone())
                } else {
                    Provider::Module(modules[&l.provider].clone())
                };
                link::forward::define(&mut linker, &name, l, provider, &mut sessions)?;
                infos.push(LinkInfo {
                    importer: name.clone(),
                    import: l.import.clone(),
                    provider: l.provider.clone(),
                    export: l.export.clone(),
                });
            }
            let module = Module::new(&rt, c, &linker, sessions)?;
            modules.insert(name, Arc::new(module));
        }
        infos.sort_by(|a, b| (&a.importer, &a.import).cmp(&(&b.importer, &b.import)));
        let mut warnings = plan.warnings;
        warnings.extend(descriptor_warning(&specs));
        tracing::debug!(target: "membrane::load", elapsed = ?started.elapsed(), "linked and pre-instantiated");
        Ok(App {
            inner: Arc::new(AppInner {
                _runtime: rt,
                modules,
                specs,
                entry,
                links: infos,
                warnings,
            }),
        })
    }

    /// Every link of the app, checked and resolved.
    pub fn links(&self) -> &[LinkInfo] {
        &self.inner.links
    }

    /// Things that work but are probably mistakes, such as a link to an interface the
    /// module does not import.
    pub fn warnings(&self) -> &[String] {
        &self.inner.warnings
    }

    /// Instantiates up to `n` instances of a module ahead of time (never more than its
    /// `instances` limit), so that the first calls do not pay for instantiation. Returns
    /// how many idle instances the module has afterwards. Does nothing for per-call modules.
    pub async fn prewarm(&self, module: &str, n: usize) -> Result<usize> {
        let m = self.module(module)?.clone();
        tokio::task::spawn_blocking(move || m.prewarm(n))
            .await
            .map_err(|e| {
                Error::new(
                    ErrorKind::Trap,
                    format!("prewarming `{module}` panicked: {e}"),
                )
            })?
    }

    /// How busy each module is right now.
    pub fn status(&self) -> BTreeMap<String, ModuleStatus> {
        self.inner
            .modules
            .iter()
            .map(|(name, m)| {
                let (busy, waiting, idle) = m.pool.load();
                let (health, recent_failures) = m.supervisor.health();
                (
                    name.clone(),
                    ModuleStatus {
                        busy,
                        waiting,
                        idle,
                        health,
                        recent_failures,
                    },
                )
            })
            .collect()
    }

    /// The declaration a module was loaded from.
    pub fn spec(&self, module: &str) -> Option<&ModuleSpec> {
        self.inner.specs.get(module)
    }

    /// The names of the app's modules.
    pub fn modules(&self) -> impl Iterator<Item = &str> {
        self.inner.modules.keys().map(String::as_str)
    }

    /// The module `membrane run` starts, if the app has one.
    pub fn entry(&self) -> Option<&str> {
        self.inner.entry.as_deref()
    }

    fn module(&self, name: &str) -> Result<&Arc<Module>> {
        self.inner.modules.get(name).ok_or_else(|| {
            let known: Vec<&str> = self.modules().collect();
            Error::not_found(format!(
                "the app has no module `{name}`; modules: {}",
                known.join(", ")
            ))
        })
    }

    /// Looks up an exported function (`ns:pkg/iface#func`, with an optional `@version`
    /// after the interface, or a bare root-level name) and returns its signature.
    pub fn function(&self, module: &str, export: &str) -> Result<Arc<Function>> {
        self.module(module)?.function(export)
    }

    /// Calls an exported function of a module and returns its results.
    ///
    /// The call runs on an instance of the module under the module's limits. A trap,
    /// timeout or limit hit discards that instance and becomes the returned error; the
    /// next call gets a fresh instance.
    pub async fn call(&self, module: &str, export: &str, args: &[Val]) -> Result<Vec<Val>> {
        let m = self.module(module)?.clone();
        let func = m.function(export)?;
        func.check_args(args)?;
        let args = args.to_vec();
        let timeout = m.limits.timeout;
        let task = tokio::task::spawn_blocking(move || m.invoke(&func, &args, None));
        finish(module, export, timeout, task).await
    }

    /// [`App::call`] for synchronous code: runs the call on the current thread, without the
    /// hop to a blocking thread that the async version makes (about 20 us on two cores).
    /// Must not be called from inside an async task (it blocks); wasm code is still stopped
    /// at the module's timeout, but a guest stuck in a host function blocks this thread
    /// until that function returns.
    pub fn call_blocking(&self, module: &str, export: &str, args: &[Val]) -> Result<Vec<Val>> {
        let m = self.module(module)?;
        let func = m.function(export)?;
        func.check_args(args)?;
        m.invoke(&func, args, None)
    }

    /// Runs the entry module's `wasi:cli/run` with `args` (after `argv[0]`, which is the
    /// module name) and returns its exit status. With `inherit_stdin` the guest reads the
    /// host's stdin; otherwise its stdin is closed.
    pub async fn run(&self, args: Vec<String>, inherit_stdin: bool) -> Result<i32> {
        let entry = self.entry().ok_or_else(|| {
            Error::manifest(
                "the app has no entry module: set `entry` under [app] to the module to run",
            )
        })?;
        let m = self.module(entry)?.clone();
        let timeout = m.limits.timeout;
        let run = RunContext {
            args,
            inherit_stdin,
        };
        let task = tokio::task::spawn_blocking(move || m.run(&run));
        finish(entry, "wasi:cli/run", timeout, task).await
    }
}

/// Refuses read-write grants that reach what decides the host's code: component files, the
/// manifest, the compiled-code cache.
fn check_grant_overlaps(
    rt: &RuntimeInner,
    specs: &BTreeMap<String, ModuleSpec>,
    compiled: &BTreeMap<String, Compiled>,
    manifest: Option<&std::path::Path>,
    problems: &mut Problems,
) {
    let writable: Vec<_> = compiled
        .values()
        .flat_map(|c| c.policy.writable_dirs().map(move |d| (c.name.as_str(), d)))
        .collect();
    let components = specs
        .iter()
        .filter_map(|(name, m)| match &m.source {
            crate::spec::ComponentSource::File(p) => Some((name.as_str(), p.as_path())),
            crate::spec::ComponentSource::Bytes(_) => None,
        })
        .collect();
    let protected = crate::capability::fs::Protected {
        components,
        manifest,
        cache: rt.config.cache_dir.as_deref(),
    };
    crate::capability::fs::check_overlaps(&writable, &protected, problems);
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
        tracing::warn!(target: "membrane::limits", "{w}");
        w
    })
}

/// Waits for a call on its blocking thread, answering `Timeout` if a host function keeps
/// it past the deadline (wasm code itself is stopped by the epoch deadline).
async fn finish<T>(
    module: &str,
    what: &str,
    timeout: Duration,
    task: tokio::task::JoinHandle<Result<T>>,
) -> Result<T> {
    match tokio::time::timeout(timeout + HOST_CALL_GRACE, task).await {
        Ok(Ok(result)) => result,
        Ok(Err(join)) => Err(Error::new(
            ErrorKind::Trap,
            format!("module `{module}`: {what}: the host panicked while serving the call: {join}"),
        )),
        Err(_) => Err(Error::new(
            ErrorKind::Timeout,
            format!(
                "module `{module}`: {what} ran past its timeout of {timeout:?} inside a host call; raise [modules.{module}.limits] timeout if it needs longer"
            ),
        )),
    }
}
