//! What a module may consume, how its instances live, and when it is taken out of service.

use std::time::Duration;

/// Whether instances are reused between calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Lifecycle {
    /// An instance serves many calls, one at a time; its memory persists between them.
    #[default]
    Reuse,
    /// Every call gets a fresh instance: nothing carries over from one call to the next.
    PerCall,
}

/// When a module is taken out of service (circuit breaker), and for how long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct RestartPolicy {
    /// Failures tolerated within `within`; one more opens the circuit.
    pub max: u32,
    /// The window failures are counted in.
    pub within: Duration,
    /// How long the circuit stays open before a trial call; doubles after a failed trial.
    pub backoff: Duration,
}

impl RestartPolicy {
    /// The longest back-off after repeated failed trials.
    pub const MAX_BACKOFF: Duration = Duration::from_secs(60);
}

impl Default for RestartPolicy {
    /// 5 failures within 60 s, then 1 s of back-off.
    fn default() -> Self {
        RestartPolicy {
            max: 5,
            within: Duration::from_secs(60),
            backoff: Duration::from_secs(1),
        }
    }
}

/// Resource limits of a module. The defaults suit untrusted code:
///
/// | limit | default | meaning |
/// |---|---|---|
/// | `memory` | 64 MiB | total linear memory of one instance; growth past it fails |
/// | `timeout` | 10 s | wall-clock budget of one call (waiting for an instance included), and of `membrane run` |
/// | `instances` | 32 | instances running at once: the module's concurrency |
/// | `queue` | 128 | callers that may wait for a busy module; more fail with `Overloaded` |
/// | `fuel` | none | deterministic budget of one call, in wasm instructions (roughly); needs `Config::fuel` |
/// | `hostcall` | 32 MiB | bytes the guest may pass to the host in one host call (strings, lists); for a `remote` module, also the largest answer its callers take from a host |
/// | `output` | 1 MiB | bytes of stdout and stderr one call may write; the rest is dropped and counted |
/// | `files` | 256 | open host files, directories and sockets of one instance; more fail inside the guest |
/// | `body` | 1 MiB | largest HTTP request body the module accepts when served; larger is answered 413 |
/// | `concurrency` | 16 | calls running at once in one instance of a WASI 0.3 module (a WASI 0.2 instance runs one) |
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[non_exhaustive]
pub struct Limits {
    /// Maximum linear memory of one instance, in bytes.
    pub memory: u64,
    /// Wall-clock budget of one call.
    pub timeout: Duration,
    /// Maximum instances running at once.
    pub instances: usize,
    /// Maximum callers waiting for an instance.
    pub queue: usize,
    /// Fuel for one call, if metered.
    pub fuel: Option<u64>,
    /// Bytes the guest may pass to the host in one host call.
    pub hostcall: u64,
    /// Bytes of output one call may write.
    pub output: u64,
    /// Open host files, directories and sockets one instance may hold at once.
    pub files: u32,
    /// Largest HTTP request body, in bytes, when the module serves HTTP.
    pub body: u64,
    /// Calls running at once in one instance of a WASI 0.3 module.
    pub concurrency: usize,
}

impl Limits {
    /// Default `memory`: 64 MiB.
    pub const DEFAULT_MEMORY: u64 = 64 << 20;
    /// Default `timeout`: 10 seconds.
    pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
    /// Default `instances`: 32.
    pub const DEFAULT_INSTANCES: usize = 32;
    /// Default `queue`: 128.
    pub const DEFAULT_QUEUE: usize = 128;
    /// Default `hostcall`: 32 MiB.
    pub const DEFAULT_HOSTCALL: u64 = 32 << 20;
    /// Default `output`: 1 MiB per call.
    pub const DEFAULT_OUTPUT: u64 = 1 << 20;
    /// Default `files`: 256 open host files, directories and sockets per instance.
    pub const DEFAULT_FILES: u32 = 256;
    /// Default `body`: 1 MiB.
    pub const DEFAULT_BODY: u64 = 1 << 20;
    /// Default `concurrency`: 16, as `wasmtime serve` runs a WASI 0.3 instance.
    pub const DEFAULT_CONCURRENCY: usize = 16;
    /// The most `concurrency` may be.
    pub const MAX_CONCURRENCY: usize = 1024;
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            memory: Self::DEFAULT_MEMORY,
            timeout: Self::DEFAULT_TIMEOUT,
            instances: Self::DEFAULT_INSTANCES,
            queue: Self::DEFAULT_QUEUE,
            fuel: None,
            hostcall: Self::DEFAULT_HOSTCALL,
            output: Self::DEFAULT_OUTPUT,
            files: Self::DEFAULT_FILES,
            body: Self::DEFAULT_BODY,
            concurrency: Self::DEFAULT_CONCURRENCY,
        }
    }
}
