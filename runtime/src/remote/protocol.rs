//! What a call to a `remote` module looks like on NATS.
//!
//! A call is a NATS request on `membrane.<app>.<module>` (queue group of the same name,
//! so the hosts serving the module share its calls) or, inside a resource session, on the
//! serving host's own subject `membrane.<app>.<module>.host.<host-id>`. The body is the
//! arguments in the component model's value encoding (`wire/value.rs`); headers carry the
//! rest:
//!
//! | header | request | reply |
//! |---|---|---|
//! | `Membrane-Func` | the export, `ns:pkg/iface#func` | |
//! | `Membrane-Deadline-Us` | microseconds left of the caller's deadline | |
//! | `Membrane-Hash` | [`module_hash`] of the caller's manifest entry | |
//! | `Membrane-Session` | `new` to open a session, or its id | the id of a session it opened |
//! | `Membrane-Drop` | a resource handle of the session to drop (no `Membrane-Func`) | |
//! | `Membrane-Close` | `1`: the session ends (published, no reply) | |
//! | `Membrane-Host` | | the answering host's id |
//! | `Membrane-Error` | | `1`: the body is an error (`wire/message.rs` JSON), not results |

use std::time::Duration;

use sha2::{Digest, Sha256};

use crate::spec::ModuleSpec;

/// The export called.
pub(crate) const FUNC: &str = "Membrane-Func";
/// Microseconds left until the caller's deadline.
pub(crate) const DEADLINE: &str = "Membrane-Deadline-Us";
/// The caller's [`module_hash`].
pub(crate) const HASH: &str = "Membrane-Hash";
/// A resource session: `new`, or the id the host gave it.
pub(crate) const SESSION: &str = "Membrane-Session";
/// Opens a session (the value of [`SESSION`]).
pub(crate) const NEW_SESSION: &str = "new";
/// Drops a resource of a session: its handle.
pub(crate) const DROP: &str = "Membrane-Drop";
/// Ends a session.
pub(crate) const CLOSE: &str = "Membrane-Close";
/// The answering host.
pub(crate) const HOST: &str = "Membrane-Host";
/// The reply is an error.
pub(crate) const ERROR: &str = "Membrane-Error";

/// The subject a module's calls are sent to; its hosts listen on it in a queue group of
/// the same name.
pub(crate) fn subject(app: &str, module: &str) -> String {
    format!("membrane.{app}.{module}")
}

/// The subject of one host's resource sessions of a module.
pub(crate) fn host_subject(app: &str, module: &str, host: &str) -> String {
    format!("membrane.{app}.{module}.host.{host}")
}

/// What both sides of a remote call must agree on: the module's component (its SHA-256,
/// as the app computed it when it loaded) and its policy (grants, limits, lifecycle). A
/// host refuses calls whose hash differs from its own, so a caller never reaches a module
/// that runs other code or under other rules than its manifest says.
///
/// A directory grant counts by what the guest sees (its path, mode and quotas), not by
/// the host directory behind it: that is each machine's own (the manifest's directory
/// joined with the grant's path), and differs between checkouts of one manifest.
pub(crate) fn module_hash(component_hash: &str, spec: &ModuleSpec) -> String {
    let mut h = Sha256::new();
    h.update(component_hash.as_bytes());
    h.update([0]);
    let mut grants = spec.grants.clone();
    for d in &mut grants.dirs {
        d.host = std::path::PathBuf::new();
    }
    // Serializing these plain data types cannot fail.
    let policy = serde_json::to_vec(&(&grants, &spec.limits, &spec.lifecycle)).unwrap_or_default();
    h.update(&policy);
    h.finalize()[..16]
        .iter()
        .fold(String::with_capacity(32), |mut s, b| {
            use std::fmt::Write as _;
            let _ = write!(s, "{b:02x}");
            s
        })
}

/// The deadline header's value for `left`.
pub(crate) fn deadline_value(left: Duration) -> String {
    left.as_micros().min(u128::from(u64::MAX)).to_string()
}

/// The time left a deadline header says, if it is well formed.
pub(crate) fn parse_deadline(value: &str) -> Option<Duration> {
    value.parse::<u64>().ok().map(Duration::from_micros)
}

/// Whether `name` can be part of a NATS subject as one token: letters, digits, `-`, `_`.
pub(crate) fn valid_token(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subjects_and_tokens() {
        assert_eq!(subject("notes", "render"), "membrane.notes.render");
        assert_eq!(
            host_subject("notes", "render", "h1"),
            "membrane.notes.render.host.h1"
        );
        assert!(valid_token("notes-1_a"));
        for bad in ["", "a.b", "a*", "a>", "a b", "é"] {
            assert!(!valid_token(bad), "{bad:?}");
        }
    }

    #[test]
    fn hash_covers_component_and_policy() {
        let spec = ModuleSpec::from_bytes(Vec::new());
        let a = module_hash("abc", &spec);
        assert_eq!(a, module_hash("abc", &spec));
        assert_ne!(a, module_hash("abd", &spec));
        let mut other = spec.clone();
        other.limits.memory += 1;
        assert_ne!(a, module_hash("abc", &other));
        let mut other = spec.clone();
        other.grants.env.insert("K".into(), "v".into());
        assert_ne!(a, module_hash("abc", &other));
        // Nor is the host directory behind a grant, only what the guest sees of it.
        let dir = |host: &str, guest: &str| crate::spec::DirGrant {
            host: host.into(),
            guest: guest.into(),
            mode: crate::spec::DirMode::ReadOnly,
            quota: None,
            quota_files: None,
        };
        let mut here = spec.clone();
        here.grants.dirs.push(dir("/srv/a/data", "/data"));
        let mut there = spec.clone();
        there.grants.dirs.push(dir("/home/b/app/data", "/data"));
        assert_eq!(module_hash("abc", &here), module_hash("abc", &there));
        there.grants.dirs[0].guest = "/other".into();
        assert_ne!(module_hash("abc", &here), module_hash("abc", &there));
        // Where the module runs is not part of it: the caller has it remote, the host local.
        let mut other = spec;
        other.placement = crate::spec::Placement::Process;
        assert_eq!(a, module_hash("abc", &other));
    }

    #[test]
    fn deadlines_round_trip() {
        let d = Duration::from_micros(1_234_567);
        assert_eq!(parse_deadline(&deadline_value(d)), Some(d));
        assert_eq!(parse_deadline("soon"), None);
        assert_eq!(parse_deadline("-1"), None);
    }
}
