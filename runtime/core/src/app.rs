//! A loaded app: compiled, checked modules ready to be called.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use wasmtime::component::Val;

use crate::error::{Error, Result};
use crate::link::LinkInfo;
use crate::load::{LoadCx, OnProgress};
use crate::metrics::Metrics;
use crate::module::Module;
use crate::spec::{AdminSpec, AppSpec, HttpSpec, ModuleSpec};
use crate::typed::Typed;
use crate::unit::RunContext;
use crate::upgrade::grants::UpgradeOptions;
use crate::upgrade::report::{ReloadReport, UpgradeReport};
use crate::value::Function;
use wasmtime::component::{ComponentNamedList, Lift, Lower};

/// A loaded app. Cheap to clone; calls may run concurrently.
#[derive(Clone)]
pub struct App {
    pub inner: Arc<AppInner>,
}

pub struct AppInner {
    // Keeps the runtime (its engine and epoch clock) alive as long as the app.
    _runtime: Arc<dyn std::any::Any + Send + Sync>,
    pub modules: BTreeMap<String, Arc<Module>>,
    entry: Option<String>,
    links: RwLock<Vec<LinkInfo>>,
    warnings: Vec<String>,
    http: Option<HttpSpec>,
    admin: AdminSpec,
    pub metrics: Arc<Metrics>,
    /// What loading used (engine, linkers, cache, host interfaces): upgrades use it too.
    pub cx: LoadCx,
    /// The manifest the app was loaded from, which a reload reads again.
    manifest: Option<PathBuf>,
    /// The `remote` modules this process hosts ([`AppSpec::host`]).
    pub hosted: std::collections::BTreeSet<String>,
    /// Reloads of the whole app, one at a time.
    reloading: tokio::sync::Mutex<()>,
    /// The largest component file read (`[app] max_component_size` at load).
    max_component: u64,
}

impl App {
    pub async fn load(
        runtime: Arc<dyn std::any::Any + Send + Sync>,
        cx: LoadCx,
        spec: AppSpec,
        progress: Option<OnProgress<'_>>,
    ) -> Result<App> {
        let metrics = Metrics::new(cx.metrics);
        let mut cx = cx;
        // A declaration with problems is reported as such (by the load below), not as a
        // connection failure.
        if crate::validate::validate_with(&spec, &cx.boundaries).is_ok() {
            let boundaries = cx.boundaries.clone();
            for b in boundaries.iter() {
                b.attach(&spec, cx.connect_nats, &mut cx.extensions).await?;
            }
            if let Some(store) = crate::keyvalue::open(&spec)? {
                cx.extensions.insert(Arc::new(store));
            }
        }
        let hosted = spec.hosted.clone();
        let manifest = spec.manifest_path().map(Path::to_path_buf);
        let max_component = spec.component_size_limit();
        let loaded = crate::load::load(&cx, spec, progress, &metrics).await?;
        Ok(App {
            inner: Arc::new(AppInner {
                _runtime: runtime,
                modules: loaded.modules,
                entry: loaded.entry,
                links: RwLock::new(loaded.links),
                warnings: loaded.warnings,
                http: loaded.http,
                admin: loaded.admin,
                metrics,
                cx,
                manifest,
                hosted,
                reloading: tokio::sync::Mutex::new(()),
                max_component,
            }),
        })
    }

    /// Every link of the app, checked and resolved (as of the modules' current generations).
    pub fn links(&self) -> Vec<LinkInfo> {
        self.inner
            .links
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// The manifest the app was loaded from, if it was (a reload reads it again).
    pub fn manifest_path(&self) -> Option<&Path> {
        self.inner.manifest.as_deref()
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
        self.module(module)?.current_full().prewarm(n).await
    }

    /// [`App::prewarm`] for the synchronous path ([`App::call_blocking`]). Blocks the thread.
    pub fn prewarm_blocking(&self, module: &str, n: usize) -> Result<usize> {
        self.module(module)?.current().prewarm_blocking(n)
    }

    /// How the app is served over HTTP (`[app.http]`), if it is a service.
    pub fn http_spec(&self) -> Option<&HttpSpec> {
        self.inner.http.as_ref()
    }

    /// The admin listener (`[app.admin]`).
    pub fn admin_spec(&self) -> &AdminSpec {
        &self.inner.admin
    }

    /// The app's metrics in the OpenMetrics text format that Prometheus scrapes (see
    /// docs/guide/operations.md for the list): calls, durations, instances, queues, circuits,
    /// denials and, when served, HTTP requests. Needs the `metrics` feature.
    #[cfg(feature = "metrics")]
    pub fn metrics_text(&self) -> String {
        for (name, m) in &self.inner.modules {
            let (busy, waiting, idle) = m.pool.load();
            let (health, _) = m.current().supervisor.health();
            self.inner.metrics.set_module_state(
                name,
                busy,
                idle,
                waiting,
                matches!(health, crate::supervisor::Health::Unavailable { .. }),
            );
        }
        self.inner.metrics.render()
    }

    /// The app's key-value buckets and their limits, as declared (what they hold:
    /// [`App::buckets`]).
    pub fn declared_buckets(&self) -> Vec<(String, crate::spec::BucketSpec)> {
        self.inner
            .cx
            .extensions
            .get::<crate::keyvalue::Store>()
            .map(|s| {
                s.spec
                    .buckets
                    .iter()
                    .map(|(n, b)| (n.clone(), b.clone()))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The app's key-value buckets, each with its limits and what it holds now (asked of
    /// the store: NATS answers over the network); the bucket gauges of the metrics are set
    /// from the answers. Empty when the app declares no buckets.
    pub async fn buckets(&self) -> Vec<crate::keyvalue::BucketStatus> {
        let Some(store) = self.inner.cx.extensions.get::<crate::keyvalue::Store>() else {
            return Vec::new();
        };
        let status = store.status().await;
        for b in &status {
            if let Ok(u) = &b.usage {
                self.inner.metrics.set_bucket(&b.name, u.bytes, u.keys);
            }
        }
        status
    }

    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.inner.metrics
    }

    pub fn module_arc(&self, name: &str) -> Result<Arc<Module>> {
        self.module(name).cloned()
    }

    /// The declaration of a module's current generation.
    pub fn spec(&self, module: &str) -> Option<ModuleSpec> {
        self.inner
            .modules
            .get(module)
            .map(|m| m.current().spec.clone())
    }

    /// The names of the app's modules.
    pub fn modules(&self) -> impl Iterator<Item = &str> {
        self.inner.modules.keys().map(String::as_str)
    }

    /// The module `membrane run` starts, if the app has one.
    pub fn entry(&self) -> Option<&str> {
        self.inner.entry.as_deref()
    }

    pub fn module(&self, name: &str) -> Result<&Arc<Module>> {
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
        self.module(module)?.current().function(export)
    }

    /// A typed handle on an export (see [`Typed`]): looked up and checked against `P` and
    /// `R` once, here; a mismatch is an `InvalidArgs` error naming the export, its WIT
    /// signature and the Rust types. Instantiates the module once to check.
    pub fn typed<P, R>(&self, module: &str, export: &str) -> Result<Typed<P, R>>
    where
        P: ComponentNamedList + Lower + Send + Sync,
        R: ComponentNamedList + Lift + Send + Sync + 'static,
    {
        Typed::new(self.module(module)?.clone(), export)
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
        let g = self.module(module)?.current_full();
        let func = g.function(export)?;
        func.check_args(args)?;
        let mut results = vec![Val::Bool(false); func.results.len()];
        g.invoke_into_async(&func, args, &mut results, None).await?;
        // A caller that loops over calls would otherwise keep its worker thread.
        tokio::task::consume_budget().await;
        Ok(results)
    }

    /// [`App::call`] for synchronous code: runs the call on the current thread, without a
    /// fiber (the cheapest path). Must not be called from inside an async task (it blocks).
    /// The guest stops at the module's timeout, in wasm code and in the host calls that wait
    /// (sleeps, reads, polls).
    pub fn call_blocking(&self, module: &str, export: &str, args: &[Val]) -> Result<Vec<Val>> {
        let g = self.module(module)?.current();
        let func = g.function(export)?;
        func.check_args(args)?;
        g.invoke(&func, args, None)
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
        self.module(entry)?.current_full().run(&run).await
    }
    /// Replaces a module with a new version while the app serves (see
    /// docs/guide/live-upgrade.md): the new version passes the load's checks against the
    /// live app (the gate; a failure changes nothing and lists every problem), takes its
    /// state over when both versions export `membrane:lifecycle/snapshot`, and then takes
    /// new calls; calls and resource sessions already running finish on the old version.
    /// During the new version's probation ([`UpgradePolicy`](crate::UpgradePolicy)) the old
    /// one stays ready, and the module rolls back by itself if the new one's circuit opens or
    /// too many of its calls fail. A downgrade is an upgrade to an older component.
    /// `Conflict` while another upgrade of the module runs.
    ///
    /// A new version that widens a grant, raises a limit or quota, or weakens the sandbox is
    /// refused (`Denied`, one problem per change); see [`App::upgrade_with`].
    pub async fn upgrade(&self, module: &str, spec: ModuleSpec) -> Result<UpgradeReport> {
        self.upgrade_with(module, spec, UpgradeOptions::new()).await
    }

    /// [`App::upgrade`], with `options` saying whether wider grants are accepted.
    pub async fn upgrade_with(
        &self,
        module: &str,
        spec: ModuleSpec,
        options: UpgradeOptions,
    ) -> Result<UpgradeReport> {
        self.module(module)?;
        let mut changes = BTreeMap::from([(module.to_string(), self.here(module, spec))]);
        crate::fetch::resolve_all(
            self.inner.cx.fetcher.as_ref(),
            &mut changes,
            self.inner.max_component,
            None,
        )
        .await?;
        let mut reports = self.upgrade_all(changes, None, options).await?;
        Ok(reports.remove(0))
    }

    /// Goes back to the module's previous generation, which is kept during the current
    /// one's probation (`NotFound` when there is none).
    pub fn rollback(&self, module: &str) -> Result<UpgradeReport> {
        let m = self.module(module)?;
        let _busy = m.upgrades.try_lock().map_err(|_| {
            Error::new(
                crate::ErrorKind::Conflict,
                format!("module `{module}` is being upgraded; roll back when that has finished"),
            )
            .with_module(module)
        })?;
        crate::upgrade::rollback(m, None)
    }

    /// Reads the manifest again and upgrades every module whose component bytes, grants,
    /// limits, links or policies changed, all gated before any switches, providers first
    /// (see [`App::reload_spec`]).
    pub async fn reload(&self, manifest: impl AsRef<Path>) -> Result<ReloadReport> {
        self.reload_with(manifest, UpgradeOptions::new()).await
    }

    /// [`App::reload`], with `options` saying whether wider grants are accepted.
    pub async fn reload_with(
        &self,
        manifest: impl AsRef<Path>,
        options: UpgradeOptions,
    ) -> Result<ReloadReport> {
        // Read on a blocking thread (see `reload_spec_with`).
        let path = manifest.as_ref().to_path_buf();
        let manifest =
            tokio::task::spawn_blocking(move || crate::manifest::Manifest::from_file(path))
                .await
                .map_err(|e| {
                    Error::new(
                        crate::ErrorKind::HostPanic,
                        format!("reading the manifest failed: {e}"),
                    )
                })??;
        self.reload_spec_with(manifest.app, options).await
    }

    /// Upgrades the modules whose declaration in `spec` differs from what serves now. The
    /// app's set of modules cannot change (that takes a restart); changes to `[app]`
    /// settings such as `[app.http]` are reported as warnings and take effect on restart.
    ///
    /// A reload that widens a grant, raises a limit or quota, or weakens the sandbox of any
    /// module is refused whole (`Denied`, one problem per change); see
    /// [`App::reload_spec_with`].
    pub async fn reload_spec(&self, spec: AppSpec) -> Result<ReloadReport> {
        self.reload_spec_with(spec, UpgradeOptions::new()).await
    }

    /// [`App::reload_spec`], with `options` saying whether wider grants are accepted. A
    /// panic anywhere in the reload (a bug) is caught and returned as `HostPanic`; the app
    /// keeps serving what it served.
    pub async fn reload_spec_with(
        &self,
        spec: AppSpec,
        options: UpgradeOptions,
    ) -> Result<ReloadReport> {
        let _one = self.inner.reloading.lock().await;
        caught("reload", self.reload_locked(spec, options)).await
    }

    async fn reload_locked(
        &self,
        mut spec: AppSpec,
        options: UpgradeOptions,
    ) -> Result<ReloadReport> {
        let names: Vec<String> = spec.modules.keys().cloned().collect();
        for name in names {
            if let Some(m) = spec.modules.remove(&name) {
                spec.modules.insert(name.clone(), self.here(&name, m));
            }
        }
        crate::fetch::resolve_all(
            self.inner.cx.fetcher.as_ref(),
            &mut spec.modules,
            self.inner.max_component,
            spec.locations.as_deref(),
        )
        .await?;
        let running = crate::reload::Running {
            modules: &self.inner.modules,
            http: self.inner.http.as_ref(),
            admin: &self.inner.admin,
            entry: self.inner.entry.as_deref(),
            max_component: self.inner.max_component,
        };
        // Component files are read on a blocking thread, never on the task that asked
        // (the admin listener's, a signal handler's).
        let (spec, hashes) = tokio::task::spawn_blocking({
            let max = self.inner.max_component;
            move || {
                let hashes = crate::reload::hashes(&spec, max);
                (spec, hashes)
            }
        })
        .await
        .map_err(|e| {
            Error::new(
                crate::ErrorKind::HostPanic,
                format!("reading the components failed: {e}"),
            )
        })?;
        let diff = crate::reload::diff(&running, &spec, hashes)?;
        let upgraded = if diff.changes.is_empty() {
            Vec::new()
        } else {
            self.upgrade_all(diff.changes, Some(&spec), options).await?
        };
        Ok(ReloadReport {
            upgraded,
            unchanged: diff.unchanged,
            warnings: diff.warnings,
        })
    }

    /// A module's declaration as this process runs it: a `remote` module it hosts runs here.
    fn here(&self, name: &str, mut spec: ModuleSpec) -> ModuleSpec {
        if self.inner.hosted.contains(name) && spec.placement == crate::spec::Placement::Remote {
            spec.placement = crate::spec::Placement::Isolated;
        }
        spec
    }

    async fn upgrade_all(
        &self,
        changes: BTreeMap<String, ModuleSpec>,
        from: Option<&AppSpec>,
        options: UpgradeOptions,
    ) -> Result<Vec<UpgradeReport>> {
        caught(
            "upgrade",
            self.upgrade_all_unguarded(changes, from, options),
        )
        .await
    }

    async fn upgrade_all_unguarded(
        &self,
        changes: BTreeMap<String, ModuleSpec>,
        from: Option<&AppSpec>,
        options: UpgradeOptions,
    ) -> Result<Vec<UpgradeReport>> {
        let inner = &self.inner;
        let manifest = from
            .and_then(|s| s.manifest_path())
            .or(inner.manifest.as_deref());
        let live = crate::upgrade::gate::Live {
            cx: &inner.cx,
            modules: &inner.modules,
            http: inner.http.as_ref(),
            admin: &inner.admin,
            manifest,
            locations: from.and_then(|s| s.locations.as_deref()),
            max_component: inner.max_component,
        };
        let importers: Vec<String> = changes.keys().cloned().collect();
        let (reports, links) = crate::upgrade::upgrade(&live, changes, options).await?;
        let mut all = inner.links.write().unwrap_or_else(|p| p.into_inner());
        all.retain(|l| !importers.contains(&l.importer));
        all.extend(links);
        all.sort_by(|a, b| (&a.importer, &a.import).cmp(&(&b.importer, &b.import)));
        Ok(reports)
    }
}

/// Runs `work`, turning a panic in it (a bug) into a `HostPanic` error, so that the task
/// asking for a reload or upgrade (a signal handler, the admin listener, `--watch`, the
/// embedder's) goes on.
async fn caught<T>(what: &str, work: impl std::future::Future<Output = Result<T>>) -> Result<T> {
    use futures_util::FutureExt as _;
    match std::panic::AssertUnwindSafe(work).catch_unwind().await {
        Ok(r) => r,
        Err(payload) => {
            let why = payload
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "a panic".to_string());
            let why = crate::sanitize::escape(&why);
            // The log itself may be what panicked: nothing more may escape from here.
            let _ = std::panic::catch_unwind(|| {
                tracing::error!(target: "membrane::upgrade", panic = %why, "the {what} panicked; what it had not switched yet is unchanged");
            });
            Err(Error::new(
                crate::ErrorKind::HostPanic,
                format!(
                    "the {what} failed inside the host ({why}); modules it had not switched yet are unchanged; this is a bug, please report it"
                ),
            ))
        }
    }
}
