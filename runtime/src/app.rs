//! A loaded app: compiled, checked modules ready to be called.

use std::collections::BTreeMap;
use std::sync::Arc;

use wasmtime::component::Val;

use crate::error::{Error, Result};
use crate::link::LinkInfo;
use crate::load::{LoadCx, OnProgress};
use crate::metrics::Metrics;
use crate::module::Module;
use crate::spec::{AdminSpec, AppSpec, HttpSpec, ModuleSpec};
use crate::supervisor::Health;
use crate::typed::Typed;
use crate::unit::RunContext;
use crate::value::Function;
use wasmtime::component::{ComponentNamedList, Lift, Lower};

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
    // Keeps the runtime (its engine and epoch clock) alive as long as the app.
    _runtime: Arc<dyn std::any::Any + Send + Sync>,
    modules: BTreeMap<String, Arc<Module>>,
    specs: BTreeMap<String, ModuleSpec>,
    entry: Option<String>,
    links: Vec<LinkInfo>,
    warnings: Vec<String>,
    http: Option<HttpSpec>,
    admin: AdminSpec,
    metrics: Arc<Metrics>,
}

impl App {
    pub(crate) async fn load(
        runtime: Arc<dyn std::any::Any + Send + Sync>,
        cx: LoadCx,
        spec: AppSpec,
        progress: Option<OnProgress<'_>>,
    ) -> Result<App> {
        let metrics = Metrics::new(cx.metrics);
        let loaded = crate::load::load(&cx, spec, progress, &metrics).await?;
        Ok(App {
            inner: Arc::new(AppInner {
                _runtime: runtime,
                modules: loaded.modules,
                specs: loaded.specs,
                entry: loaded.entry,
                links: loaded.links,
                warnings: loaded.warnings,
                http: loaded.http,
                admin: loaded.admin,
                metrics,
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
        self.module(module)?.prewarm(n).await
    }

    /// [`App::prewarm`] for the synchronous path ([`App::call_blocking`]). Blocks the thread.
    pub fn prewarm_blocking(&self, module: &str, n: usize) -> Result<usize> {
        self.module(module)?.prewarm_blocking(n)
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

    /// How the app is served over HTTP (`[app.http]`), if it is a service.
    pub fn http_spec(&self) -> Option<&HttpSpec> {
        self.inner.http.as_ref()
    }

    /// The admin listener (`[app.admin]`).
    pub fn admin_spec(&self) -> &AdminSpec {
        &self.inner.admin
    }

    /// The app's metrics in the OpenMetrics text format that Prometheus scrapes (see the
    /// README for the list): calls, durations, instances, queues, circuits, denials and, when
    /// served, HTTP requests.
    pub fn metrics_text(&self) -> String {
        for (name, m) in &self.inner.modules {
            let (busy, waiting, idle) = m.pool.load();
            let (health, _) = m.supervisor.health();
            self.inner.metrics.set_module_state(
                name,
                busy,
                idle,
                waiting,
                matches!(health, Health::Unavailable { .. }),
            );
        }
        self.inner.metrics.render()
    }

    pub(crate) fn metrics(&self) -> &Arc<Metrics> {
        &self.inner.metrics
    }

    pub(crate) fn module_arc(&self, name: &str) -> Result<Arc<Module>> {
        self.module(name).cloned()
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
            .with_module(name)
        })
    }

    /// Looks up an exported function (`ns:pkg/iface#func`, with an optional `@version`
    /// after the interface, or a bare root-level name) and returns its signature.
    pub fn function(&self, module: &str, export: &str) -> Result<Arc<Function>> {
        self.module(module)?.function(export)
    }

    /// A typed handle on an export (see [`Typed`]): looked up and checked against `P` and
    /// `R` once, here; a mismatch is an `InvalidArgs` error naming the export, its WIT
    /// signature and the Rust types. Instantiates the module once to check.
    pub fn typed<P, R>(&self, module: &str, export: &str) -> Result<Typed<P, R>>
    where
        P: ComponentNamedList + Lower + Send + Sync,
        R: ComponentNamedList + Lift + Send + Sync + 'static,
    {
        let m = self.module(module)?.clone();
        let func = m.function(export)?;
        Typed::new(m, func)
    }

    /// Calls an exported function of a module and returns its results.
    ///
    /// The call runs on an instance of the module under the module's limits, on the
    /// caller's task: the guest runs on a fiber and yields to the executor at every epoch
    /// tick, so a long call never starves other tasks. A trap, timeout or limit hit
    /// discards that instance and becomes the returned error; the next call gets a fresh
    /// instance. Dropping the future stops the guest, wherever it is (a host call that
    /// waits included), discards its instance and frees its slot at once; such a call does
    /// not count against the module.
    pub async fn call(&self, module: &str, export: &str, args: &[Val]) -> Result<Vec<Val>> {
        let m = self.module(module)?;
        let func = m.function(export)?;
        func.check_args(args)?;
        let mut results = vec![Val::Bool(false); func.results.len()];
        m.invoke_into_async(&func, args, &mut results, None).await?;
        // A caller that loops over calls would otherwise keep its worker thread.
        tokio::task::consume_budget().await;
        Ok(results)
    }

    /// [`App::call`] for synchronous code: runs the call on the current thread, without a
    /// fiber (the cheapest path). Must not be called from inside an async task (it blocks).
    /// The guest stops at the module's timeout, in wasm code and in the host calls that wait
    /// (sleeps, reads, polls).
    pub fn call_blocking(&self, module: &str, export: &str, args: &[Val]) -> Result<Vec<Val>> {
        let m = self.module(module)?;
        let func = m.function(export)?;
        func.check_args(args)?;
        m.invoke(&func, args, None)
    }

    /// Runs the entry module's `wasi:cli/run` with `args` (after `argv[0]`, which is the
    /// module name) and returns its exit status. With `inherit_stdin` the guest reads the
    /// host's stdin; otherwise its stdin is closed. Runs on the caller's task, like
    /// [`App::call`].
    pub async fn run(&self, args: Vec<String>, inherit_stdin: bool) -> Result<i32> {
        let entry = self.entry().ok_or_else(|| {
            Error::manifest(
                "the app has no entry module: set `entry` under [app] to the module to run",
            )
        })?;
        let run = RunContext {
            args,
            inherit_stdin,
        };
        self.module(entry)?.run(&run).await
    }
}
