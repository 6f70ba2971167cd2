//! What a drawing of the app shows, as one model: a [`Card`] per module (its placement,
//! grants and key limits) and a label per link. `membrane graph` draws the cards as DOT or
//! Mermaid, the admin page as SVG; both take every line from here, so they cannot disagree
//! on what a module may do.
//!
//! Environment values never appear (they may be secrets), only their names.

use std::collections::BTreeMap;

use crate::app::App;
use crate::link::LinkInfo;
use crate::names::split_version;
use crate::spec::{ModuleSpec, Placement};
use crate::units::format_size;

/// The grants line of a module with none.
pub const NO_GRANTS: &str = "no files, env, network or http";

/// The title of a group of fused modules.
pub const FUSED: &str = "fused: one component, one Store, one memory limit, one fate";

/// What the role of a card's line is, for a drawing's styling.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LineKind {
    /// The placement, and whether the module is the entry.
    Placement,
    /// One grant, or where stdout and stderr go.
    Grant,
    /// No grant at all ([`NO_GRANTS`]).
    NoGrants,
    /// Memory, timeout and instances.
    Limit,
}

/// One module as a drawing shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Card {
    /// The module's name: the card's title.
    pub name: String,
    /// Its placement.
    pub placement: Placement,
    /// The lines under the title, in order: placement, grants, output, limits.
    pub lines: Vec<(String, LineKind)>,
    /// What is left out of the lines for its length (the host directory behind each `dir`
    /// grant), for a tooltip.
    pub details: Vec<String>,
}

impl Card {
    /// The card of module `name`, declared as `spec`; `entry` when it is the app's entry.
    pub fn of(name: &str, spec: &ModuleSpec, entry: bool) -> Card {
        let mut lines = Vec::new();
        let placement = spec.placement.as_str();
        lines.push((
            if entry {
                format!("placement {placement} · entry")
            } else {
                format!("placement {placement}")
            },
            LineKind::Placement,
        ));
        let g = &spec.grants;
        let mut grant = |text: String| lines.push((text, LineKind::Grant));
        for d in &g.dirs {
            grant(format!("dir {} {}", d.guest, d.mode));
        }
        if !g.env.is_empty() {
            let names: Vec<&str> = g.env.keys().map(String::as_str).collect();
            grant(format!("env {}", names.join(", ")));
        }
        for n in &g.network {
            grant(format!("net {n}"));
        }
        for origin in &g.http {
            grant(format!("http {origin}"));
        }
        if g.dirs.is_empty() && g.env.is_empty() && g.network.is_empty() && g.http.is_empty() {
            lines.push((NO_GRANTS.to_string(), LineKind::NoGrants));
        }
        lines.push((
            format!("stdout {} · stderr {}", g.stdout, g.stderr),
            LineKind::Grant,
        ));
        let l = &spec.limits;
        lines.push((
            format!(
                "{} · {} · {} inst",
                format_size(l.memory),
                humantime::format_duration(l.timeout),
                l.instances
            ),
            LineKind::Limit,
        ));
        let details = g
            .dirs
            .iter()
            .map(|d| format!("dir {} = host {}", d.guest, d.host.display()))
            .collect();
        Card {
            name: name.to_string(),
            placement: spec.placement,
            lines,
            details,
        }
    }
}

/// The cards of the app's modules, in the app's order of modules.
pub fn cards(app: &App) -> Vec<Card> {
    let entry = app.entry();
    app.modules()
        .filter_map(|name| Some(Card::of(name, &app.spec(name)?, entry == Some(name))))
        .collect()
}

/// A link's label: the interface as imported, and the provider's version when it differs
/// (`acme:kv/store@0.1.0 → @0.1.2`), or the provider's interface when the names differ.
pub fn link_label(import: &str, export: &str) -> String {
    if import == export {
        return import.to_string();
    }
    let ((ib, _), (eb, ev)) = (split_version(import), split_version(export));
    match ev {
        Some(v) if ib == eb => format!("{import} → @{v}"),
        _ => format!("{import} → {export}"),
    }
}

/// Modules joined by fused links, each group sorted, groups sorted; modules in no group are
/// left out. A group runs as one component, in one sandbox.
pub fn fused_groups(links: &[LinkInfo]) -> Vec<Vec<String>> {
    let mut group: BTreeMap<&str, usize> = BTreeMap::new();
    let mut groups: Vec<Vec<&str>> = Vec::new();
    for l in links.iter().filter(|l| l.fused) {
        match (
            group.get(l.importer.as_str()).copied(),
            group.get(l.provider.as_str()).copied(),
        ) {
            (Some(a), Some(b)) if a != b => {
                let moved = std::mem::take(&mut groups[b]);
                for m in &moved {
                    group.insert(m, a);
                }
                groups[a].extend(moved);
            }
            (Some(_), Some(_)) => {}
            (Some(a), None) => {
                group.insert(&l.provider, a);
                groups[a].push(&l.provider);
            }
            (None, Some(b)) => {
                group.insert(&l.importer, b);
                groups[b].push(&l.importer);
            }
            (None, None) => {
                group.insert(&l.importer, groups.len());
                group.insert(&l.provider, groups.len());
                groups.push(vec![&l.importer, &l.provider]);
            }
        }
    }
    let mut out: Vec<Vec<String>> = groups
        .into_iter()
        .filter(|g| !g.is_empty())
        .map(|mut g| {
            g.sort_unstable();
            g.into_iter().map(str::to_string).collect()
        })
        .collect();
    out.sort();
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::{DirMode, ModuleSpec};

    #[test]
    fn labels_name_the_interface_and_the_served_version() {
        assert_eq!(
            link_label("acme:kv/store@0.1.0", "acme:kv/store@0.1.0"),
            "acme:kv/store@0.1.0"
        );
        assert_eq!(
            link_label("acme:kv/store@0.1.0", "acme:kv/store@0.1.4"),
            "acme:kv/store@0.1.0 → @0.1.4"
        );
        assert_eq!(link_label("a:b/c", "x:y/z@1.0.0"), "a:b/c → x:y/z@1.0.0");
    }

    #[test]
    fn a_card_names_every_grant_and_no_value() {
        let spec = ModuleSpec::from_file("m.wasm")
            .dir("/srv/data", "/data", DirMode::ReadWrite)
            .env("TOKEN", "s3cret")
            .network("127.0.0.1:5432")
            .http("https://api.example.com");
        let c = Card::of("m", &spec, true);
        let text: Vec<&str> = c.lines.iter().map(|(t, _)| t.as_str()).collect();
        assert_eq!(text[0], "placement isolated · entry");
        assert_eq!(
            &text[1..5],
            [
                "dir /data rw",
                "env TOKEN",
                "net 127.0.0.1:5432",
                "http https://api.example.com"
            ]
        );
        assert!(!text.iter().any(|t| t.contains("s3cret")), "{text:?}");
        assert_eq!(c.details, ["dir /data = host /srv/data"]);
        let bare = Card::of("b", &ModuleSpec::from_file("b.wasm"), false);
        assert!(
            bare.lines
                .contains(&(NO_GRANTS.to_string(), LineKind::NoGrants))
        );
    }
}
