//! What an app is made of, declared in code or parsed from `membrane.toml`.
//!
//! [`AppSpec`] and [`ModuleSpec`] are plain descriptions: nothing is opened, compiled or
//! checked until [`Runtime::load_spec`](crate::Runtime::load_spec). Everything a module may
//! touch is listed in its [`Grants`]; what is absent is denied.

use std::collections::BTreeMap;
use std::fmt;
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

pub use crate::pool::Lifecycle;
pub use crate::supervisor::RestartPolicy;

/// An app: named modules and the one `membrane run` starts.
#[derive(Debug, Clone, Default)]
pub struct AppSpec {
    pub(crate) entry: Option<String>,
    pub(crate) modules: BTreeMap<String, ModuleSpec>,
    pub(crate) stack: Option<u64>,
    /// The manifest the app was read from: no read-write grant may reach it.
    pub(crate) manifest: Option<PathBuf>,
}

impl AppSpec {
    /// An app with no modules.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds (or replaces) the module called `name`.
    pub fn module(mut self, name: impl Into<String>, module: ModuleSpec) -> Self {
        self.modules.insert(name.into(), module);
        self
    }

    /// Names the module whose `wasi:cli/run` export [`App::run`](crate::App::run) starts.
    /// Defaults to the only module when there is exactly one.
    pub fn entry(mut self, name: impl Into<String>) -> Self {
        self.entry = Some(name.into());
        self
    }

    /// The smallest wasm stack an app may ask for.
    pub const MIN_STACK: u64 = 64 << 10;
    /// The largest wasm stack an app may ask for.
    pub const MAX_STACK: u64 = 1 << 20;

    /// Asks for a wasm stack of `bytes` for every call. wasmtime sets the stack limit per
    /// engine, not per store, so it is one value for the app, and the runtime must be
    /// created with it ([`Config::max_wasm_stack`](crate::Config)); the `membrane` command
    /// does this from `[app] stack`.
    pub fn stack(mut self, bytes: u64) -> Self {
        self.stack = Some(bytes);
        self
    }

    /// The wasm stack the app asks for, if it does.
    pub fn stack_size(&self) -> Option<u64> {
        self.stack
    }

    /// The modules by name.
    pub fn modules(&self) -> &BTreeMap<String, ModuleSpec> {
        &self.modules
    }

    /// The entry module, as declared or implied.
    pub fn entry_name(&self) -> Option<&str> {
        match &self.entry {
            Some(e) => Some(e),
            None if self.modules.len() == 1 => self.modules.keys().next().map(String::as_str),
            None => None,
        }
    }
}

/// Where a module's component comes from.
#[derive(Clone)]
pub enum ComponentSource {
    /// A `.wasm` component file on the host.
    File(PathBuf),
    /// Component bytes held in memory.
    Bytes(Arc<[u8]>),
}

impl fmt::Debug for ComponentSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ComponentSource::File(p) => write!(f, "File({})", p.display()),
            ComponentSource::Bytes(b) => write!(f, "Bytes({} bytes)", b.len()),
        }
    }
}

/// One module: a component plus its grants and limits.
#[derive(Debug, Clone)]
pub struct ModuleSpec {
    pub(crate) source: ComponentSource,
    pub(crate) build: Option<String>,
    /// What the module may touch.
    pub grants: Grants,
    /// What the module may consume.
    pub limits: Limits,
    /// Whether instances are reused between calls.
    pub lifecycle: Lifecycle,
    /// When the module is taken out of service after failures.
    pub restart: RestartPolicy,
    /// Imports wired to a provider: interface name (optionally `@version`) -> provider
    /// module, or `host` for an interface the embedding application registered.
    pub links: BTreeMap<String, String>,
}

impl ModuleSpec {
    /// A module loaded from a component file.
    pub fn from_file(path: impl Into<PathBuf>) -> Self {
        Self::with_source(ComponentSource::File(path.into()))
    }

    /// A module from component bytes.
    pub fn from_bytes(bytes: impl Into<Arc<[u8]>>) -> Self {
        Self::with_source(ComponentSource::Bytes(bytes.into()))
    }

    fn with_source(source: ComponentSource) -> Self {
        ModuleSpec {
            source,
            build: None,
            grants: Grants::default(),
            limits: Limits::default(),
            lifecycle: Lifecycle::default(),
            restart: RestartPolicy::default(),
            links: BTreeMap::new(),
        }
    }

    /// Where the component comes from.
    pub fn source(&self) -> &ComponentSource {
        &self.source
    }

    /// The shell command `membrane build` runs for this module, if any.
    pub fn build_command(&self) -> Option<&str> {
        self.build.as_deref()
    }

    /// Sets the shell command that builds the component.
    pub fn build(mut self, command: impl Into<String>) -> Self {
        self.build = Some(command.into());
        self
    }

    /// Grants the host directory `host` at `guest` (an absolute guest path).
    pub fn dir(
        mut self,
        host: impl Into<PathBuf>,
        guest: impl Into<String>,
        mode: DirMode,
    ) -> Self {
        self.grants.dirs.push(DirGrant {
            host: host.into(),
            guest: guest.into(),
            mode,
            quota: None,
            quota_files: None,
        });
        self
    }

    /// Puts a disk quota on the read-write grant at `guest`: at most `bytes` allocated and
    /// `files` names below it (either may be `None`). Writes past it fail inside the guest
    /// with `insufficient-space`.
    pub fn quota(mut self, guest: &str, bytes: Option<u64>, files: Option<u64>) -> Self {
        if let Some(g) = self.grants.dirs.iter_mut().rev().find(|g| g.guest == guest) {
            g.quota = bytes;
            g.quota_files = files;
        }
        self
    }

    /// Grants one environment variable.
    pub fn env(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.grants.env.insert(key.into(), value.into());
        self
    }

    /// Routes the module's stdout.
    pub fn stdout(mut self, route: OutputRoute) -> Self {
        self.grants.stdout = route;
        self
    }

    /// Routes the module's stderr.
    pub fn stderr(mut self, route: OutputRoute) -> Self {
        self.grants.stderr = route;
        self
    }

    /// Allows outbound TCP connections to `destination` (`host:port`, where host is an IP
    /// address or a name). Checked when the app loads.
    pub fn network(mut self, destination: impl Into<String>) -> Self {
        self.grants.network.push(destination.into());
        self
    }

    /// Links the import `interface` (`ns:pkg/iface`, optionally with `@version`) to the
    /// module `provider`, or to `host` for a [`HostInterface`](crate::HostInterface).
    pub fn link(mut self, interface: impl Into<String>, provider: impl Into<String>) -> Self {
        self.links.insert(interface.into(), provider.into());
        self
    }

    /// Gives every call a fresh instance ([`Lifecycle::PerCall`]) or reuses them.
    pub fn lifecycle(mut self, lifecycle: Lifecycle) -> Self {
        self.lifecycle = lifecycle;
        self
    }

    /// Caps how many instances run at once (the module's concurrency) and how many callers
    /// may wait for one; past that, calls fail at once with `Overloaded`.
    pub fn concurrency(mut self, instances: usize, queue: usize) -> Self {
        self.limits.instances = instances;
        self.limits.queue = queue;
        self
    }

    /// Sets the restart policy (circuit breaker) of the module.
    pub fn restart(mut self, policy: RestartPolicy) -> Self {
        self.restart = policy;
        self
    }

    /// Gives every call a fuel budget (requires `Config::fuel`).
    pub fn fuel(mut self, fuel: u64) -> Self {
        self.limits.fuel = Some(fuel);
        self
    }

    /// Caps the bytes the guest may pass to the host in one host call.
    pub fn hostcall(mut self, bytes: u64) -> Self {
        self.limits.hostcall = bytes;
        self
    }

    /// Caps the open host files, directories and sockets of one instance.
    pub fn files(mut self, n: u32) -> Self {
        self.limits.files = n;
        self
    }

    /// Caps the bytes of output one call may write.
    pub fn output(mut self, bytes: u64) -> Self {
        self.limits.output = bytes;
        self
    }

    /// Caps the module's linear memory, in bytes.
    pub fn memory(mut self, bytes: u64) -> Self {
        self.limits.memory = bytes;
        self
    }

    /// Sets the wall-clock budget of one call into the module.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.limits.timeout = timeout;
        self
    }
}

/// Capabilities granted to a module. The default grants nothing but clocks and random
/// numbers, which every module has.
///
/// | grant | default |
/// |---|---|
/// | `dirs` | none: no file system at all |
/// | `env` | none: an empty environment |
/// | `stdout`, `stderr` | [`OutputRoute::Log`] |
/// | stdin | closed (end of file), except for the entry module of `membrane run` |
/// | `network` | none: every socket address is refused, name lookup is off |
/// | clocks, random | granted: wall and monotonic clock, secure and insecure random |
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct Grants {
    /// Preopened host directories.
    pub dirs: Vec<DirGrant>,
    /// Environment variables, exactly as given.
    pub env: BTreeMap<String, String>,
    /// Where stdout goes.
    pub stdout: OutputRoute,
    /// Where stderr goes.
    pub stderr: OutputRoute,
    /// Allowed outbound TCP destinations, `host:port`.
    pub network: Vec<String>,
}

/// A host directory visible to the guest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirGrant {
    /// The host directory (relative paths are relative to the manifest).
    pub host: PathBuf,
    /// Where the guest sees it, an absolute path such as `/data`.
    pub guest: String,
    /// Read-only or read-write.
    pub mode: DirMode,
    /// Most bytes the directory's tree may occupy on disk (read-write grants only).
    pub quota: Option<u64>,
    /// Most names (files, directories, links) the directory's tree may hold.
    pub quota_files: Option<u64>,
}

/// Whether a granted directory may be written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize)]
pub enum DirMode {
    /// Files can be read and directories listed; nothing can be created, changed or removed.
    #[default]
    #[serde(rename = "ro")]
    ReadOnly,
    /// Files and directories below the grant can be created, written, renamed and removed.
    #[serde(rename = "rw")]
    ReadWrite,
}

impl fmt::Display for DirMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            DirMode::ReadOnly => "ro",
            DirMode::ReadWrite => "rw",
        })
    }
}

/// Where a module's stdout or stderr goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OutputRoute {
    /// Each line becomes a `tracing` event at INFO level (target `membrane::guest`) carrying
    /// the module name and the stream; lines are cut at 4 KiB.
    #[default]
    Log,
    /// Written to the host process's own stdout/stderr.
    Inherit,
    /// Thrown away.
    Discard,
}

impl fmt::Display for OutputRoute {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            OutputRoute::Log => "log",
            OutputRoute::Inherit => "inherit",
            OutputRoute::Discard => "discard",
        })
    }
}

/// A parsed network destination.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) enum NetHost {
    Ip(IpAddr),
    Name(String),
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
/// | `hostcall` | 32 MiB | bytes the guest may pass to the host in one host call (strings, lists) |
/// | `output` | 1 MiB | bytes of stdout and stderr one call may write; the rest is dropped and counted |
/// | `files` | 256 | open host files, directories and sockets of one instance; more fail inside the guest |
#[derive(Debug, Clone, PartialEq, Eq)]
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
    pub const DEFAULT_FILES: u32 = crate::limits::files::DEFAULT_FILES;
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
        }
    }
}
