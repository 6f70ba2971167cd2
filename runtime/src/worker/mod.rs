//! `process` placement: a module's instances in a worker process of their own.
//!
//! The host starts a worker by re-executing a program (the `membrane` binary, or an
//! embedder's own, see [`main_if_worker`]) with one end of a socket pair; the worker reads
//! what it must run, locks itself down (Landlock, seccomp, no new privileges, resource
//! limits: [`crate::sandbox`]) while it still has a single thread, and only then creates its
//! engine and touches the component.

/// The environment variable that makes a process a worker: the descriptor number of its
/// end of the socket pair.
pub(crate) const WORKER_ENV: &str = "MEMBRANE_WORKER_FD";

/// The environment variable of the sandbox's test probe (see [`crate::sandbox::probe`]).
pub(crate) const PROBE_ENV: &str = "MEMBRANE_SANDBOX_PROBE";

/// Runs this process as a Membrane worker, and never returns, if it was started as one;
/// returns at once otherwise.
///
/// A program that embeds Membrane and loads modules with `placement = "process"` must call
/// this first thing in `main`, before any thread is started (a tokio runtime, a logger with
/// a background thread): the worker locks itself down with Landlock and seccomp, which
/// apply to the calling thread and the threads it starts later, never to threads that
/// exist already. The `membrane` command does this. The host starts workers from
/// [`Config::worker_program`](crate::Config) (by default the running executable).
///
/// ```no_run
/// fn main() {
///     membrane::worker::main_if_worker();
///     // ... the application, which may load `process` modules
/// }
/// ```
pub fn main_if_worker() {
    if let Some(json) = std::env::var_os(PROBE_ENV) {
        let code = crate::sandbox::probe::main(&json.to_string_lossy());
        std::process::exit(code);
    }
    if std::env::var_os(WORKER_ENV).is_some() {
        // Filled in by the worker's serving loop.
        std::process::exit(70);
    }
}
