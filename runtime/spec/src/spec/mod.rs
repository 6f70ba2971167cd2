//! What an app is made of, declared in code or parsed from `membrane.toml`: the bottom
//! layer of the library, which knows nothing of how apps run.
//!
//! [`AppSpec`] and [`ModuleSpec`] are plain descriptions: nothing is opened, compiled or
//! checked until `Runtime::load_spec`, which validates them in
//! one pass (`membrane::validate`). Everything a module may touch is listed in its
//! [`Grants`]; what is absent is denied.

mod grants;
mod keyvalue;
mod limits;
mod nats;
pub mod oci;
mod placement;
mod serve;
mod telemetry;
mod upgrade;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

pub use grants::{ConfigValue, DirGrant, DirMode, Grants, OutputRoute};
pub use keyvalue::{BucketAccess, BucketSpec, KeyValueSpec, KvBackend};
pub use limits::{Lifecycle, Limits, RestartPolicy};
pub use nats::{NatsSpec, Secret};
pub use oci::{Digest, Locked, OciRef};
pub use placement::Placement;
pub use serve::{AdminSpec, HttpSpec, TlsSpec, TokenSource};
pub use telemetry::{OtlpProtocol, TelemetrySpec};
pub use upgrade::UpgradePolicy;

use crate::error::Location;

/// Where each key of a manifest is, so that problems found later name the file and line.
#[derive(Debug, Clone, Default)]
pub struct Locations {
    /// The manifest file.
    pub file: PathBuf,
    /// Key path (`modules.api.limits.memory`, `modules.api.grants.network[1]`) -> line.
    pub lines: BTreeMap<String, usize>,
}

impl Locations {
    /// The line of `key`, or of the nearest enclosing key that has one.
    pub fn find(&self, key: &str) -> Option<Location> {
        let mut k = key;
        loop {
            if let Some(line) = self.lines.get(k) {
                return Some(Location {
                    file: self.file.clone(),
                    line: *line,
                });
            }
            k = &k[..k.rfind(['.', '['])?];
        }
    }
}

/// An app: named modules and the one `membrane run` starts. Build one with the builder
/// methods (or read one from a manifest); its fields are public to read and adjust.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct AppSpec {
    /// The module `membrane run` starts (`[app] entry`); see [`AppSpec::entry_name`].
    pub entry: Option<String>,
    /// The modules, by name.
    pub modules: BTreeMap<String, ModuleSpec>,
    /// The wasm stack every call gets (`[app] stack`), if the app asks for one.
    pub stack: Option<u64>,
    /// How `membrane serve` serves the app, if it is a service.
    pub http: Option<HttpSpec>,
    /// The admin listener of `membrane serve`.
    pub admin: AdminSpec,
    /// The manifest the app was read from, and where its keys are.
    pub locations: Option<Arc<Locations>>,
    /// The app's name (`[app] name`), used in the NATS subjects of its remote modules.
    pub name: Option<String>,
    /// Where its remote modules are served (`[app] nats`).
    pub nats: Option<NatsSpec>,
    /// `remote` modules this process serves itself (`membrane host --modules`).
    pub hosted: BTreeSet<String>,
    /// The largest component file read (`[app] max_component_size`); `None`: the default.
    pub max_component_size: Option<u64>,
    /// The app's key-value buckets (`[app.keyvalue]`).
    pub keyvalue: KeyValueSpec,
    /// Its OpenTelemetry export (`[app.telemetry]`), if the manifest asks for one.
    pub telemetry: Option<TelemetrySpec>,
}

impl AppSpec {
    /// An app with no modules.
    pub fn new() -> Self {
        Self::default()
    }

    /// Default `[app] max_component_size`: 256 MiB (components built by componentize-py,
    /// the largest common ones, are around 40 MiB).
    pub const DEFAULT_MAX_COMPONENT_SIZE: u64 = 256 << 20;

    /// Refuses component files larger than `bytes` before reading them (see
    /// [`AppSpec::DEFAULT_MAX_COMPONENT_SIZE`]).
    pub fn max_component_size(mut self, bytes: u64) -> Self {
        self.max_component_size = Some(bytes);
        self
    }

    /// The largest component file read.
    pub fn component_size_limit(&self) -> u64 {
        self.max_component_size
            .unwrap_or(Self::DEFAULT_MAX_COMPONENT_SIZE)
    }

    /// Sets the app's key-value buckets and where they are stored.
    pub fn keyvalue(mut self, keyvalue: KeyValueSpec) -> Self {
        self.keyvalue = keyvalue;
        self
    }

    /// Exports the app's traces, metrics and logs over OTLP (`[app.telemetry]`).
    pub fn telemetry(mut self, telemetry: TelemetrySpec) -> Self {
        self.telemetry = Some(telemetry);
        self
    }

    /// Adds (or replaces) the module called `name`.
    pub fn module(mut self, name: impl Into<String>, module: ModuleSpec) -> Self {
        self.modules.insert(name.into(), module);
        self
    }

    /// Names the module whose `wasi:cli/run` export `App::run` starts.
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
    /// created with it (`Config::max_wasm_stack`); the `membrane` command
    /// does this from `[app] stack`.
    pub fn stack(mut self, bytes: u64) -> Self {
        self.stack = Some(bytes);
        self
    }

    /// Names the app (`[app] name`): its remote modules' NATS subjects are
    /// `membrane.<name>.<module>`. Required when a module is `remote`.
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// The app's name, if it has one.
    pub fn app_name(&self) -> Option<&str> {
        self.name.as_deref()
    }

    /// Where the app's `remote` modules are served (`[app] nats`).
    pub fn nats(mut self, nats: NatsSpec) -> Self {
        self.nats = Some(nats);
        self
    }

    /// The app's NATS servers, if it has any.
    pub fn nats_spec(&self) -> Option<&NatsSpec> {
        self.nats.as_ref()
    }

    /// Makes this process a host of the `remote` modules `modules`: they run here (under
    /// their own grants and limits, like `isolated` modules), and
    /// `App::serve_remote` answers other hosts' calls of
    /// them over NATS. The other `remote` modules stay remote. Loading refuses a name that
    /// is not a `remote` module of the app.
    pub fn host<S: Into<String>>(mut self, modules: impl IntoIterator<Item = S>) -> Self {
        self.hosted.extend(modules.into_iter().map(Into::into));
        self
    }

    /// The `remote` modules this process serves itself.
    pub fn hosted(&self) -> &BTreeSet<String> {
        &self.hosted
    }

    /// Serves the app over HTTP (see [`HttpSpec`]).
    pub fn http(mut self, http: HttpSpec) -> Self {
        self.http = Some(http);
        self
    }

    /// How the app is served over HTTP, if it is.
    pub fn http_spec(&self) -> Option<&HttpSpec> {
        self.http.as_ref()
    }

    /// Sets the admin listener's address (see [`AdminSpec`]).
    pub fn admin(mut self, listen: impl Into<String>) -> Self {
        self.admin.listen = Some(listen.into());
        self
    }

    /// Replaces the whole `[app.admin]` section (address, token, host names).
    pub fn admin_with(mut self, admin: AdminSpec) -> Self {
        self.admin = admin;
        self
    }

    /// The admin listener.
    pub fn admin_spec(&self) -> &AdminSpec {
        &self.admin
    }

    /// The wasm stack the app asks for, if it does.
    pub fn stack_size(&self) -> Option<u64> {
        self.stack
    }

    /// The modules by name.
    pub fn modules(&self) -> &BTreeMap<String, ModuleSpec> {
        &self.modules
    }

    /// The manifest the app was read from, if it was.
    pub fn manifest_path(&self) -> Option<&std::path::Path> {
        self.locations.as_deref().map(|l| l.file.as_path())
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
    /// A component in an OCI registry (`oci://...`), pulled into a local cache by the
    /// runtime's `ComponentFetcher` when the app loads (the `membrane` command has one;
    /// an embedder turns on the `oci` feature of the `membrane` crate).
    Oci(OciRef),
}

impl fmt::Debug for ComponentSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ComponentSource::File(p) => write!(f, "File({})", p.display()),
            ComponentSource::Bytes(b) => write!(f, "Bytes({} bytes)", b.len()),
            ComponentSource::Oci(r) => write!(f, "Oci({r})"),
        }
    }
}

/// One module: a component plus its grants and limits.
#[derive(Debug, Clone)]
pub struct ModuleSpec {
    /// Where the component comes from.
    pub source: ComponentSource,
    /// The command `membrane build` runs for it, from the manifest's directory.
    pub build: Option<String>,
    /// The files and directories whose changes rebuild the module under `membrane serve
    /// --watch` (`sources`); empty: inferred from the build command.
    pub sources: Vec<PathBuf>,
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
    /// How a new version replaces this one while the app runs (`[modules.X.upgrade]`).
    pub upgrade: UpgradePolicy,
    /// Where the module's instances run (`placement`).
    pub placement: Placement,
    /// Whether a `process` module may start on a kernel that cannot apply every layer of
    /// the worker sandbox (`allow_weaker_sandbox`); without it such a module is refused.
    pub allow_weaker_sandbox: bool,
}

impl ModuleSpec {
    /// A module loaded from a component file.
    pub fn from_file(path: impl Into<PathBuf>) -> Self {
        Self::with_source(ComponentSource::File(path.into()))
    }

    /// A module whose component is pulled from an OCI registry when the app loads.
    pub fn from_oci(reference: OciRef) -> Self {
        Self::with_source(ComponentSource::Oci(reference))
    }

    /// A module from component bytes.
    pub fn from_bytes(bytes: impl Into<Arc<[u8]>>) -> Self {
        Self::with_source(ComponentSource::Bytes(bytes.into()))
    }

    fn with_source(source: ComponentSource) -> Self {
        ModuleSpec {
            source,
            build: None,
            sources: Vec::new(),
            grants: Grants::default(),
            limits: Limits::default(),
            lifecycle: Lifecycle::default(),
            restart: RestartPolicy::default(),
            links: BTreeMap::new(),
            upgrade: UpgradePolicy::default(),
            placement: Placement::default(),
            allow_weaker_sandbox: false,
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

    /// Grants bucket `bucket` of the app's `[app.keyvalue.buckets]`, read-only or
    /// read-write.
    pub fn bucket(mut self, bucket: impl Into<String>, access: BucketAccess) -> Self {
        self.grants.keyvalue.insert(bucket.into(), access);
        self
    }

    /// Gives `wasi:config/store` key `key`: a value, or a secret read when the app loads
    /// ([`ConfigValue`]).
    pub fn config(mut self, key: impl Into<String>, value: ConfigValue) -> Self {
        self.grants.config.insert(key.into(), value);
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

    /// Allows outbound `wasi:http` requests to `origin` (`scheme://host[:port]`, such as
    /// `https://api.example.com`): scheme, host and port must match. Checked when the app
    /// loads.
    pub fn http(mut self, origin: impl Into<String>) -> Self {
        self.grants.http.push(origin.into());
        self
    }

    /// Caps the request body the module accepts when it serves HTTP; larger requests are
    /// answered 413 before the guest sees them.
    pub fn body(mut self, bytes: u64) -> Self {
        self.limits.body = bytes;
        self
    }

    /// Allows outbound TCP connections to `destination` (`host:port`, where host is an IP
    /// address or a name). Checked when the app loads.
    pub fn network(mut self, destination: impl Into<String>) -> Self {
        self.grants.network.push(destination.into());
        self
    }

    /// Links the import `interface` (`ns:pkg/iface`, optionally with `@version`) to the
    /// module `provider`, or to `host` for a `HostInterface`.
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

    /// How many calls one instance of a WASI 0.3 module runs at once (`limits.concurrency`,
    /// default 16; a WASI 0.2 instance always runs one).
    pub fn calls_per_instance(mut self, calls: usize) -> Self {
        self.limits.concurrency = calls;
        self
    }

    /// Sets where the module's instances run ([`Placement`]).
    pub fn placement(mut self, placement: Placement) -> Self {
        self.placement = placement;
        self
    }

    /// Lets a `process` module start on a kernel without every layer of the worker sandbox
    /// (see SECURITY.md); without it such a module is refused at load.
    pub fn allow_weaker_sandbox(mut self, allow: bool) -> Self {
        self.allow_weaker_sandbox = allow;
        self
    }

    /// Sets the restart policy (circuit breaker) of the module.
    pub fn restart(mut self, policy: RestartPolicy) -> Self {
        self.restart = policy;
        self
    }

    /// Sets how a new version replaces this one while the app runs (drain, probation,
    /// rollback ratio).
    pub fn upgrade(mut self, policy: UpgradePolicy) -> Self {
        self.upgrade = policy;
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
