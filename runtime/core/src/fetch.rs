//! The seam for components that are not files of the host: a module whose component is
//! `oci://...` ([`ComponentSource::Oci`]) is pulled by the runtime's [`ComponentFetcher`]
//! (`Config::fetcher`) into a local file before anything reads it, at load, reload and
//! upgrade alike. The core knows no registry protocol: the `membrane-oci` crate implements
//! the fetcher (the `membrane` command sets it; an embedder turns on the `oci` feature of
//! the `membrane` crate), and a runtime without one refuses such a module with the way to
//! get one.

use std::collections::BTreeMap;
use std::fmt;
use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;

use crate::error::{Error, Problems, Result};
use crate::spec::oci::{Digest, OciRef};
use crate::spec::{ComponentSource, ModuleSpec};

/// A boxed future that can move between threads.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// What a fetcher is asked for.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub struct FetchRequest<'a> {
    /// The module whose component it is (for its errors).
    pub module: &'a str,
    /// The reference, with what `membrane.lock` pinned it to.
    pub reference: &'a OciRef,
    /// The most bytes the component may have (`[app] max_component_size`): a fetcher
    /// stops reading past it.
    pub max_size: u64,
}

impl<'a> FetchRequest<'a> {
    /// A request for `module`'s component at `reference`, of at most `max_size` bytes.
    pub fn new(module: &'a str, reference: &'a OciRef, max_size: u64) -> Self {
        FetchRequest {
            module,
            reference,
            max_size,
        }
    }
}

/// A component a fetcher made available.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Fetched {
    /// The local file holding the component's bytes, in a directory only this user writes.
    pub path: PathBuf,
    /// The SHA-256 of those bytes, checked by the fetcher before it answered.
    pub digest: Digest,
}

impl Fetched {
    /// The component at `path`, whose bytes have the SHA-256 `digest`.
    pub fn new(path: PathBuf, digest: Digest) -> Self {
        Fetched { path, digest }
    }
}

/// Turns an `oci://` reference into a local file holding the component's bytes, verified
/// by digest. Implementations bound what they read by [`FetchRequest::max_size`], fail
/// closed with errors that name the module and the reference, and never follow a tag
/// when the reference is pinned ([`OciRef::pinned`]).
pub trait ComponentFetcher: Send + Sync {
    /// Makes the component of `request` available as a local file.
    fn fetch<'a>(&'a self, request: FetchRequest<'a>) -> BoxFuture<'a, Result<Fetched>>;
}

impl fmt::Debug for dyn ComponentFetcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ComponentFetcher")
    }
}

/// Pulls every `oci://` component of `modules` (all at once) and points each such module
/// at its local file. Failures go to `problems`, each naming its module and its
/// `component` key; a module that failed keeps its `oci://` source.
pub async fn resolve(
    fetcher: Option<&Arc<dyn ComponentFetcher>>,
    modules: &mut BTreeMap<String, ModuleSpec>,
    max_size: u64,
    problems: &mut Problems,
) {
    let wanted: Vec<(String, OciRef)> = modules
        .iter()
        .filter_map(|(name, m)| match &m.source {
            ComponentSource::Oci(r) => Some((name.clone(), r.clone())),
            _ => None,
        })
        .collect();
    if wanted.is_empty() {
        return;
    }
    let Some(fetcher) = fetcher else {
        for (name, r) in &wanted {
            problems.push(no_fetcher(name, r));
        }
        return;
    };
    let pulls = wanted.iter().map(|(name, r)| async move {
        let result = fetcher.fetch(FetchRequest::new(name, r, max_size)).await;
        (name, result)
    });
    for (name, result) in futures_util::future::join_all(pulls).await {
        match result {
            Ok(fetched) => {
                tracing::debug!(target: "membrane::load", module = %name, digest = %fetched.digest, path = %fetched.path.display(), "component fetched");
                if let Some(m) = modules.get_mut(name) {
                    m.source = ComponentSource::File(fetched.path);
                }
            }
            Err(mut e) => {
                e.set_module(name);
                problems.push(e);
            }
        }
    }
}

/// [`resolve`] for a whole declaration that must come out with no problem.
pub async fn resolve_all(
    fetcher: Option<&Arc<dyn ComponentFetcher>>,
    modules: &mut BTreeMap<String, ModuleSpec>,
    max_size: u64,
    locations: Option<&crate::spec::Locations>,
) -> Result<()> {
    let mut problems = Problems::default();
    resolve(fetcher, modules, max_size, &mut problems).await;
    crate::validate::locate(locations, &mut problems);
    problems.into_result()
}

/// The error of an `oci://` component in a runtime that has no fetcher.
fn no_fetcher(module: &str, r: &OciRef) -> Error {
    Error::manifest(format!(
        "module `{module}`: component {r} is in an OCI registry, and this runtime has no \
         component fetcher; use the `membrane` command, or build the `membrane` crate with \
         its `oci` feature (or set Config::fetcher), or point `component` at a local .wasm file"
    ))
    .with_module(module)
    .with_key(format!("modules.{module}.component"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn without_a_fetcher_an_oci_module_says_how_to_get_one() {
        let r = OciRef::parse("oci://registry.example/acme/api:1.0").unwrap();
        let mut modules = BTreeMap::from([
            ("api".to_string(), ModuleSpec::from_oci(r)),
            ("local".to_string(), ModuleSpec::from_file("local.wasm")),
        ]);
        let e = resolve_all(None, &mut modules, 1 << 20, None)
            .await
            .unwrap_err();
        assert_eq!(e.kind(), crate::ErrorKind::Manifest);
        assert_eq!(e.module(), Some("api"));
        assert_eq!(e.key(), Some("modules.api.component"));
        assert!(e.message().contains("`oci` feature"), "{e}");
        assert!(matches!(modules["api"].source, ComponentSource::Oci(_)));
        // Nothing to fetch, nothing asked.
        modules.remove("api");
        resolve_all(None, &mut modules, 1 << 20, None)
            .await
            .unwrap();
    }
}
