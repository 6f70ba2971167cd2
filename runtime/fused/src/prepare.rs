//! Fusing during a load: before compiling, each fused importer's component is replaced by
//! its composition ([`prepare`], [`Fusion::swap`]); after compiling, the module gets back
//! the identity of its own component ([`Fusion::restore`]: source, hash, directories),
//! and its fused links are reported ([`Fusion::report`]).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use crate::capability::protect::DirId;
use crate::compile::{Compiled, read_source};
use crate::error::{Error, ErrorKind, Problems};
use crate::link::LinkInfo;
use crate::spec::{ComponentSource, ModuleSpec, Placement};

use super::group::{Decl, decl, fuses, members, wires};
use super::{compose, key_serves};

/// The fused importers of one load.
#[derive(Default)]
pub(crate) struct Fusion {
    composed: BTreeMap<String, Fused>,
    /// Importers that could not be composed (their problem is reported): not compiled.
    failed: BTreeSet<String>,
    warnings: Vec<String>,
}

/// One composed importer.
struct Fused {
    bytes: Arc<[u8]>,
    /// Its own component: where it came from, its hash, the directories above it.
    source: ComponentSource,
    hash: String,
    dirs: Vec<DirId>,
    /// Its own links that are not fused: what it reports as its links, with `links`.
    outside: BTreeMap<String, String>,
    /// Its own fused links, resolved.
    links: Vec<LinkInfo>,
}

/// Composes every fused importer of `modules` with its fused providers, on a blocking
/// thread (reading and composing components takes milliseconds). Problems go to `problems`.
pub(crate) async fn prepare(
    modules: &BTreeMap<String, ModuleSpec>,
    max_component: u64,
    problems: &mut Problems,
) -> Fusion {
    if !modules.values().any(|m| m.placement == Placement::Fused) {
        return Fusion::default();
    }
    let modules = modules.clone();
    match tokio::task::spawn_blocking(move || compose_all(&decl(&modules), max_component)).await {
        Ok((fusion, found)) => {
            for e in found {
                problems.push(e);
            }
            fusion
        }
        Err(join) => {
            problems.push(Error::new(
                ErrorKind::HostPanic,
                format!("composing fused modules panicked: {join}"),
            ));
            Fusion::default()
        }
    }
}

/// A component's bytes and the directories above its file.
type Read = (Arc<[u8]>, Vec<DirId>);

fn compose_all(decl: &Decl<'_>, max_component: u64) -> (Fusion, Vec<Error>) {
    let mut fusion = Fusion::default();
    let mut problems = Vec::new();
    // Each component is read once, however many compositions it is part of.
    // `None`: it could not be read.
    let mut read: BTreeMap<String, Option<Read>> = BTreeMap::new();
    for (&root, spec) in decl {
        let wires = wires(decl, root);
        if wires.is_empty() {
            continue;
        }
        let mut parts: BTreeMap<String, Arc<[u8]>> = BTreeMap::new();
        let mut unreadable = false;
        for m in members(root, &wires) {
            let entry = read.entry(m.to_string()).or_insert_with(|| {
                match read_source(m, &decl[m].source, max_component) {
                    Ok(r) => Some(r),
                    Err(e) => {
                        // Its own compilation reports it, unless it is only a root here
                        // and so not compiled at all.
                        if m == root {
                            problems.push(e);
                        }
                        None
                    }
                }
            });
            match entry {
                Some((bytes, _)) => {
                    parts.insert(m.to_string(), bytes.clone());
                }
                None => unreadable = true,
            }
        }
        if unreadable {
            fusion.failed.insert(root.to_string());
            continue;
        }
        let views: BTreeMap<&str, &[u8]> =
            parts.iter().map(|(n, b)| (n.as_str(), &b[..])).collect();
        let started = std::time::Instant::now();
        match compose(root, &views, &wires) {
            Ok(c) => {
                tracing::debug!(target: "membrane::load", module = root, elapsed = ?started.elapsed(), bytes = c.bytes.len(), "composed with its fused providers");
                for w in &c.unused {
                    let msg = format!(
                        "module `{}` links `{}` to `{}` but does not import it; remove the link",
                        w.importer, w.key, w.provider
                    );
                    // Each member's own composition reports its unused links once.
                    if w.importer == root {
                        tracing::warn!(target: "membrane::link", "{msg}");
                        fusion.warnings.push(msg);
                    }
                }
                let (own, dirs) = read[root].clone().expect("read above");
                fusion.composed.insert(
                    root.to_string(),
                    Fused {
                        bytes: c.bytes.into(),
                        source: spec.source.clone(),
                        hash: crate::cache::digest(&own),
                        dirs,
                        outside: spec
                            .links
                            .iter()
                            .filter(|(_, p)| !fuses(decl, root, p))
                            .map(|(k, p)| (k.clone(), p.clone()))
                            .collect(),
                        links: c.links.into_iter().filter(|l| l.importer == root).collect(),
                    },
                );
            }
            Err(e) => {
                fusion.failed.insert(root.to_string());
                problems.push(e);
            }
        }
    }
    (fusion, problems)
}

impl Fusion {
    /// The modules to compile: composed importers with their composition as their
    /// component, importers that could not be composed left out.
    pub(crate) fn swap(
        &self,
        mut modules: BTreeMap<String, ModuleSpec>,
    ) -> BTreeMap<String, ModuleSpec> {
        modules.retain(|name, _| !self.failed.contains(name));
        for (name, f) in &self.composed {
            if let Some(m) = modules.get_mut(name) {
                m.source = ComponentSource::Bytes(f.bytes.clone());
            }
        }
        modules
    }

    /// Gives each composed importer back the identity of its own component: its source
    /// (for the checks of grants against component files, reloads and `--watch`), its
    /// hash (for `membrane status` and reloads) and the directories above its file.
    pub(crate) fn restore(
        &self,
        mut compiled: BTreeMap<String, Compiled>,
    ) -> BTreeMap<String, Compiled> {
        for (name, f) in &self.composed {
            if let Some(c) = compiled.get_mut(name) {
                c.spec.source = f.source.clone();
                c.hash.clone_from(&f.hash);
                c.component_dirs.clone_from(&f.dirs);
            }
        }
        compiled
    }

    /// Makes the links of composed importers what their declaration says: their own fused
    /// links (marked fused) and their own other links, not the links of their providers
    /// that the composed component imports (each provider reports those as its own).
    pub(crate) fn report(&self, links: &mut Vec<LinkInfo>) {
        if self.composed.is_empty() {
            return;
        }
        links.retain(|l| match self.composed.get(&l.importer) {
            Some(f) => f
                .outside
                .iter()
                .any(|(key, p)| *p == l.provider && key_serves(key, &l.import)),
            None => true,
        });
        for f in self.composed.values() {
            links.extend(f.links.iter().cloned());
        }
        links.sort_by(|a, b| (&a.importer, &a.import).cmp(&(&b.importer, &b.import)));
    }

    /// Warnings found while composing (links of a fused importer it does not import).
    pub(crate) fn warnings(&self) -> &[String] {
        &self.warnings
    }
}
