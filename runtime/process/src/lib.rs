//! `process` placement: a module's instances in a worker process of their own.
//!
//! Register [`Process`] with a runtime to serve `placement = "process"` modules (the
//! `membrane` crate does with its `process` feature).
//!
//! The host starts a worker by re-executing a program (the `membrane` binary, or an
//! embedder's own, see [`main_if_worker`]) with one end of a socket pair; the worker reads
//! what it must run, locks itself down (Landlock, seccomp, no new privileges, resource
//! limits: [`crate::sandbox`]) while it still has a single thread, and only then creates its
//! engine and touches the component.
//!
//! The host does not trust its worker: the worker may be compromised (a guest that escaped
//! wasmtime). Every frame it sends is bounded by the largest legal message before anything
//! is held (`wire/sizes.rs`), and a violation ends it as a crash; what it logs or writes is
//! escaped, budgeted and counted (`relog.rs`, `pipes.rs`); it gets no descriptor of the
//! host's but its stdio and two sockets, and its stdout and stderr are the host's pipes,
//! never the host's own streams. For the same reason a guest's `stdout`/`stderr = "inherit"`
//! is logged in a worker (as `log` is): the worker has no way to the host's streams.

pub mod boundary;
pub(crate) mod channel;
pub(crate) mod connection;
/// The worker protocol's fuzz entry point (feature `fuzzing`, for fuzz/).
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzz;
pub(crate) mod hello;
pub(crate) mod host;
pub(crate) mod keyvalue;
pub(crate) mod linked;
pub(crate) mod links;
pub(crate) mod log;
mod pipes;
pub(crate) mod process;
pub(crate) mod relog;
#[doc(hidden)]
pub mod ring;
#[doc(hidden)]
pub mod sandbox;
mod serve;
#[cfg(feature = "p3")]
mod serve_p3;
pub(crate) mod session;
mod typed;
mod worker_transport;
#[doc(hidden)]
pub mod workers;

// The core's modules, under the names this crate's files use for them.
use membrane_core::{
    app, capability, error, exports, instance, limits, link, metrics, module, names, sanitize,
    spec, telemetry, transport, unit, value, wire,
};

use std::path::PathBuf;
use std::sync::Arc;

use crate::error::Result;
use crate::spec::{DirMode, ModuleSpec, OutputRoute};
use crate::transport::Links;

/// The environment variable that makes a process a worker: the descriptor number of its
/// end of the socket pair.
pub(crate) const WORKER_ENV: &str = "MEMBRANE_WORKER_FD";

/// The environment variable of the sandbox's test probe (see `sandbox/probe.rs`; feature
/// `test-hooks`).
#[cfg(feature = "test-hooks")]
pub(crate) const PROBE_ENV: &str = "MEMBRANE_SANDBOX_PROBE";

/// Runs this process as a Membrane worker, and never returns, if it was started as one;
/// returns at once otherwise.
///
/// A program that embeds Membrane and loads modules with `placement = "process"` must call
/// this first thing in `main`, before any thread is started (a tokio runtime, a logger with
/// a background thread): the worker locks itself down with Landlock and seccomp, which
/// apply to the calling thread and the threads it starts later, never to threads that
/// exist already. The `membrane` command does this. The host starts workers from
/// `Config::worker_program` (by default the running executable).
///
/// The first statement of `main`:
///
/// ```no_run
/// membrane_process::main_if_worker(); // membrane::process::main_if_worker() through the facade
/// // ... then the application, which may load `process` modules
/// ```
pub fn main_if_worker() {
    #[cfg(feature = "test-hooks")]
    if let Some(json) = std::env::var_os(PROBE_ENV) {
        let code = crate::sandbox::probe::main(&json.to_string_lossy());
        std::process::exit(code);
    }
    if std::env::var_os(WORKER_ENV).is_some() {
        std::process::exit(serve::main(3, 4));
    }
}

pub(crate) use membrane_core::boundary::EngineSettings;

/// What the host serves a worker's guest during its calls.
pub(crate) struct Serves {
    /// The calls it makes through its links.
    pub links: Arc<dyn Links>,
    /// The app's store, for the buckets the module was granted.
    pub store: Option<Arc<dyn membrane_core::keyvalue::backend::Backend>>,
}

/// Starts the worker of module `name` (`placement = "process"`): its sandbox follows its
/// grants and limits; `serves` answers what its guest asks of the host.
pub(crate) fn start(
    compiled: &membrane_core::compile::Compiled,
    engine: EngineSettings,
    program: PathBuf,
    serves: Serves,
    metrics: Arc<crate::metrics::ModuleMetrics>,
) -> Result<host::Worker> {
    let Serves { links, store } = serves;
    let (name, spec, component) = (compiled.name.as_str(), &compiled.spec, &compiled.component);
    let p3 = compiled.wasi == membrane_core::p3::Wasi::P3;
    if std::env::var_os(WORKER_ENV).is_some() {
        // This program was started as a worker but went on as itself: starting workers
        // from here would start them without end.
        return Err(crate::error::Error::new(
            crate::error::ErrorKind::Unavailable,
            format!(
                "module `{name}`: this process was started as a Membrane worker but did not call \
                 membrane::worker::main_if_worker() first in main; call it there, or set \
                 Config::worker_program to the `membrane` binary"
            ),
        )
        .with_module(name));
    }
    let code = component.serialize().map_err(|e| {
        crate::error::Error::new(
            crate::error::ErrorKind::InvalidComponent,
            format!("module `{name}`: its compiled code cannot be handed to a worker"),
        )
        .with_source(e)
    })?;
    let mut grants = spec.grants.clone();
    // The worker cannot read the host's environment or files: it gets the values.
    grants.config = capability::config::resolved(&spec.grants.config);
    for route in [&mut grants.stdout, &mut grants.stderr] {
        if *route == OutputRoute::Inherit {
            *route = OutputRoute::Log;
        }
    }
    let hello = hello::Hello {
        name: name.to_string(),
        grants,
        limits: spec.limits.clone(),
        lifecycle: spec.lifecycle,
        epoch_tick: engine.epoch_tick,
        max_wasm_stack: engine.max_wasm_stack,
        fuel: engine.fuel,
        sandbox: sandbox_plan(spec),
        log_level: log::host_level(),
        p3,
    };
    let mut body = Vec::with_capacity(code.len() + 1024);
    hello.frame(&code, &mut body);
    // The module's buckets stay in the host; the worker asks for each operation.
    let buckets = match store {
        Some(store) if !spec.grants.keyvalue.is_empty() => Some(Arc::new(
            keyvalue::HostBuckets::new(store, spec.grants.keyvalue.clone(), metrics.clone()),
        )),
        _ => None,
    };
    host::Worker::start(
        name.into(),
        program,
        body,
        links,
        buckets,
        metrics,
        &spec.limits,
    )
}

/// The OS sandbox of a module's worker: exactly its granted directories, sockets only with
/// a network or HTTP grant, memory and descriptors from its limits.
pub(crate) fn sandbox_plan(spec: &ModuleSpec) -> crate::sandbox::Plan {
    let g = &spec.grants;
    let dirs = |mode: DirMode| -> Vec<PathBuf> {
        g.dirs
            .iter()
            .filter(|d| d.mode == mode)
            .map(|d| d.host.clone())
            .collect()
    };
    let named = |dest: &str| {
        let host = dest.split("://").last().unwrap_or(dest);
        let host = host.rsplit_once(':').map_or(host, |(h, _)| h);
        host.trim_matches(['[', ']'])
            .parse::<std::net::IpAddr>()
            .is_err()
    };
    let l = &spec.limits;
    // Each instance may make up to `memory` writable, plus tables, stacks and the
    // runtime's own heap: RLIMIT_DATA counts what is made writable, not reservations.
    let data = (l.memory.saturating_add(16 << 20))
        .saturating_mul(l.instances as u64)
        .saturating_add(512 << 20);
    crate::sandbox::Plan {
        ro: dirs(DirMode::ReadOnly),
        rw: dirs(DirMode::ReadWrite),
        network: !g.network.is_empty() || !g.http.is_empty(),
        names: g.network.iter().chain(&g.http).any(|d| named(d)),
        data_limit: Some(data),
        // The instances' files, plus the runtime's own (sockets, code, stdio).
        files: Some(u64::from(l.files).saturating_mul(l.instances as u64) + 64),
        allow_weaker: spec.allow_weaker_sandbox,
    }
}

pub use boundary::Process;
