//! Membrane's description layer: what an app is — its modules with their grants, limits,
//! links and placements ([`AppSpec`], [`ModuleSpec`]) — read from a manifest
//! ([`Manifest`]), and the error type every layer reports with ([`Error`]). Nothing here
//! knows how modules run: this crate does not depend on a WebAssembly engine, so tools
//! that only read or check declarations (and the manifest's fuzz target) build without one.
//!
//! Embedders use these types through the `membrane` crate, which re-exports them.

pub mod error;
pub mod manifest;
pub mod names;
pub mod sanitize;
pub mod semver;
pub mod spec;
pub mod units;
pub mod walk;

pub use error::{Error, ErrorKind, GuestFailure, Location, Problems, Result, chain, describe};
pub use manifest::Manifest;
pub use sanitize::escape;
pub use spec::{
    AdminSpec, AppSpec, BucketAccess, BucketSpec, ComponentSource, ConfigValue, DirGrant, DirMode,
    Grants, HttpSpec, Lifecycle, Limits, ModuleSpec, NatsSpec, OciRef, OutputRoute, Placement,
    RestartPolicy, Secret, TokenSource, UpgradePolicy,
};
pub use units::{format_size, parse_duration, parse_size};
