//! Membrane: an isolation sandbox runtime for WebAssembly components.
//!
//! Each module runs in its own wasm Store with only the capabilities its manifest grants
//! and its own memory and time limits. See the README for the manifest reference and the
//! security model.
//!
//! The crate is built in layers, each using only itself and the layers below:
//! - description: [`AppSpec`], [`ModuleSpec`], [`Manifest`] — what an app is, nothing
//!   about how it runs;
//! - execution: capabilities and limits as units of one shape (validated, prepared once per
//!   module, applied to every instance, reset before every call, asked to explain a
//!   failure), instances built from a recipe, pools and supervision;
//! - links: type-checked connections between modules and to host interfaces;
//! - the app and the runtime: [`validate`], [`Runtime`], [`App`].
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

// The layers, bottom to top; a file uses only files of its own layer or below.
//
// Description: what an app is, knowing nothing of how it runs (the membrane-spec crate).
pub(crate) use membrane_spec::{error, manifest, names, sanitize, semver, spec, units};
// Execution: one shape for capabilities and limits, instances built from a recipe, pools,
// supervision.
mod cache;
mod capability;
mod classify;
mod compile;
mod exports;
mod generation;
mod incoming;
mod instance;
mod life;
pub(crate) mod limits;
mod metrics;
mod module;
mod pool;
mod remote;
mod sandbox;
mod supervisor;
mod transport;
mod trap;
mod unit;
mod value;
mod wire;
// Linking modules to each other and to the host.
mod link;
// `placement = "fused"`: composing modules with their fused providers at load.
mod fuse;
// The app and the runtime on top.
mod app;
pub(crate) mod boundary;
mod extensions;
mod graph;
mod inspect;
mod load;
mod placements;
mod reload;
mod remotes;
mod runtime;
pub mod serve;
mod status;
mod typed;
mod upgrade;
mod validate;
pub mod worker;
mod workers;

pub use app::App;
pub use cache::default_cache_dir;
pub use capability::stdio::MAX_LINE;
pub use error::{Error, ErrorKind, Location, Result, chain, describe};
pub use graph::{GraphFormat, render as render_graph};
pub use inspect::{inspect, inspect_file};
pub use limits::MAX_TABLE_ELEMENTS;
pub use limits::files::{open_files_limit, raise_open_files_limit};
pub use limits::output::MAX_LOG_LINES;
pub use link::LinkInfo;
pub use link::host::HostInterface;
pub use link::objects::{HostObjects, MAX_PROXIES, MethodParams};
pub use load::LoadProgress;
pub use manifest::Manifest;
pub use placements::validate;
pub use remote::host::RemoteHost;
pub use runtime::{Config, Runtime};
pub use sanitize::escape;
pub use spec::{
    AdminSpec, AppSpec, ComponentSource, DirGrant, DirMode, Grants, HttpSpec, Lifecycle, Limits,
    ModuleSpec, NatsSpec, OutputRoute, Placement, RestartPolicy, Secret, TokenSource,
    UpgradePolicy,
};
pub use status::ModuleStatus;
pub use supervisor::Health;
pub use typed::Typed;
pub use unit::RunContext;
pub use units::{format_size, parse_duration, parse_size};
pub use upgrade::grants::{GrantChange, UpgradeOptions};
pub use upgrade::report::{GenerationState, LastUpgrade, ReloadReport, UpgradeReport};
pub use value::{Function, to_wave, type_name};
pub use wasmtime::component::Resource;
pub use wasmtime::component::Val;
pub use wasmtime::component::types::Type;

/// The README's Rust examples compile as doctests.
#[doc = include_str!("../../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
