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
//! | `Membrane-Session-Key` | the session's key (every call, drop and close in it) | the key of a session it opened |
//! | `Membrane-Drop` | a resource handle of the session to drop (no `Membrane-Func`) | |
//! | `Membrane-Close` | `1`: the session ends (published, no reply) | |
//! | `traceparent` | the caller's span (W3C trace context), with telemetry on | |
//! | `Membrane-Host` | | the answering host's id |
//! | `Membrane-Error` | | `1`: the body is an error (`wire/message.rs` JSON), not results |
//!
//! A session's id and key are each 128 random bits ([`SessionId`], [`SessionKey`]): the id
//! names the session (logs, errors), the key proves that a request comes from the caller
//! that opened it, which alone received it (docs/decisions/0008-remote-session-binding.md).

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
/// The key of a resource session: given to its opener only, required in it.
pub(crate) const SESSION_KEY: &str = "Membrane-Session-Key";
/// Opens a session (the value of [`SESSION`]).
pub(crate) const NEW_SESSION: &str = "new";
/// Drops a resource of a session: its handle.
pub(crate) const DROP: &str = "Membrane-Drop";
/// Ends a session.
pub(crate) const CLOSE: &str = "Membrane-Close";
/// The caller's span (W3C trace context): the host's span of the call is its child.
pub(crate) const TRACEPARENT: &str = "traceparent";
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
    // A secret's source counts (its kind, and its variable's name), never its value, and a
    // file's path as little as a directory's: each host reads its own.
    for v in grants.config.values_mut() {
        if let crate::spec::ConfigValue::File(p) = v {
            *p = std::path::PathBuf::new();
        }
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

/// The id of a resource session: 128 random bits, written as 32 lowercase hex digits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct SessionId(pub(crate) u128);

impl SessionId {
    /// Reads an id as [`SessionId`]'s `Display` writes it; anything else is `None`.
    pub(crate) fn parse(text: &str) -> Option<SessionId> {
        parse_hex(text).map(u128::from_be_bytes).map(SessionId)
    }
}

impl std::fmt::Display for SessionId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:032x}", self.0)
    }
}

/// The key of a resource session: 128 random bits that only the session's opener learns
/// (in the answer that opened it), written as 32 lowercase hex digits. Its `Debug` does
/// not show it, so that it never reaches a log by accident.
#[derive(Clone, Copy)]
pub(crate) struct SessionKey(pub(crate) [u8; 16]);

impl SessionKey {
    /// Reads a key as [`SessionKey::text`] writes it; anything else is `None`.
    pub(crate) fn parse(text: &str) -> Option<SessionKey> {
        parse_hex(text).map(SessionKey)
    }

    /// The key as it crosses, in a header.
    pub(crate) fn text(&self) -> String {
        format!("{:032x}", u128::from_be_bytes(self.0))
    }

    /// Whether `other` is this key, in time that does not depend on where they differ: a
    /// caller that guesses must not learn how much of its guess was right.
    pub(crate) fn matches(&self, other: &SessionKey) -> bool {
        subtle::ConstantTimeEq::ct_eq(&self.0[..], &other.0[..]).into()
    }
}

impl std::fmt::Debug for SessionKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SessionKey(..)")
    }
}

/// 32 lowercase hex digits as 16 bytes, most significant first.
fn parse_hex(text: &str) -> Option<[u8; 16]> {
    let digits = text.as_bytes();
    if digits.len() != 32 {
        return None;
    }
    let mut out = [0u8; 16];
    for (byte, pair) in out.iter_mut().zip(digits.chunks_exact(2)) {
        let nibble = |d: u8| match d {
            b'0'..=b'9' => Some(d - b'0'),
            b'a'..=b'f' => Some(d - b'a' + 10),
            _ => None,
        };
        *byte = (nibble(pair[0])? << 4) | nibble(pair[1])?;
    }
    Some(out)
}

/// The longest host id a caller accepts from an answer (a host's own is 22 characters).
pub(crate) const MAX_HOST_ID: usize = 64;

/// Whether `id`, from an answer, can be a host id: a subject token of at most
/// [`MAX_HOST_ID`] bytes.
pub(crate) fn valid_host_id(id: &str) -> bool {
    id.len() <= MAX_HOST_ID && valid_token(id)
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
    fn session_ids_and_keys_round_trip_and_nothing_else_reads() {
        let id = SessionId(0x0123_4567_89ab_cdef_0011_2233_4455_6677);
        let text = id.to_string();
        assert_eq!(text, "0123456789abcdef0011223344556677");
        assert_eq!(SessionId::parse(&text), Some(id));
        assert_eq!(SessionId(1).to_string().len(), 32);
        let key = SessionKey([0xa5; 16]);
        assert!(SessionKey::parse(&key.text()).unwrap().matches(&key));
        assert!(!SessionKey([0xa5; 16]).matches(&SessionKey([0xa4; 16])));
        assert_eq!(format!("{key:?}"), "SessionKey(..)");
        let bad = [
            "",
            "1",
            "new",
            "0123456789ABCDEF0011223344556677",
            "+123456789abcdef0011223344556677",
            "0123456789abcdef00112233445566778",
            "0123456789abcdef001122334455667",
            "0123456789abcdef001122334455667g",
            "0123456789abcdef00112233445566é",
        ];
        for b in bad {
            assert!(SessionId::parse(b).is_none(), "{b:?}");
            assert!(SessionKey::parse(b).is_none(), "{b:?}");
        }
        assert!(valid_host_id("Zc2aLoIt1OB3rQm6EwsHGd"));
        assert!(!valid_host_id(&"a".repeat(MAX_HOST_ID + 1)));
        assert!(!valid_host_id("a.b"));
    }

    #[test]
    fn deadlines_round_trip() {
        let d = Duration::from_micros(1_234_567);
        assert_eq!(parse_deadline(&deadline_value(d)), Some(d));
        assert_eq!(parse_deadline("soon"), None);
        assert_eq!(parse_deadline("-1"), None);
    }
}
