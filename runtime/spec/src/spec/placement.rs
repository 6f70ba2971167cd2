//! Where a module's boundary sits (`[modules.X] placement`).

use std::fmt;

/// Where a module's instances run, and so how strong the boundary around it is.
///
/// | value | boundary |
/// |---|---|
/// | `isolated` (default) | its own wasmtime `Store` per instance in the host process |
/// | `process` | a worker process of its own, locked down with Landlock, seccomp, no new privileges and resource limits before it touches the component |
/// | `fused` | composed at load with the providers it links to that are `fused` too, into one component: links between them are plain calls inside one `Store`, sharing one memory limit and one fate |
/// | `remote` | served by other hosts (`membrane host`) over NATS; each host runs it under the same grants and limits |
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum Placement {
    /// Own `Store` per instance, in the host process.
    #[default]
    Isolated,
    /// A sandboxed worker process of its own.
    Process,
    /// Composed with its fused providers into one component.
    Fused,
    /// Served by other hosts over NATS (`[app] nats`).
    Remote,
}

impl Placement {
    /// The manifest spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Placement::Isolated => "isolated",
            Placement::Process => "process",
            Placement::Fused => "fused",
            Placement::Remote => "remote",
        }
    }
}

impl fmt::Display for Placement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
