//! The engine shared by every app: compilation settings, the WASI linker and the epoch clock.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use wasmtime::{Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

use crate::app::App;
use crate::boundary::Boundaries;
use crate::boundary::Boundary;
use crate::cache::Cache;
use crate::error::{Error, ErrorKind, Result};
use crate::link::host::HostInterface;
use crate::linkers::Linkers;
use crate::load::{LoadCx, LoadProgress};
use crate::manifest::Manifest;
#[cfg(feature = "p3")]
use crate::p3::engine::P3Engine;
use crate::spec::AppSpec;

/// Settings of a [`Runtime`]. The defaults suit untrusted code.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Config {
    /// How often the epoch clock ticks; timeouts are enforced with this precision.
    /// Default 5 ms.
    pub epoch_tick: Duration,
    /// The most wasm stack one call may use. Default 512 KiB.
    pub max_wasm_stack: usize,
    /// How many instances can be live at once across all apps of this runtime. Instances
    /// come from wasmtime's pooling allocator: memory is reserved up front and reused with
    /// copy-on-write images, which makes instantiation take microseconds. 0 selects the
    /// on-demand allocator instead. Default 1000.
    pub instance_slots: u32,
    /// Meter fuel, so that modules can set `limits.fuel`. Metering makes wasm code slower,
    /// so it is off by default; the `membrane` command turns it on when a module sets fuel.
    pub fuel: bool,
    /// Where compiled components are cached; `None` (the default) compiles every time.
    /// The `membrane` command uses [`default_cache_dir`](crate::default_cache_dir).
    pub cache_dir: Option<PathBuf>,
    /// Count every call in the app's metrics ([`App::metrics_text`](crate::App::metrics_text)):
    /// two clock reads, an atomic increment and a histogram update per call. Default on.
    pub metrics: bool,
    /// The program started as the worker process of each `placement = "process"` module;
    /// `None` (the default) is the running executable, which must then call
    /// `membrane::process::main_if_worker` first in `main` (the
    /// `membrane` command does).
    pub worker_program: Option<PathBuf>,
    /// Connect to NATS when an app has `placement = "remote"` modules (default on). Off,
    /// such an app loads without a connection and every call of a remote module fails
    /// with `Unavailable`: for tools that only look at an app (`membrane graph`,
    /// `membrane compile`).
    pub connect_nats: bool,
    /// What pulls the components of `oci://` references into local files
    /// ([`ComponentFetcher`](crate::fetch::ComponentFetcher)); `None` (the default) refuses
    /// such modules at load, saying how to get one. The `membrane` command sets one, and so
    /// does the `membrane` crate's `Runtime::new` when its `oci` feature is on.
    pub fetcher: Option<Arc<dyn crate::fetch::ComponentFetcher>>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            epoch_tick: Duration::from_millis(5),
            max_wasm_stack: 512 << 10,
            instance_slots: 1000,
            fuel: false,
            cache_dir: None,
            metrics: true,
            worker_program: None,
            connect_nats: true,
            fetcher: None,
        }
    }
}

/// Compiles and runs apps. Cheap to clone; every clone shares one engine.
#[derive(Clone)]
pub struct Runtime {
    pub inner: Arc<RuntimeInner>,
}

pub struct RuntimeInner {
    pub engine: Engine,
    /// The engine of WASI 0.3 modules (`p3/engine.rs`).
    #[cfg(feature = "p3")]
    pub p3: P3Engine,
    pub linkers: Linkers,
    pub config: Config,
    pub cache: Option<Arc<Cache>>,
    hosts: RwLock<HashMap<String, Arc<HostInterface>>>,
    /// The placements this runtime serves.
    boundaries: RwLock<Boundaries>,
    stop_ticker: Arc<AtomicBool>,
}

impl RuntimeInner {
    /// What a load needs, as of now (the host interfaces registered so far).
    fn load_cx(&self) -> LoadCx {
        LoadCx {
            engine: self.engine.clone(),
            #[cfg(feature = "p3")]
            p3: self.p3.clone(),
            linkers: self.linkers.clone(),
            cache: self.cache.clone(),
            cache_dir: self.config.cache_dir.clone(),
            metered: self.config.fuel,
            epoch_tick: self.config.epoch_tick,
            max_wasm_stack: self.config.max_wasm_stack,
            metrics: self.config.metrics,
            worker_program: self.config.worker_program.clone(),
            hosts: self.hosts.read().unwrap_or_else(|p| p.into_inner()).clone(),
            extensions: Default::default(),
            boundaries: self
                .boundaries
                .read()
                .unwrap_or_else(|p| p.into_inner())
                .clone(),
            connect_nats: self.config.connect_nats,
            fetcher: self.config.fetcher.clone(),
        }
    }
}

impl Drop for RuntimeInner {
    fn drop(&mut self) {
        self.stop_ticker.store(true, Ordering::Relaxed);
    }
}

/// Bytes of each pooled memory and table that stay resident when an instance ends: they
/// are zeroed with `memset` instead of being given back with `madvise`, which spares a page
/// fault per touched page on the next instantiation (docs/decisions/0002).
const KEEP_RESIDENT: usize = 64 << 10;

impl Runtime {
    /// Creates the engine and starts its epoch clock.
    pub fn new(config: Config) -> Result<Runtime> {
        if config.epoch_tick.is_zero() {
            return Err(Error::new(
                ErrorKind::Manifest,
                "Config::epoch_tick must be greater than zero",
            ));
        }
        let mut wasm = wasmtime::Config::new();
        wasm.epoch_interruption(true);
        wasm.max_wasm_stack(config.max_wasm_stack);
        // Component-model async is for WASI 0.3 modules, which get their own engine
        // (`p3/engine.rs`); without it every call here skips the async bookkeeping.
        wasm.concurrency_support(false);
        wasm.consume_fuel(config.fuel);
        if config.instance_slots > 0 {
            let n = config.instance_slots;
            let mut pool = PoolingAllocationConfig::default();
            // A Rust component has a few core instances (its code plus canonical-ABI shims)
            // and usually one memory and one table.
            pool.total_component_instances(n)
                // Calls on the async path run on a fiber with a stack from the pool.
                .total_stacks(n)
                .total_core_instances(n.saturating_mul(4))
                .total_memories(n.saturating_mul(2))
                .total_tables(n.saturating_mul(2))
                .table_elements(crate::limits::MAX_TABLE_ELEMENTS)
                .linear_memory_keep_resident(KEEP_RESIDENT)
                .table_keep_resident(KEEP_RESIDENT);
            wasm.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
        }
        let engine = Engine::new(&wasm).map_err(|e| {
            Error::new(ErrorKind::Io, "cannot create the wasm engine").with_source(e)
        })?;
        let cache = match &config.cache_dir {
            Some(dir) => Some(Arc::new(Cache::open(dir, &engine)?)),
            None => None,
        };
        let linkers = Linkers::new(&engine)
            .map_err(|e| Error::new(ErrorKind::Link, "cannot link WASI").with_source(e))?;
        #[cfg(feature = "p3")]
        let p3 = P3Engine::new(&config)?;

        let stop_ticker = Arc::new(AtomicBool::new(false));
        let stop = stop_ticker.clone();
        #[cfg(feature = "p3")]
        let ticking = [engine.clone(), p3.engine.clone()];
        #[cfg(not(feature = "p3"))]
        let ticking = [engine.clone()];
        let tick = config.epoch_tick;
        std::thread::Builder::new()
            .name("membrane-epoch".into())
            .spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    std::thread::sleep(tick);
                    for engine in &ticking {
                        engine.increment_epoch();
                    }
                }
            })
            .map_err(|e| Error::io("cannot start the epoch thread", e))?;

        Ok(Runtime {
            inner: Arc::new(RuntimeInner {
                engine,
                #[cfg(feature = "p3")]
                p3,
                linkers,
                config,
                cache,
                hosts: RwLock::new(HashMap::new()),
                boundaries: RwLock::new(Boundaries::isolated()),
                stop_ticker,
            }),
        })
    }

    /// Registers an interface implemented by the host application. Modules reach it only
    /// through a link to `host` (`links = { "acme:editor/buffer" = "host" }`); apps loaded
    /// afterwards can use it. Registering the same name again replaces it for later loads.
    pub fn provide(&self, interface: HostInterface) -> Result<()> {
        interface.validate()?;
        self.inner
            .hosts
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(interface.name().to_string(), Arc::new(interface));
        Ok(())
    }

    /// Serves the modules of `boundary`'s placement with it in the apps loaded afterwards
    /// (replacing the boundary of that placement registered before).
    #[allow(
        dead_code,
        reason = "the placements register themselves from their own crates once the crates are split"
    )]
    pub fn register_placement(&self, boundary: Arc<dyn Boundary>) {
        self.inner
            .boundaries
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .register(boundary);
    }

    /// Reads a manifest, then loads the app it declares (see [`Runtime::load_spec`]).
    pub async fn load(&self, manifest: impl AsRef<Path>) -> Result<App> {
        let manifest = Manifest::from_file(manifest)?;
        self.load_spec(manifest.app).await
    }

    /// Validates the declaration, compiles every module, checks its imports and grants,
    /// and returns the ready app. Nothing runs yet. Every problem found is reported in one
    /// error ([`Error::problems`](crate::Error::problems)).
    pub async fn load_spec(&self, spec: AppSpec) -> Result<App> {
        App::load(self.inner.clone(), self.inner.load_cx(), spec, None).await
    }

    /// [`Runtime::load_spec`], telling `progress` of every module compiled (for a progress
    /// bar: compiling takes seconds for large apps).
    pub async fn load_spec_with_progress(
        &self,
        spec: AppSpec,
        progress: &(dyn Fn(LoadProgress<'_>) + Send + Sync),
    ) -> Result<App> {
        App::load(
            self.inner.clone(),
            self.inner.load_cx(),
            spec,
            Some(progress),
        )
        .await
    }
}
