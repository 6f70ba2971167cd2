//! Which links fuse, from the declaration alone, and the declaration's rules for them: the
//! grants of a fused link's two sides are equal, the members of a composition do not link
//! one interface to two providers, fused links form no cycle, and a live upgrade does not
//! need a composition made again.

use std::collections::{BTreeMap, BTreeSet};

use crate::error::{Error, Problems};
use crate::names::{HOST, split_version};
use crate::spec::{Grants, Placement};

pub(crate) use membrane_core::boundary::{Decl, decl};

/// One fused link: `importer` links `key` to `provider`, both `fused`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Wire {
    pub importer: String,
    pub key: String,
    pub provider: String,
}

fn is_fused(decl: &Decl<'_>, name: &str) -> bool {
    decl.get(name)
        .is_some_and(|m| m.placement == Placement::Fused)
}

/// Whether `importer`'s link to `provider` is served inside a composition: both are
/// `fused` modules.
pub(crate) fn fuses(decl: &Decl<'_>, importer: &str, provider: &str) -> bool {
    provider != HOST && is_fused(decl, importer) && is_fused(decl, provider)
}

/// The fused links inside `root`'s composition: its own, and through them those of every
/// provider it reaches, each once, breadth-first. Empty when `root` is not a fused importer
/// (then its component is not composed).
pub(crate) fn wires(decl: &Decl<'_>, root: &str) -> Vec<Wire> {
    let mut out = Vec::new();
    let mut seen = BTreeSet::from([root.to_string()]);
    let mut queue = std::collections::VecDeque::from([root.to_string()]);
    while let Some(m) = queue.pop_front() {
        let Some(spec) = decl.get(m.as_str()) else {
            continue;
        };
        for (key, provider) in &spec.links {
            if !fuses(decl, &m, provider) {
                continue;
            }
            out.push(Wire {
                importer: m.clone(),
                key: key.clone(),
                provider: provider.clone(),
            });
            if seen.insert(provider.clone()) {
                queue.push_back(provider.clone());
            }
        }
    }
    out
}

/// The root and the providers of `wires`, root first, each once.
pub(crate) fn members<'a>(root: &'a str, wires: &'a [Wire]) -> Vec<&'a str> {
    let mut out = vec![root];
    for w in wires {
        if !out.contains(&w.provider.as_str()) {
            out.push(&w.provider);
        }
    }
    out
}

/// The links `name`'s component is planned with: its own when it is not composed; for a
/// composed importer, every member's links that are not fused (the composed component
/// imports what its members import, less what they serve each other), the root's first.
pub(crate) fn planned_links(decl: &Decl<'_>, name: &str) -> BTreeMap<String, String> {
    let Some(spec) = decl.get(name) else {
        return BTreeMap::new();
    };
    let wires = wires(decl, name);
    if wires.is_empty() {
        return spec.links.clone();
    }
    let mut out = BTreeMap::new();
    for m in members(name, &wires) {
        for (key, provider) in decl.get(m).map(|s| &s.links).into_iter().flatten() {
            if !fuses(decl, m, provider) {
                out.entry(key.clone()).or_insert_with(|| provider.clone());
            }
        }
    }
    out
}

/// The declaration's rules for fused links; every problem goes to `problems`.
pub(crate) fn check(decl: &Decl<'_>, problems: &mut Problems) {
    for (&importer, spec) in decl {
        let providers: BTreeSet<&String> = spec.links.values().collect();
        for provider in providers {
            if !fuses(decl, importer, provider) {
                continue;
            }
            let (a, b) = (&spec.grants, &decl[provider.as_str()].grants);
            if a != b {
                problems.push(
                    Error::manifest(format!(
                        "module `{importer}` is fused with `{provider}` (placement = \"fused\" on both), but their grants differ in {}: \
                         fused modules run in one sandbox with one set of grants. Make the grants of `{importer}` and `{provider}` equal, \
                         or set placement = \"isolated\" on one of them to keep them in separate sandboxes",
                        differences(a, b).join(", ")
                    ))
                    .with_module(importer)
                    .with_key(format!("modules.{importer}.placement")),
                );
            }
        }
        let wires = wires(decl, importer);
        if wires.is_empty() {
            continue;
        }
        if let Some(path) = cycle(decl, importer)
            && path.iter().min().is_some_and(|m| m == importer)
        {
            problems.push(
                Error::link(format!(
                    "the fused links form a cycle: {}; a composition cannot contain itself. \
                     Move the shared part into its own module that both use",
                    path.join(" -> ")
                ))
                .with_module(importer)
                .with_key(format!("modules.{importer}.links")),
            );
        }
        conflicts(decl, importer, &wires, problems);
    }
}

/// The grant kinds in which `a` and `b` differ.
fn differences(a: &Grants, b: &Grants) -> Vec<&'static str> {
    let mut out = Vec::new();
    for (kind, differs) in [
        ("dirs", a.dirs != b.dirs),
        ("env", a.env != b.env),
        ("stdout", a.stdout != b.stdout),
        ("stderr", a.stderr != b.stderr),
        ("network", a.network != b.network),
        ("http", a.http != b.http),
        ("keyvalue", a.keyvalue != b.keyvalue),
        ("config", a.config != b.config),
    ] {
        if differs {
            out.push(kind);
        }
    }
    if out.is_empty() {
        out.push("other grants");
    }
    out
}

/// A path of fused links from `root` back to itself, if there is one.
fn cycle(decl: &Decl<'_>, root: &str) -> Option<Vec<String>> {
    fn walk(
        decl: &Decl<'_>,
        root: &str,
        at: &str,
        path: &mut Vec<String>,
        seen: &mut BTreeSet<String>,
    ) -> bool {
        for provider in decl.get(at).map(|s| s.links.values()).into_iter().flatten() {
            if !fuses(decl, at, provider) {
                continue;
            }
            if provider == root {
                path.push(provider.clone());
                return true;
            }
            if seen.insert(provider.clone()) {
                path.push(provider.clone());
                if walk(decl, root, provider, path, seen) {
                    return true;
                }
                path.pop();
            }
        }
        false
    }
    let mut path = vec![root.to_string()];
    walk(decl, root, root, &mut path, &mut BTreeSet::new()).then_some(path)
}

/// Refuses one interface linked to two providers by members of one composition: the
/// composed component imports it once.
fn conflicts(decl: &Decl<'_>, root: &str, wires: &[Wire], problems: &mut Problems) {
    let mut by_base: BTreeMap<&str, (&str, &str)> = BTreeMap::new();
    for m in members(root, wires) {
        for (key, provider) in decl.get(m).map(|s| &s.links).into_iter().flatten() {
            if fuses(decl, m, provider) {
                continue;
            }
            let base = split_version(key).0;
            match by_base.get(base) {
                Some(&(other, first)) if first != provider => problems.push(
                    Error::manifest(format!(
                        "module `{root}` is composed with `{}`, but `{other}` links `{base}` to `{first}` and `{m}` links it to `{provider}`: \
                         a composed component imports an interface once. Link both to the same provider, \
                         or set placement = \"isolated\" on one of them",
                        members(root, wires)[1..].join("`, `")
                    ))
                    .with_module(root)
                    .with_key(format!("modules.{root}.placement")),
                ),
                Some(_) => {}
                None => {
                    by_base.insert(base, (m, provider));
                }
            }
        }
    }
}

/// Refuses live upgrades that a composition would have to be made again for: a change to
/// a fused importer (before or after), and a change of placement or links to a module
/// composed into an importer. Other changes to a fused provider pass, with a note in the
/// log that the copies composed into its importers keep the version they were loaded with.
pub(crate) fn check_upgrade<'a>(
    old: &Decl<'_>,
    new: &Decl<'_>,
    changed: impl IntoIterator<Item = &'a str>,
    problems: &mut Problems,
) {
    let restart = "restart the app (load it again) to apply this change";
    for name in changed {
        let key = format!("modules.{name}.placement");
        let composed = |d: &Decl<'_>| -> Vec<String> {
            let wires = wires(d, name);
            members(name, &wires)[1..]
                .iter()
                .map(|m| m.to_string())
                .collect()
        };
        let (before, after) = (composed(old), composed(new));
        if !before.is_empty() || !after.is_empty() {
            let with: BTreeSet<String> = before.into_iter().chain(after).collect();
            problems.push(
                Error::manifest(format!(
                    "module `{name}` is composed at load with the fused modules it links to (`{}`), \
                     and a live upgrade does not compose it again; {restart}",
                    with.into_iter().collect::<Vec<_>>().join("`, `")
                ))
                .with_module(name)
                .with_key(key),
            );
            continue;
        }
        let into = |d: &Decl<'_>| -> BTreeSet<String> {
            d.keys()
                .filter(|&&i| i != name && wires(d, i).iter().any(|w| w.provider == name))
                .map(|i| i.to_string())
                .collect()
        };
        let importers: BTreeSet<String> = into(old).into_iter().chain(into(new)).collect();
        if importers.is_empty() {
            continue;
        }
        let list = importers.into_iter().collect::<Vec<_>>().join("`, `");
        let (o, n) = (old.get(name), new.get(name));
        let moved = o.map(|s| s.placement) != n.map(|s| s.placement)
            || o.map(|s| &s.links) != n.map(|s| &s.links);
        if moved {
            problems.push(
                Error::manifest(format!(
                    "module `{name}` is composed into `{list}` (placement = \"fused\"), and a live upgrade \
                     cannot change its placement or links there; {restart}"
                ))
                .with_module(name)
                .with_key(key),
            );
        } else {
            tracing::warn!(
                target: "membrane::upgrade",
                module = name,
                "module `{name}` is upgraded, but the copy composed into `{list}` keeps the version loaded with them until the app is loaded again"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::ModuleSpec;

    /// A module of a test app: name, placement, links (interface, provider).
    type Mod<'a> = (&'a str, Placement, &'a [(&'a str, &'a str)]);

    fn app(mods: &[Mod<'_>]) -> BTreeMap<String, ModuleSpec> {
        mods.iter()
            .map(|(name, placement, links)| {
                let mut m = ModuleSpec::from_bytes(Vec::new()).placement(*placement);
                for (k, p) in *links {
                    m = m.link(*k, *p);
                }
                (name.to_string(), m)
            })
            .collect()
    }

    const F: Placement = Placement::Fused;
    const I: Placement = Placement::Isolated;

    #[test]
    fn chains_fuse_transitively_and_keep_outside_links() {
        let modules = app(&[
            ("a", F, &[("x:y/b", "b"), ("x:y/o", "o")]),
            ("b", F, &[("x:y/c", "c")]),
            ("c", F, &[("x:y/h", "host"), ("x:y/o", "o"), ("x:y/w", "w")]),
            ("o", I, &[]),
            ("w", Placement::Process, &[]),
        ]);
        let d = decl(&modules);
        let w = wires(&d, "a");
        assert_eq!(members("a", &w), ["a", "b", "c"]);
        let planned = planned_links(&d, "a");
        assert_eq!(
            planned.into_iter().collect::<Vec<_>>(),
            [
                ("x:y/h".to_string(), "host".to_string()),
                ("x:y/o".to_string(), "o".to_string()),
                // Only fused providers fuse: a `process` one stays an ordinary link.
                ("x:y/w".to_string(), "w".to_string())
            ]
        );
        // A provider is planned with its own links (c is its own importer's root too).
        assert_eq!(planned_links(&d, "b").len(), 3);
        assert!(wires(&d, "o").is_empty());
        let mut p = Problems::default();
        check(&d, &mut p);
        assert_eq!(p.len(), 0);
    }

    #[test]
    fn cycles_conflicts_and_grants_are_refused() {
        let mut modules = app(&[
            ("a", F, &[("x:y/b", "b"), ("x:y/o", "o")]),
            ("b", F, &[("x:y/a", "a"), ("x:y/o", "p")]),
            ("o", I, &[]),
            ("p", I, &[]),
        ]);
        modules.get_mut("b").unwrap().grants.network = vec!["127.0.0.1:1".into()];
        let mut p = Problems::default();
        check(&decl(&modules), &mut p);
        let keys: Vec<String> = p.iter_mut().map(|e| e.key().unwrap().to_string()).collect();
        // Grants both ways (once per pair, however many links), one cycle, a conflict
        // seen from each root.
        assert_eq!(p.len(), 5, "{keys:?}");
    }

    #[test]
    fn upgrades_that_need_a_new_composition_are_refused() {
        let old = app(&[("a", F, &[("x:y/b", "b")]), ("b", F, &[])]);
        let mut new = old.clone();
        let mut p = Problems::default();
        check_upgrade(&decl(&old), &decl(&new), ["a"], &mut p);
        assert_eq!(p.len(), 1);
        let mut p = Problems::default();
        check_upgrade(&decl(&old), &decl(&new), ["b"], &mut p);
        assert_eq!(p.len(), 0);
        new.get_mut("b").unwrap().placement = I;
        let mut p = Problems::default();
        check_upgrade(&decl(&old), &decl(&new), ["b"], &mut p);
        assert_eq!(p.len(), 1);
    }
}
