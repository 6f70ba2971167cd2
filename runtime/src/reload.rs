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
use crate::spec::{AdminSpec, AppSpec, HttpSpec, ModuleSpec};

/// What a reload would change.
pub(crate) struct Diff {
    pub changes: BTreeMap<String, ModuleSpec>,
    pub unchanged: Vec<String>,
    pub warnings: Vec<String>,
}

/// The app as it runs: what a new declaration is compared with.
pub(crate) struct Running<'a> {
    pub modules: &'a BTreeMap<String, Arc<Module>>,
    pub http: Option<&'a HttpSpec>,
    pub admin: &'a AdminSpec,
    pub entry: Option<&'a str>,
}

pub(crate) fn diff(app: &Running<'_>, spec: &AppSpec) -> Result<Diff> {
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
        let hash = match read_source(name, &new.source) {
            Ok((bytes, _)) => crate::cache::digest(&bytes),
            Err(e) => {
                problems.push(e);
                continue;
            }
        };
        let same = *hash == *current.hash
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
