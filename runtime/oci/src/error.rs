//! What goes wrong with a registry, as data: [`OciError`] names the reference and carries
//! an [`OciErrorKind`] with the details a program needs (the address that did not answer,
//! the expected and actual digests). Turned into Membrane's error ([`OciError::into_error`])
//! it keeps its place as the cause, so that [`OciError::find`] reads it back.

use std::fmt;

use membrane_core::spec::oci::Digest;
use membrane_core::{Error, ErrorKind};

/// What an artifact is made of.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Object {
    /// The artifact's manifest (the JSON that lists its config and layers).
    Manifest,
    /// The component layer: the `.wasm` bytes.
    Component,
    /// The artifact's config blob.
    Config,
}

impl fmt::Display for Object {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Object::Manifest => "manifest",
            Object::Component => "component",
            Object::Config => "config",
        })
    }
}

/// What went wrong, with its details.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum OciErrorKind {
    /// No connection to the registry: refused, unresolvable, a TLS failure, a timeout.
    Unreachable {
        /// `host[:port]` that did not answer.
        address: String,
        /// Why.
        cause: String,
    },
    /// The registry refused access (HTTP 401 or 403 after the credentials available).
    Unauthorized {
        /// The HTTP status.
        status: u16,
    },
    /// The registry has no such manifest or blob (HTTP 404).
    NotFound {
        /// What was asked for.
        object: Object,
        /// The tag or digest asked for.
        name: String,
    },
    /// Bytes that do not hash to the digest they are pinned to or announced with. None of
    /// them was kept.
    DigestMismatch {
        /// What the bytes were.
        object: Object,
        /// The digest they had to have.
        expected: Digest,
        /// The digest they have.
        actual: Digest,
    },
    /// More bytes than allowed: the download stopped at the limit.
    TooLarge {
        /// What was being read.
        object: Object,
        /// The limit, in bytes.
        limit: u64,
    },
    /// The artifact is not a Wasm component artifact (an image index, a container image,
    /// several layers, a digest of another algorithm).
    NotWasm {
        /// What it is instead.
        detail: String,
    },
    /// The registry broke the protocol: an unexpected status, malformed JSON, a body cut
    /// off or stalled, a redirect loop.
    Protocol {
        /// What happened.
        detail: String,
    },
    /// Plain HTTP to a host that is neither this machine nor listed in
    /// `MEMBRANE_OCI_INSECURE` (a registry, a redirect or a token service).
    Insecure {
        /// The URL that would have been used.
        url: String,
    },
    /// Credentials from the environment or docker's config are unusable.
    Credentials {
        /// What is wrong with them.
        detail: String,
    },
    /// The local cache could not be read or written.
    Cache {
        /// The file or directory.
        path: std::path::PathBuf,
        /// Why.
        cause: String,
    },
}

/// A failure about one reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OciError {
    /// The reference (`oci://host/repo:tag`), as the manifest wrote it.
    pub reference: String,
    /// What went wrong.
    pub kind: OciErrorKind,
}

impl OciError {
    /// A failure of `kind` about `reference`.
    pub fn new(reference: impl fmt::Display, kind: OciErrorKind) -> Self {
        OciError {
            reference: reference.to_string(),
            kind,
        }
    }

    /// The [`OciError`] behind a Membrane error, if a registry caused it.
    pub fn find<'a>(e: &'a (dyn std::error::Error + 'static)) -> Option<&'a OciError> {
        let mut cur = Some(e);
        while let Some(e) = cur {
            if let Some(found) = e.downcast_ref::<OciError>() {
                return Some(found);
            }
            cur = e.source();
        }
        None
    }

    /// The kind of Membrane error this failure is.
    pub fn error_kind(&self) -> ErrorKind {
        match &self.kind {
            OciErrorKind::Unreachable { .. } | OciErrorKind::Protocol { .. } => {
                ErrorKind::Unavailable
            }
            OciErrorKind::Unauthorized { .. }
            | OciErrorKind::Insecure { .. }
            | OciErrorKind::Credentials { .. } => ErrorKind::Denied,
            OciErrorKind::NotFound { .. } => ErrorKind::NotFound,
            OciErrorKind::DigestMismatch { .. } => ErrorKind::Integrity,
            OciErrorKind::TooLarge { .. } | OciErrorKind::NotWasm { .. } => {
                ErrorKind::InvalidComponent
            }
            OciErrorKind::Cache { .. } => ErrorKind::Io,
        }
    }

    /// What to do about it.
    fn hint(&self) -> String {
        match &self.kind {
            OciErrorKind::Unreachable { .. } => "check that the registry is up and the reference's host and port; a component pinned by digest (in the reference or by `membrane lock`) loads from the cache without the registry once it was pulled".into(),
            OciErrorKind::Unauthorized { .. } => "give credentials for this registry: MEMBRANE_OCI_USERNAME and MEMBRANE_OCI_PASSWORD with MEMBRANE_OCI_REGISTRY naming it, or `docker login` (~/.docker/config.json)".into(),
            OciErrorKind::NotFound { .. } => "check the reference, push the component (`membrane push`), or run `membrane lock` to pin what the tag names now".into(),
            OciErrorKind::DigestMismatch { .. } => "the bytes were not used; something between the registry and this host, or the registry itself, changed them. If the artifact was replaced on purpose, run `membrane lock` again".into(),
            OciErrorKind::TooLarge { object: Object::Component, .. } => "raise [app] max_component_size if the component is meant to be that large".into(),
            OciErrorKind::TooLarge { .. } => "the registry sent more than an artifact's metadata may be; check the reference".into(),
            OciErrorKind::NotWasm { .. } => "push the component as a Wasm OCI artifact (`membrane push` or `wkg oci push`: one application/wasm layer)".into(),
            OciErrorKind::Protocol { .. } => "check the registry's health, or the reference's host and port".into(),
            OciErrorKind::Insecure { .. } => "use a registry that speaks HTTPS, or list the host in MEMBRANE_OCI_INSECURE (comma-separated) if plain HTTP to it is meant".into(),
            OciErrorKind::Credentials { .. } => "set MEMBRANE_OCI_USERNAME, MEMBRANE_OCI_PASSWORD and MEMBRANE_OCI_REGISTRY together, or none of them".into(),
            OciErrorKind::Cache { .. } => "check the cache directory ($MEMBRANE_CACHE_DIR, else ~/.cache/membrane): it must be this user's and writable".into(),
        }
    }

    /// Membrane's error for `module`'s component: the kind ([`OciError::error_kind`]), the
    /// module, the manifest key to change, a message that says what to do, and this error
    /// as the cause.
    pub fn into_error(self, module: Option<&str>) -> Error {
        let key = match (&self.kind, module) {
            (
                OciErrorKind::TooLarge {
                    object: Object::Component,
                    ..
                },
                _,
            ) => Some("app.max_component_size".to_string()),
            (_, Some(m)) => Some(format!("modules.{m}.component")),
            (_, None) => None,
        };
        let prefix = module.map_or_else(String::new, |m| format!("module `{m}`: "));
        let mut e = Error::new(
            self.error_kind(),
            format!("{prefix}{self}; {}", self.hint()),
        );
        if let Some(m) = module {
            e = e.with_module(m);
        }
        if let Some(k) = key {
            e = e.with_key(k);
        }
        e.with_source(self)
    }
}

impl fmt::Display for OciError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let r = &self.reference;
        match &self.kind {
            OciErrorKind::Unreachable { address, cause } => {
                write!(f, "{r}: cannot reach the registry at {address}: {cause}")
            }
            OciErrorKind::Unauthorized { status } => {
                write!(f, "{r}: the registry refused access (HTTP {status})")
            }
            OciErrorKind::NotFound { object, name } => {
                write!(f, "{r}: the registry has no {object} {name}")
            }
            OciErrorKind::DigestMismatch {
                object,
                expected,
                actual,
            } => write!(
                f,
                "{r}: the {object} has digest {actual}, not the {expected} it is pinned to"
            ),
            OciErrorKind::TooLarge { object, limit } => write!(
                f,
                "{r}: the {object} is larger than {}",
                membrane_core::format_size(*limit)
            ),
            OciErrorKind::NotWasm { detail } => {
                write!(f, "{r}: not a Wasm component artifact: {detail}")
            }
            OciErrorKind::Protocol { detail } => write!(f, "{r}: {detail}"),
            OciErrorKind::Insecure { url } => write!(
                f,
                "{r}: refusing plain HTTP to {url} (only this machine and hosts in MEMBRANE_OCI_INSECURE are spoken to without TLS)"
            ),
            OciErrorKind::Credentials { detail } => write!(f, "{r}: {detail}"),
            OciErrorKind::Cache { path, cause } => {
                write!(f, "{r}: the cache at {}: {cause}", path.display())
            }
        }
    }
}

impl std::error::Error for OciError {}

/// At most 200 characters of `text`, for messages (registries' texts are escaped when
/// printed, by `membrane::chain`).
pub fn clip(text: &str) -> &str {
    match text.char_indices().nth(200) {
        Some((i, _)) => &text[..i],
        None => text,
    }
}

/// [`clip`], with what could drive a terminal or split a log line escaped: for text a
/// registry chose (its error bodies, its media types).
pub fn shown(text: &str) -> String {
    membrane_core::sanitize::escape(clip(text)).into_owned()
}

/// `e` and its causes, joined with ": " (hyper's errors keep the interesting part in the
/// cause).
pub fn cause_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut cur = e.source();
    while let Some(s) = cur {
        let text = s.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        cur = s.source();
    }
    clip(&out).to_string()
}
