//! Components kept in an OCI registry: `component = "oci://host[:port]/repo[/more]:tag"` or
//! `"oci://host[:port]/repo@sha256:<64 hex>"` in a module of the manifest.
//!
//! This file only describes a reference and checks its form (the grammar of the
//! distribution spec's references, with the registry always named: there is no default
//! registry to fall back on). Pulling one is the business of a `ComponentFetcher` given
//! to the runtime (the `membrane-oci` crate, which the `membrane` command uses); a
//! reference is never resolved here.

use std::fmt;

/// The longest reference accepted, in bytes (a bound, not a convention: the distribution
/// spec bounds a name to 255 bytes and a tag to 128, and a digest is 71).
pub const MAX_REFERENCE: usize = 512;

/// The longest registry-plus-repository name the distribution spec allows.
const MAX_NAME: usize = 255;

/// The longest tag the distribution spec allows.
const MAX_TAG: usize = 128;

/// A content digest, `sha256:` and 64 lowercase hex digits: the only algorithm Membrane
/// verifies, so the only one it accepts.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Digest(String);

impl Digest {
    /// The digest of `hex`, 64 lowercase hex digits of a SHA-256.
    pub fn sha256(hex: &str) -> Result<Digest, String> {
        Digest::parse(&format!("sha256:{hex}"))
    }

    /// Reads `algorithm:hex`; only `sha256` with 64 lowercase hex digits is accepted.
    pub fn parse(text: &str) -> Result<Digest, String> {
        let shown = crate::sanitize::escape(text.get(..80).unwrap_or(text));
        let Some((algorithm, hex)) = text.split_once(':') else {
            return Err(format!(
                "{shown:?} is not a digest: write sha256:<64 hex digits>"
            ));
        };
        if algorithm != "sha256" {
            return Err(format!(
                "digest algorithm {:?} is not supported: Membrane verifies sha256 digests only",
                crate::sanitize::escape(algorithm.get(..20).unwrap_or(algorithm))
            ));
        }
        let lower_hex = |c: u8| c.is_ascii_digit() || (b'a'..=b'f').contains(&c);
        if hex.len() != 64 || !hex.bytes().all(lower_hex) {
            return Err(format!(
                "{shown:?} is not a sha256 digest: it needs 64 lowercase hex digits after sha256:"
            ));
        }
        Ok(Digest(text.to_string()))
    }

    /// `sha256:<hex>`.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The 64 hex digits, without the algorithm.
    pub fn hex(&self) -> &str {
        &self.0["sha256:".len()..]
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// What `membrane.lock` pinned a reference to: the artifact's manifest and its component
/// layer, by digest. A fetcher pulls these and nothing else, whatever the tag names now.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Locked {
    /// The digest of the artifact's manifest.
    pub manifest: Digest,
    /// The digest of its component layer (the `.wasm` bytes).
    pub component: Digest,
}

/// A component in an OCI registry: registry, repository, and a tag, a digest or both. Only
/// [`OciRef::parse`] makes one, so every `OciRef` has a valid form.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct OciRef {
    registry: String,
    host: String,
    port: Option<u16>,
    repository: String,
    tag: Option<String>,
    digest: Option<Digest>,
    locked: Option<Locked>,
}

impl OciRef {
    /// The manifest's prefix for a component in a registry.
    pub const SCHEME: &'static str = "oci://";

    /// Reads `[oci://]host[:port]/repo[/more][:tag][@sha256:<hex>]`. The registry is always
    /// the first part (there is no default registry), a tag or a digest is required (no
    /// implied `latest`), and credentials never belong in a reference.
    pub fn parse(text: &str) -> Result<OciRef, String> {
        if text.len() > MAX_REFERENCE {
            return Err(format!(
                "the reference is {} bytes, more than the {MAX_REFERENCE} a reference may be",
                text.len()
            ));
        }
        if let Some(bad) = text.chars().find(|c| c.is_whitespace() || c.is_control()) {
            return Err(format!(
                "the reference contains {:?}; a reference has no spaces or control characters",
                bad
            ));
        }
        let rest = text.strip_prefix(Self::SCHEME).unwrap_or(text);
        if rest.contains("://") {
            return Err(
                "write an OCI reference as oci://host[:port]/repository:tag (no other scheme)"
                    .into(),
            );
        }
        let Some((registry, path)) = rest.split_once('/') else {
            return Err(
                "a reference needs a registry and a repository: oci://host[:port]/repository:tag"
                    .into(),
            );
        };
        if registry.contains('@') {
            return Err("credentials do not belong in a reference: give them in MEMBRANE_OCI_USERNAME and MEMBRANE_OCI_PASSWORD (with MEMBRANE_OCI_REGISTRY), or in ~/.docker/config.json".into());
        }
        let (host, port) = split_registry(registry)?;
        let (name, digest) = match path.rsplit_once('@') {
            Some((name, digest)) => (name, Some(Digest::parse(digest)?)),
            None => (path, None),
        };
        let (repository, tag) = match name.rsplit_once(':') {
            Some((repository, tag)) => (repository, Some(tag)),
            None => (name, None),
        };
        check_repository(repository)?;
        if registry.len() + 1 + repository.len() > MAX_NAME {
            return Err(format!(
                "registry and repository together are longer than the {MAX_NAME} bytes the distribution spec allows"
            ));
        }
        if let Some(tag) = tag {
            check_tag(tag)?;
        }
        if tag.is_none() && digest.is_none() {
            return Err(format!(
                "oci://{registry}/{repository} names no version: add a tag (:1.0.0, :latest) or a digest (@sha256:<hex>)"
            ));
        }
        let host = host.to_ascii_lowercase();
        let registry = match port {
            Some(p) => format!("{host}:{p}"),
            None => host.clone(),
        };
        Ok(OciRef {
            registry,
            host,
            port,
            repository: repository.to_string(),
            tag: tag.map(str::to_string),
            digest,
            locked: None,
        })
    }

    /// `host[:port]`, the host in lowercase (an IPv6 address in brackets).
    pub fn registry(&self) -> &str {
        &self.registry
    }

    /// The registry's host (an IPv6 address in brackets).
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The registry's port, when the reference gives one.
    pub fn port(&self) -> Option<u16> {
        self.port
    }

    /// Whether the registry is this machine (`localhost`, `127.0.0.0/8`, `[::1]`).
    pub fn is_loopback(&self) -> bool {
        is_loopback_host(&self.host)
    }

    /// The repository (`acme/api`).
    pub fn repository(&self) -> &str {
        &self.repository
    }

    /// The tag, when the reference names one.
    pub fn tag(&self) -> Option<&str> {
        self.tag.as_deref()
    }

    /// The manifest digest the reference itself is pinned to (`@sha256:...`).
    pub fn digest(&self) -> Option<&Digest> {
        self.digest.as_ref()
    }

    /// What `membrane.lock` pinned the reference to, if a lock was read with the manifest.
    pub fn locked(&self) -> Option<&Locked> {
        self.locked.as_ref()
    }

    /// The reference pinned to `locked` (what reading `membrane.lock` does).
    pub fn with_locked(mut self, locked: Locked) -> OciRef {
        self.locked = Some(locked);
        self
    }

    /// The manifest digest to pull: the lock's, else the reference's own; `None` for a tag
    /// that is not pinned (it is resolved by asking the registry).
    pub fn pinned(&self) -> Option<&Digest> {
        self.locked
            .as_ref()
            .map(|l| &l.manifest)
            .or(self.digest.as_ref())
    }

    /// What the registry's manifest endpoint is asked for: the pinned digest, else the tag.
    pub fn manifest_reference(&self) -> &str {
        match (self.pinned(), &self.tag) {
            (Some(d), _) => d.as_str(),
            (None, Some(t)) => t,
            // parse() refuses a reference with neither.
            (None, None) => "latest",
        }
    }
}

impl fmt::Display for OciRef {
    /// The reference as written in a manifest (without what a lock adds).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}/{}", Self::SCHEME, self.registry, self.repository)?;
        if let Some(t) = &self.tag {
            write!(f, ":{t}")?;
        }
        if let Some(d) = &self.digest {
            write!(f, "@{d}")?;
        }
        Ok(())
    }
}

/// Whether `host` names this machine: `localhost`, an address of `127.0.0.0/8`, `[::1]`.
pub fn is_loopback_host(host: &str) -> bool {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// `host[:port]` -> (host, port); an IPv6 host keeps its brackets.
fn split_registry(registry: &str) -> Result<(&str, Option<u16>), String> {
    let (host, port) = if let Some(inner) = registry.strip_prefix('[') {
        let Some((addr, after)) = inner.split_once(']') else {
            return Err(format!(
                "registry {registry:?}: an IPv6 address needs its closing ]"
            ));
        };
        if addr.parse::<std::net::Ipv6Addr>().is_err() {
            return Err(format!(
                "registry {registry:?}: [{addr}] is not an IPv6 address"
            ));
        }
        let port = match after {
            "" => None,
            p => Some(p.strip_prefix(':').ok_or_else(|| {
                format!("registry {registry:?}: only :port may follow the address")
            })?),
        };
        (&registry[..addr.len() + 2], port)
    } else {
        match registry.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (registry, None),
        }
    };
    let port = match port {
        None => None,
        Some(p) => match p.parse::<u16>() {
            Ok(n) if n > 0 && p.bytes().all(|b| b.is_ascii_digit()) => Some(n),
            _ => {
                return Err(format!(
                    "registry {registry:?}: {p:?} is not a port (1 to 65535)"
                ));
            }
        },
    };
    if !host.starts_with('[') {
        let label_ok = |l: &str| {
            !l.is_empty()
                && l.len() <= 63
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !l.starts_with('-')
                && !l.ends_with('-')
        };
        if host.is_empty() || host.len() > 253 || !host.split('.').all(label_ok) {
            return Err(format!(
                "registry {registry:?} is not a host name or address (letters, digits, '-' and '.', then an optional :port)"
            ));
        }
    }
    Ok((host, port))
}

/// `path-component ('/' path-component)*`, each `[a-z0-9]+` joined by `.`, `_`, `__` or
/// runs of `-`.
fn check_repository(repository: &str) -> Result<(), String> {
    if repository.is_empty() {
        return Err("the reference names no repository: oci://host/repository:tag".into());
    }
    for part in repository.split('/') {
        if !path_component_ok(part) {
            return Err(format!(
                "repository {:?} is not valid: each part between / is lowercase letters and digits, joined by '.', '_', '__' or '-'",
                crate::sanitize::escape(repository)
            ));
        }
    }
    Ok(())
}

fn path_component_ok(part: &str) -> bool {
    let alnum = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    let bytes = part.as_bytes();
    let (Some(&first), Some(&last)) = (bytes.first(), bytes.last()) else {
        return false;
    };
    if !alnum(first) || !alnum(last) {
        return false;
    }
    // Separators: one '.', one or two '_', or any run of '-'; never mixed, never at the ends.
    let mut i = 0;
    while i < bytes.len() {
        if alnum(bytes[i]) {
            i += 1;
            continue;
        }
        let start = i;
        while i < bytes.len() && !alnum(bytes[i]) {
            i += 1;
        }
        let sep = &part[start..i];
        let ok = sep == "." || sep == "_" || sep == "__" || sep.bytes().all(|b| b == b'-');
        if !ok {
            return false;
        }
    }
    true
}

/// `[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`.
fn check_tag(tag: &str) -> Result<(), String> {
    let word = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    let ok = !tag.is_empty()
        && tag.len() <= MAX_TAG
        && tag.bytes().next().is_some_and(word)
        && tag.bytes().all(|b| word(b) || b == b'.' || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "tag {:?} is not valid: up to {MAX_TAG} letters, digits, '_', '.' and '-', not starting with '.' or '-'",
            crate::sanitize::escape(tag.get(..MAX_TAG + 1).unwrap_or(tag))
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEX: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    #[test]
    fn references_are_read_by_the_distribution_grammar() {
        let r = OciRef::parse("oci://127.0.0.1:5000/acme/api:1.2.0").unwrap();
        assert_eq!(r.registry(), "127.0.0.1:5000");
        assert_eq!(r.host(), "127.0.0.1");
        assert_eq!(r.port(), Some(5000));
        assert_eq!(r.repository(), "acme/api");
        assert_eq!(r.tag(), Some("1.2.0"));
        assert!(r.is_loopback());
        assert_eq!(r.manifest_reference(), "1.2.0");
        assert_eq!(r.to_string(), "oci://127.0.0.1:5000/acme/api:1.2.0");

        let r = OciRef::parse(&format!("oci://Registry.Example/a/b/c@sha256:{HEX}")).unwrap();
        assert_eq!(r.registry(), "registry.example");
        assert_eq!(r.tag(), None);
        assert_eq!(r.digest().unwrap().hex(), HEX);
        assert_eq!(r.manifest_reference(), format!("sha256:{HEX}"));
        assert!(!r.is_loopback());

        let r = OciRef::parse(&format!("[::1]:80/x:v1@sha256:{HEX}")).unwrap();
        assert_eq!(r.host(), "[::1]");
        assert!(r.is_loopback());
        assert_eq!(r.pinned().unwrap().hex(), HEX);

        let r = OciRef::parse("localhost/my_app/x__y.z-1:latest").unwrap();
        assert!(r.is_loopback());
        let locked = Locked {
            manifest: Digest::sha256(HEX).unwrap(),
            component: Digest::sha256(&HEX.replace('0', "1")).unwrap(),
        };
        let r = r.with_locked(locked.clone());
        assert_eq!(r.pinned(), Some(&locked.manifest));
        assert_eq!(r.to_string(), "oci://localhost/my_app/x__y.z-1:latest");
    }

    #[test]
    fn malformed_references_say_what_is_wrong() {
        for (text, says) in [
            ("oci://host", "registry and a repository"),
            ("oci://host/repo", "names no version"),
            ("oci://user:pw@host/repo:1", "credentials"),
            ("oci://host/Repo:1", "lowercase"),
            ("oci://host/re..po:1", "repository"),
            ("oci://host/-repo:1", "repository"),
            ("oci://host//repo:1", "repository"),
            ("oci://host:0/repo:1", "port"),
            ("oci://host:99999/repo:1", "port"),
            ("oci://host:+80/repo:1", "port"),
            ("oci://ho_st/repo:1", "host name"),
            ("oci://[::1/repo:1", "closing"),
            ("oci://[nope]/repo:1", "IPv6"),
            ("oci://host/repo:.tag", "tag"),
            ("oci://host/repo:", "tag"),
            ("oci://host/repo@sha512:abcd", "sha256 digests only"),
            ("oci://host/repo@sha256:ABCD", "64 lowercase hex"),
            ("oci://host/repo:1 2", "spaces"),
            ("https://host/repo:1", "no other scheme"),
        ] {
            let e = OciRef::parse(text).unwrap_err();
            assert!(e.contains(says), "{text}: {e}");
        }
        let long = format!("oci://host/{}:1", "a".repeat(MAX_REFERENCE));
        assert!(OciRef::parse(&long).unwrap_err().contains("more than"));
        let long_tag = format!("oci://host/repo:{}", "t".repeat(MAX_TAG + 1));
        assert!(OciRef::parse(&long_tag).unwrap_err().contains("tag"));
        let long_name = format!("oci://host/{}:1", "a".repeat(MAX_NAME));
        assert!(OciRef::parse(&long_name).unwrap_err().contains("255"));
    }

    #[test]
    fn digests_are_sha256_in_lowercase_hex() {
        assert!(Digest::parse(&format!("sha256:{HEX}")).is_ok());
        assert!(Digest::parse(HEX).is_err());
        assert!(Digest::parse(&format!("sha256:{}", &HEX[1..])).is_err());
        assert!(Digest::sha256(&HEX.to_uppercase()).is_err());
    }
}
