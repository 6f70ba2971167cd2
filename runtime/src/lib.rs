//! Membrane: an isolation sandbox runtime for WebAssembly components.
//!
//! Each module runs in its own wasm Store with only the capabilities its manifest grants
//! and its own memory and time limits. See the README for the manifest reference and the
//! security model.
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

mod app;
mod cache;
mod capability;
mod error;
mod export;
mod graph;
mod inspect;
mod instance;
pub(crate) mod limits;
mod link;
mod manifest;
mod module;
mod pool;
mod runtime;
mod sanitize;
mod spec;
mod supervisor;
mod trap;
mod units;
mod value;

pub use app::{App, ModuleStatus};
pub use cache::default_cache_dir;
pub use capability::stdio::MAX_LINE;
pub use capability::stdio::MAX_LOG_LINES;
pub use error::{Error, ErrorKind, Result, chain, describe};
pub use graph::{GraphFormat, render as render_graph};
pub use inspect::{inspect, inspect_file};
pub use limits::MAX_TABLE_ELEMENTS;
pub use limits::files::{open_files_limit, raise_open_files_limit};
pub use link::LinkInfo;
pub use link::host::HostInterface;
pub use manifest::Manifest;
pub use runtime::{Config, Runtime};
pub use sanitize::escape;
pub use spec::{
    AppSpec, ComponentSource, DirGrant, DirMode, Grants, Lifecycle, Limits, ModuleSpec, OutputRoute,
};
pub use supervisor::{Health, RestartPolicy};
pub use units::{format_size, parse_duration, parse_size};
pub use value::{Function, to_wave, type_name};
pub use wasmtime::component::Val;
pub use wasmtime::component::types::Type;

/// The README's Rust examples compile as doctests.
#[doc = include_str!("../../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
