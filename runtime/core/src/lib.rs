//! Membrane's execution core: each module in its own wasm Store with only the
//! capabilities its manifest grants and its own limits; type-checked links between modules
//! and to host interfaces; the app, its supervision and its live upgrades; the `isolated`
//! placement, and the seam the other placements plug into ([`boundary`]).
//!
//! Embedders use it through the `membrane` crate, which re-exports what is public here and
//! registers the placements its features build. The modules hidden from this
//! documentation are public for Membrane's own crates only.

// The layers, bottom to top; a file uses only files of its own layer or below. The modules
// are public for Membrane's own crates (placements, serving, the command) and hidden from
// the documentation: embedders use the re-exports below, through the `membrane` crate.
//
// Description: what an app is, knowing nothing of how it runs (the membrane-spec crate).
#[doc(hidden)]
pub use membrane_spec::{error, manifest, names, sanitize, semver, spec, units};
// Execution: one shape for capabilities and limits, instances built from a recipe, pools,
// supervision.
#[doc(hidden)]
pub mod block;
#[doc(hidden)]
pub mod cache;
#[doc(hidden)]
pub mod capability;
#[doc(hidden)]
pub mod classify;
#[doc(hidden)]
pub mod compile;
#[doc(hidden)]
pub mod exports;
#[doc(hidden)]
pub mod generation;
#[doc(hidden)]
pub mod incoming;
#[doc(hidden)]
pub mod instance;
/// App-level key-value buckets (`[app.keyvalue]`).
pub mod keyvalue;
#[doc(hidden)]
pub mod life;
#[doc(hidden)]
pub mod limits;
/// The runtime's linkers (WASI and the capabilities' interfaces).
pub mod linkers;
#[doc(hidden)]
pub mod metrics;
#[doc(hidden)]
pub mod module;
#[doc(hidden)]
pub mod p3;
#[doc(hidden)]
pub mod pool;
#[doc(hidden)]
pub mod supervisor;
/// Trace context across calls and processes, and the records an OpenTelemetry exporter sends.
pub mod telemetry;
#[doc(hidden)]
pub mod transport;
mod trap;
#[doc(hidden)]
pub mod unit;
#[doc(hidden)]
pub mod value;
#[doc(hidden)]
pub mod wire;
// Linking modules to each other and to the host.
#[doc(hidden)]
pub mod link;
// The app and the runtime on top.
#[doc(hidden)]
pub mod app;
pub mod boundary;
pub mod card;
#[doc(hidden)]
pub mod extensions;
pub mod fetch;
#[doc(hidden)]
pub mod load;
#[doc(hidden)]
pub mod pipeline;
#[doc(hidden)]
pub mod reload;
#[doc(hidden)]
pub mod route;
#[doc(hidden)]
pub mod runtime;
#[doc(hidden)]
pub mod status;
mod typed;
#[doc(hidden)]
pub mod upgrade;
#[doc(hidden)]
pub mod validate;

pub use app::App;
pub use cache::default_cache_dir;
pub use capability::stdio::MAX_LINE;
pub use error::{Error, ErrorKind, Location, Result, chain, describe};
pub use fetch::{ComponentFetcher, FetchRequest, Fetched};
pub use limits::MAX_TABLE_ELEMENTS;
pub use limits::files::{open_files_limit, raise_open_files_limit};
pub use limits::output::MAX_LOG_LINES;
pub use link::LinkInfo;
pub use link::dynamic::DynamicObjects;
pub use link::host::HostInterface;
pub use link::objects::{HostObjects, MAX_PROXIES, MethodParams};
pub use load::LoadProgress;
pub use manifest::Manifest;
pub use runtime::{Config, Runtime};
pub use sanitize::escape;
pub use spec::{
    AdminSpec, AppSpec, BucketAccess, BucketSpec, ComponentSource, ConfigValue, DirGrant, DirMode,
    Grants, HttpSpec, KeyValueSpec, KvBackend, Lifecycle, Limits, ModuleSpec, NatsSpec, OciRef,
    OutputRoute, Placement, RestartPolicy, Secret, TlsSpec, TokenSource, UpgradePolicy,
};
pub use status::ModuleStatus;
pub use supervisor::Health;
pub use typed::Typed;
pub use unit::RunContext;
pub use units::{format_size, parse_duration, parse_size};
pub use upgrade::grants::{GrantChange, UpgradeOptions};
pub use upgrade::report::{GenerationState, LastUpgrade, ReloadReport, UpgradeReport};
pub use validate::validate_with;
pub use value::{Function, to_wave, type_name};
pub use wasmtime::component::Resource;
pub use wasmtime::component::Val;
pub use wasmtime::component::types::Type;
