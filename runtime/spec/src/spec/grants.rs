//! What a module may touch.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;

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
/// | `http` | none: every outbound `wasi:http` request fails with `HTTP-request-denied` |
/// | `config` | none: `wasi:config/store` answers no key |
/// | `keyvalue` | none: `wasi:keyvalue` opens no bucket (`access-denied`) |
/// | clocks, random | granted: wall and monotonic clock, secure and insecure random |
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
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
    /// Allowed outbound `wasi:http` origins, `scheme://host[:port]`.
    pub http: Vec<String>,
    /// What `wasi:config/store` answers: a value per key, given in the manifest or read
    /// from the host's environment or a file when the app loads (secrets).
    pub config: BTreeMap<String, ConfigValue>,
    /// The app's buckets the module may open through `wasi:keyvalue`, and how.
    pub keyvalue: BTreeMap<String, crate::spec::BucketAccess>,
}

/// The value of one `wasi:config` key.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ConfigValue {
    /// The value itself, as the manifest gives it: a setting, never a secret.
    Value(String),
    /// The value of the host's environment variable, read when the app loads.
    Env(String),
    /// The contents of a file (without surrounding whitespace), read when the app loads.
    File(PathBuf),
}

impl ConfigValue {
    /// Where a secret comes from; `None` for a value given inline.
    pub fn secret(&self) -> Option<crate::spec::Secret> {
        match self {
            ConfigValue::Value(_) => None,
            ConfigValue::Env(var) => Some(crate::spec::Secret::Env(var.clone())),
            ConfigValue::File(path) => Some(crate::spec::Secret::File(path.clone())),
        }
    }

    /// The value: the inline one, or the secret read now (the error says where it looked).
    pub fn resolve(&self) -> Result<String, String> {
        match (self, self.secret()) {
            (ConfigValue::Value(v), _) => Ok(v.clone()),
            (_, secret) => secret.map_or_else(|| Ok(String::new()), |s| s.read()),
        }
    }

    /// How the value is shown anywhere outside the guest (graph, status, logs): an inline
    /// value as itself, a secret as where it is read from, never its contents.
    pub fn shown(&self) -> String {
        match (self, self.secret()) {
            (ConfigValue::Value(v), _) => v.clone(),
            (_, secret) => format!(
                "<secret: {}>",
                secret.map(|s| s.describe()).unwrap_or_default()
            ),
        }
    }
}

/// A host directory visible to the guest.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
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
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
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
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
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
