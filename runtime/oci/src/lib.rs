//! Components from OCI registries, for Membrane: `component = "oci://host[:port]/repo:tag"`
//! (or `@sha256:<digest>`) in a manifest.
//!
//! [`OciFetcher`] is the runtime's `ComponentFetcher` (`Config::fetcher`): it pulls a
//! component once into `<cache>/oci/sha256/<hex>.wasm` and hands the core that file. What
//! it guarantees, and what it does not:
//!
//! - **Verified by digest.** Every manifest and component is hashed (SHA-256) before it is
//!   used: against the digest it is pinned to (`@sha256:` in the reference, or
//!   `membrane.lock`), against the digest its manifest gives a layer, and against the
//!   `Docker-Content-Digest` a registry announces. A mismatch is an
//!   [`OciErrorKind::DigestMismatch`] (`ErrorKind::Integrity`), and nothing of the bytes is
//!   kept. A cached file is hashed again whenever it is used.
//! - **Pinned means pinned.** A reference pinned by digest, or by `membrane.lock`, is never
//!   resolved through its tag, and once pulled it loads from the cache without asking the
//!   registry. An unpinned tag is asked for at every load (tags move).
//! - **Bounded.** A manifest is read up to 4 MiB, a component up to the smaller of its
//!   declared size and the app's `max_component_size`; a connection may take 10 s, an
//!   answer 30 s to start, a transfer 30 s without progress.
//! - **TLS unless local.** HTTPS (rustls, ring, the Mozilla roots and `MEMBRANE_OCI_CA_FILE`)
//!   to every registry but this machine's (`localhost`, `127.0.0.0/8`, `[::1]`) and the
//!   hosts listed in `MEMBRANE_OCI_INSECURE`; a redirect or token service in plain HTTP to
//!   any other host is refused.
//! - **Credentials go where they are meant to.** Anonymous by default; the distribution
//!   token flow with credentials from `MEMBRANE_OCI_USERNAME`/`MEMBRANE_OCI_PASSWORD` (for
//!   the registry `MEMBRANE_OCI_REGISTRY` names only) or docker's `config.json` `auths`.
//!   Credential helpers (`credsStore`) are not run.
//! - **Not guaranteed:** who published an artifact. A digest proves the bytes are the ones
//!   pinned, not that their author is trusted; signatures (cosign, notation) are not
//!   checked.
//!
//! [`OciFetcher::push`] writes a component as `wkg oci push` does (see [`artifact`]).

pub mod artifact;
mod auth;
mod cache;
mod error;
mod fetcher;
mod http;
mod push;
mod registry;
mod settings;

pub use error::{Object, OciError, OciErrorKind};
pub use fetcher::{OciFetcher, Pulled};
pub use push::{Pushed, World};
pub use settings::{Credentials, Settings};

/// The `User-Agent` of every request.
const USER_AGENT: &str = concat!("membrane/", env!("CARGO_PKG_VERSION"));

/// The digest of `bytes`, as a registry names them (`sha256:<hex>`).
pub fn digest_of(bytes: &[u8]) -> membrane_core::spec::oci::Digest {
    cache::digest_of(bytes)
}
