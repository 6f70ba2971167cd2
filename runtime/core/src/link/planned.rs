//! A link as loading planned and checked it ([`Link`]), and as an app reports it
//! ([`LinkInfo`]).

use std::sync::Arc;

use wasmtime::component::types::Type;

/// One checked link of one importer.
#[derive(Debug, Clone)]
pub struct Link {
    /// The importer's import name, with its version.
    pub import: String,
    /// The provider module, or `HOST`.
    pub provider: String,
    /// The provider's export name, with its version.
    pub export: String,
    /// Functions the importer needs, with the importer's types.
    pub funcs: Vec<LinkedFunc>,
    /// Resource names of the interface, in the importer's view.
    pub resources: Vec<String>,
}

/// One function of a link.
#[derive(Debug, Clone)]
pub struct LinkedFunc {
    pub name: String,
    /// The importer's parameter types.
    pub params: Vec<Type>,
    /// The importer's result types, used to give returned resources their proxy type.
    pub results: Vec<Type>,
    /// The importer's resource types by name, to read `results` (and to write a dynamic
    /// host function's signature with).
    pub resources: Arc<Vec<(String, wasmtime::component::ResourceType)>>,
    /// Whether the importer imports it as an `async func` (a WASI 0.3 importer's forwarder
    /// then waits without holding the importer's Store; for a plain function wasmtime
    /// requires the guest to block while it runs).
    pub is_async: bool,
}

/// What a loaded app's links look like, for `membrane graph` and for embedders.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkInfo {
    /// The importing module.
    pub importer: String,
    /// The interface as the importer imports it, with version.
    pub import: String,
    /// The provider module, or `host`.
    pub provider: String,
    /// The interface as the provider exports it, with version.
    pub export: String,
    /// Whether the link is served inside a composition (`placement = "fused"` on both
    /// sides): a call within the importer's component, with no host crossing.
    pub fused: bool,
}
