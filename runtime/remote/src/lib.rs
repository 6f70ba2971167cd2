//! `remote` placement: a module served by other hosts over NATS.
//!
//! Callers send each call as a NATS request to the module's subject; every host serving
//! the module listens on it in one queue group, so NATS spreads the calls over them,
//! answers "no responders" at once when none is there, and fails clients over between
//! the servers of a cluster. A host runs the module under its own manifest entry (grants,
//! limits), exactly as if it were local, and refuses calls from a caller whose entry
//! differs (`protocol::module_hash`).

pub mod boundary;
pub(crate) mod client;
pub(crate) mod connect;
pub(crate) mod host;
pub(crate) mod keyvalue;
pub(crate) mod offline;
pub(crate) mod protocol;
pub(crate) mod remote_transport;
#[doc(hidden)]
pub mod remotes;
pub(crate) mod session;
pub(crate) mod validate;

// The core's modules, under the names this crate's files use for them.
use membrane_core::{
    app, compile, error, extensions, generation, link, metrics, module, sanitize, spec, telemetry,
    transport, value, wire,
};

pub use boundary::Remote;
pub use host::RemoteHost;
