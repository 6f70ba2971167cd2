//! Capabilities: each grant of the manifest is one unit (see [`crate::unit`] for the
//! shape): validated in the one validation pass, prepared once per module (every problem
//! reported with the module and the manifest key), applied to every new instance's WASI
//! context, which starts out empty.
//!
//! | unit | grant |
//! |---|---|
//! | [`fs`] | `dirs`: preopened directories, read-only or read-write, with optional quotas ([`quota`]) |
//! | [`env`] | `env`: environment variables; arguments for `membrane run`'s entry |
//! | [`stdio`] | `stdout`, `stderr`: log, inherit or discard; stdin for `membrane run`'s entry |
//! | [`network`] | `network`: outbound TCP destinations |
//! | [`http`] | `http`: outbound `wasi:http` origins |
//! | [`config`] | `config`: the keys `wasi:config/store` answers, values or secrets read at load |
//! | [`keyvalue`] | `keyvalue`: the app's buckets a module may open through `wasi:keyvalue`, read-only or read-write |
//!
//! WASI interfaces themselves are always linked (the guest may import them); what a guest
//! can do through them is decided here, and for files, sockets and disk space also by the
//! wrappers in [`hooks`]. Clocks and random numbers need no grant: every module gets the
//! host's wall and monotonic clocks and a per-instance random generator.

pub mod config;
pub mod env;
pub mod fs;
pub mod hooks;
pub mod http;
pub mod keyvalue;
pub mod keyvalue_draft2;
pub mod network;
pub mod protect;
pub mod quota;
pub mod stdio;
pub use membrane_spec::walk;

use crate::unit::UnitDef;

/// Every capability. A new capability is one file and one line here.
pub const CAPABILITIES: &[UnitDef] = &[
    fs::DEF,
    env::DEF,
    stdio::DEF,
    network::DEF,
    http::DEF,
    config::DEF,
    keyvalue::DEF,
];
