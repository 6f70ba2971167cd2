//! Membrane: an isolation sandbox runtime for WebAssembly components.
//!
//! Each module runs in its own wasm Store with only the capabilities its manifest grants
//! and its own memory and time limits. The guide (docs/guide in the repository) has the
//! manifest reference and the embedding walk-through; SECURITY.md the security model.
//!
//! This crate is the one embedders name. It re-exports the layers, each its own crate with
//! its arrows pointing down:
//! - `membrane-spec`, description: [`AppSpec`], [`ModuleSpec`], [`Manifest`], [`Error`] —
//!   what an app is, nothing about how it runs (no WebAssembly engine);
//! - `membrane-core`, execution: capabilities and limits as units of one shape, instances,
//!   pools and supervision, type-checked links, the app ([`App`]) and its live upgrades, the
//!   `isolated` placement;
//! - one crate per other placement, each behind a feature: `process` (a sandboxed worker
//!   process), `fused` (composition at load), `remote` (other hosts over NATS);
//! - `membrane-serve` behind the feature `serve` ([`serve`]): an app as an HTTP service;
//! - `membrane-oci` behind the feature `oci`: `oci://` components from OCI registries;
//! - `membrane-cli` behind the feature `cli`: the `membrane` command.
//!
//! With `default-features = false` an embedder gets isolated modules, links, typed calls,
//! host interfaces, limits and supervision, and none of hyper-util, async-nats, wac-graph,
//! Landlock or seccomp in its build. [`Runtime::new`] serves every placement this build has.
//!
//! ```no_run
//! # async fn demo() -> membrane::Result<()> {
//! use membrane::{AppSpec, Config, DirMode, ModuleSpec, Runtime, Val};
//!
//! let runtime = Runtime::new(Config::default())?;
//!
//! // From a manifest ...
//! let app = runtime.load("membrane.toml").await?;
//! let out: Vec<Val> = app
//!     .call("api", "acme:notes/api#add", &[Val::String("x".into())])
//!     .await?;
//!
//! // ... or declared in code.
//! let spec = AppSpec::new().module(
//!     "store",
//!     ModuleSpec::from_file("kv_store.wasm")
//!         .dir("data", "/data", DirMode::ReadWrite)
//!         .env("LOG_LEVEL", "info")
//!         .memory(32 << 20)
//!         .timeout(std::time::Duration::from_millis(500)),
//! );
//! let app = runtime.load_spec(spec).await?;
//! # let _ = (app, out);
//! # Ok(())
//! # }
//! ```

pub use membrane_core::boundary::{Boundaries, Boundary};
pub use membrane_core::{
    AdminSpec, App, AppSpec, BucketAccess, BucketSpec, ComponentFetcher, ComponentSource, Config,
    ConfigValue, DirGrant, DirMode, DynamicObjects, Error, ErrorKind, FetchRequest, Fetched,
    Function, GenerationState, GrantChange, Grants, Health, HostInterface, HostObjects, HttpSpec,
    KeyValueSpec, KvBackend, LastUpgrade, Lifecycle, Limits, LinkInfo, LoadProgress, Location,
    MAX_LINE, MAX_LOG_LINES, MAX_PROXIES, MAX_TABLE_ELEMENTS, Manifest, MethodParams, ModuleSpec,
    ModuleStatus, NatsSpec, OciRef, OutputRoute, Placement, ReloadReport, Resource, RestartPolicy,
    Result, RunContext, Secret, TlsSpec, TokenSource, Type, Typed, UpgradeOptions, UpgradePolicy,
    UpgradeReport, Val, chain, default_cache_dir, describe, escape, format_size, open_files_limit,
    parse_duration, parse_size, raise_open_files_limit, to_wave, type_name,
};

/// `placement = "fused"` (feature `fused`).
#[cfg(feature = "fused")]
pub use membrane_fused as fused;
/// Components from OCI registries (feature `oci`): [`Runtime::new`] gives the runtime an
/// [`oci::OciFetcher`] unless [`Config::fetcher`] names one.
#[cfg(feature = "oci")]
pub use membrane_oci as oci;
/// `placement = "process"` (feature `process`).
#[cfg(feature = "process")]
pub use membrane_process as process;
/// `placement = "remote"` (feature `remote`).
#[cfg(feature = "remote")]
pub use membrane_remote as remote;
/// An app as an HTTP service (feature `serve`).
#[cfg(feature = "serve")]
pub use membrane_serve as serve;
/// OpenTelemetry export over OTLP (feature `otel`): start it with
/// `telemetry::start(telemetry::Settings::resolve(..)?)` and add
/// [`telemetry::LogLayer`] to the `tracing` subscriber for guest logs.
#[cfg(feature = "otel")]
pub use membrane_telemetry as telemetry;

/// Compiles and runs apps: the core's runtime ([`membrane_core::runtime::Runtime`]) with
/// every placement this build serves registered. Cheap to clone; every clone shares one
/// engine. Its methods (`load`, `load_spec`, `provide`, ...) are the core runtime's.
#[derive(Clone)]
pub struct Runtime(membrane_core::Runtime);

impl Runtime {
    /// Creates the engine, starts its epoch clock, and registers the placements of this
    /// build (see [`placements`]). With the `oci` feature, `oci://` components are pulled by
    /// an [`oci::OciFetcher`] keeping them under [`Config::cache_dir`] (else
    /// [`default_cache_dir`]), unless [`Config::fetcher`] is set.
    pub fn new(config: Config) -> Result<Runtime> {
        #[cfg(feature = "oci")]
        let config = {
            let mut config = config;
            if config.fetcher.is_none()
                && let Some(dir) = config.cache_dir.clone().or_else(default_cache_dir)
            {
                config.fetcher = Some(std::sync::Arc::new(membrane_oci::OciFetcher::new(dir)));
            }
            config
        };
        let runtime = membrane_core::Runtime::new(config)?;
        for b in placements().iter() {
            runtime.register_placement(b.clone());
        }
        Ok(Runtime(runtime))
    }
}

impl std::ops::Deref for Runtime {
    type Target = membrane_core::Runtime;

    fn deref(&self) -> &membrane_core::Runtime {
        &self.0
    }
}

impl std::fmt::Debug for Runtime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Runtime").field(&placements()).finish()
    }
}

/// The placements this build serves: `isolated`, and `fused`, `process`, `remote` as their
/// features are on.
pub fn placements() -> Boundaries {
    #[allow(
        unused_mut,
        reason = "with no placement feature on, nothing is registered"
    )]
    let mut b = Boundaries::isolated();
    #[cfg(feature = "fused")]
    b.register(std::sync::Arc::new(membrane_fused::Fused));
    #[cfg(feature = "process")]
    b.register(std::sync::Arc::new(membrane_process::Process));
    #[cfg(feature = "remote")]
    b.register(std::sync::Arc::new(membrane_remote::Remote));
    b
}

/// Checks an app's declaration without opening or compiling anything, for the placements
/// this build serves; every problem is reported in one error ([`Error::problems`]).
/// [`Runtime::load_spec`](membrane_core::Runtime::load_spec) runs the same checks first.
pub fn validate(spec: &AppSpec) -> Result<()> {
    membrane_core::validate_with(spec, &placements())
}

/// The README's Rust examples compile as doctests.
#[doc = include_str!("../../../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;

/// The guide's embedding page: its Rust examples compile as doctests too.
#[doc = include_str!("../../../docs/guide/embedding.md")]
#[cfg(doctest)]
pub struct GuideEmbeddingDoctests;
