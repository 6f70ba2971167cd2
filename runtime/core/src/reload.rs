//! Reloading an app: which modules a new declaration changes.
//!
//! A module changes when its component bytes (by SHA-256), grants, limits, links, placement,
//! lifecycle, restart or upgrade policy differ from its current generation's. The set of
//! modules must stay the same; `[app]` settings that only a restart applies are reported.

use std::collections::BTreeMap;

use std::sync::Arc;

use crate::compile::read_source;
use crate::error::{Error, Problems, Result};
use crate::module::Module;
use crate::spec::{AdminSpec, AppSpec, ComponentSource, HttpSpec, ModuleSpec};

/// What a reload would change.
pub struct Diff {
    pub changes: BTreeMap<String, ModuleSpec>,
    pub unchanged: Vec<String>,
    pub warnings: Vec<String>,
}

/// The app as it runs: what a new declaration is compared with.
pub struct Running<'a> {
    pub modules: &'a BTreeMap<String, Arc<Module>>,
    pub http: Option<&'a HttpSpec>,
    pub admin: &'a AdminSpec,
    pub entry: Option<&'a str>,
    /// The largest component file read.
    pub max_component: u64,
}

/// The SHA-256 of each module's component as `spec` declares it, or why it cannot be read.
/// Reads files: run it on a blocking thread, never on a task that serves.
pub fn hashes(spec: &AppSpec, max_component: u64) -> BTreeMap<String, Result<String>> {
    spec.modules
        .iter()
        .map(|(name, m)| {
            let hash = read_source(name, &m.source, max_component)
                .map(|(bytes, _)| crate::cache::digest(&bytes));
            (name.clone(), hash)
        })
        .collect()
}

/// What changes from `app` to `spec`, given the `hashes` of `spec`'s components.
pub fn diff(
    app: &Running<'_>,
    spec: &AppSpec,
    mut hashes: BTreeMap<String, Result<String>>,
) -> Result<Diff> {
    let live: Vec<&str> = app.modules.keys().map(String::as_str).collect();
    let added: Vec<&str> = spec
        .modules
        .keys()
        .map(String::as_str)
        .filter(|n| !live.contains(n))
        .collect();
    let removed: Vec<&str> = live
        .iter()
        .copied()
        .filter(|n| !spec.modules.contains_key(*n))
        .collect();
    if !added.is_empty() || !removed.is_empty() {
        return Err(Error::manifest(format!(
            "a reload cannot add or remove modules (added: {}; removed: {}); restart the app to apply that",
            none_if_empty(&added),
            none_if_empty(&removed)
        )));
    }
    let mut problems = Problems::default();
    let mut changes = BTreeMap::new();
    let mut unchanged = Vec::new();
    for (name, new) in &spec.modules {
        let current = app.modules[name].current_full();
        let old = &current.spec;
        let hash = match hashes.remove(name).unwrap_or_else(|| {
            Err(Error::new(
                crate::ErrorKind::HostPanic,
                format!("module `{name}`: its component was not read"),
            ))
        }) {
            Ok(hash) => hash,
            Err(e) => {
                problems.push(e);
                continue;
            }
        };
        // A component read from another path is a change even with the same bytes: the
        // new path must pass the gate's checks (a link inside a read-write grant, say).
        let same_path = match (&new.source, &old.source) {
            (ComponentSource::File(a), ComponentSource::File(b)) => a == b,
            (ComponentSource::Bytes(_), ComponentSource::Bytes(_)) => true,
            (ComponentSource::Oci(a), ComponentSource::Oci(b)) => a == b,
            _ => false,
        };
        let same = *hash == *current.hash
            && same_path
            && new.grants == old.grants
            && new.limits == old.limits
            && new.links == old.links
            && new.placement == old.placement
            && new.lifecycle == old.lifecycle
            && new.restart == old.restart
            && new.upgrade == old.upgrade
            && new.allow_weaker_sandbox == old.allow_weaker_sandbox;
        if same {
            unchanged.push(name.clone());
        } else {
            changes.insert(name.clone(), new.clone());
        }
    }
    crate::validate::locate(spec.locations.as_deref(), &mut problems);
    problems.into_result()?;
    let mut warnings = Vec::new();
    if spec.http.as_ref() != app.http {
        warnings.push("[app.http] changed; the listener and routes change on restart".to_string());
    }
    if &spec.admin != app.admin {
        warnings.push("[app.admin] changed; it takes effect on restart".to_string());
    }
    if spec.component_size_limit() != app.max_component {
        warnings.push("[app] max_component_size changed; it takes effect on restart".to_string());
    }
    if spec.entry_name() != app.entry {
        warnings.push("[app] entry changed; it takes effect on restart".to_string());
    }
    Ok(Diff {
        changes,
        unchanged,
        warnings,
    })
}

fn none_if_empty(names: &[&str]) -> String {
    if names.is_empty() {
        "none".into()
    } else {
        names.join(", ")
    }
}
