//! `membrane graph`: the app as boxes (modules with their placement, grants and limits) and
//! arrows (links labelled with the interface and version), as Graphviz DOT or Mermaid.
//! Modules joined by fused links (`placement = "fused"` on both sides) are drawn inside one
//! box: they run as one component, in one sandbox, with one fate.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use crate::app::App;
use crate::link::LinkInfo;
use crate::names::HOST;
use crate::spec::{ModuleSpec, OutputRoute};
use crate::units::format_size;

/// The output format of [`render`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GraphFormat {
    /// Graphviz DOT (`dot -Tsvg`).
    Dot,
    /// A Mermaid flowchart.
    Mermaid,
}

/// Lines describing a module: its name, grants and limits. Environment values are left
/// out: they may be secrets.
fn describe(name: &str, spec: &ModuleSpec, entry: bool) -> Vec<String> {
    let mut lines = vec![if entry {
        format!("{name} (entry)")
    } else {
        name.to_string()
    }];
    let g = &spec.grants;
    for d in &g.dirs {
        lines.push(format!(
            "dir {} -> {} ({})",
            d.host.display(),
            d.guest,
            d.mode
        ));
    }
    if !g.env.is_empty() {
        lines.push(format!(
            "env {}",
            g.env.keys().cloned().collect::<Vec<_>>().join(", ")
        ));
    }
    for n in &g.network {
        lines.push(format!("net {n}"));
    }
    for (stream, route) in [("stdout", g.stdout), ("stderr", g.stderr)] {
        if route != OutputRoute::Log {
            lines.push(format!("{stream} {route}"));
        }
    }
    if lines.len() == 1 {
        lines.push("no grants".into());
    }
    lines.push(format!(
        "memory {}, timeout {}",
        format_size(spec.limits.memory),
        humantime::format_duration(spec.limits.timeout)
    ));
    lines.push(format!("placement {}", spec.placement));
    lines
}

/// The title of a box of fused modules.
const FUSED: &str = "fused: one component, one Store, one memory limit, one fate";

/// Modules joined by fused links, each group sorted, groups in order of their first
/// module; modules in no group are left out.
fn fused_groups(links: &[LinkInfo]) -> Vec<Vec<String>> {
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

fn label(import: &str, export: &str) -> String {
    if import == export {
        import.to_string()
    } else {
        format!("{import} (served by {export})")
    }
}

/// Renders the app's modules and links.
pub fn render(app: &App, format: GraphFormat) -> String {
    let entry = app.entry();
    let links = app.links();
    let uses_host = links.iter().any(|l| l.provider == HOST);
    let groups = fused_groups(&links);
    let grouped = |name: &str| groups.iter().any(|g| g.iter().any(|m| m == name));
    let mut out = String::new();
    match format {
        GraphFormat::Dot => {
            out.push_str(
                "digraph app {\n  rankdir=LR;\n  node [shape=box, fontname=\"monospace\"];\n",
            );
            let node = |out: &mut String, name: &str, indent: &str| {
                let spec = app.spec(name).expect("every module has a spec");
                let text = describe(name, &spec, entry == Some(name)).join("\\n");
                // A remote module's box is dashed: it runs on other hosts.
                let remote = spec.placement == crate::spec::Placement::Remote;
                writeln!(
                    out,
                    "{indent}\"{name}\" [label=\"{}\"{}];",
                    text.replace('"', "\\\""),
                    if remote { ", style=dashed" } else { "" }
                )
                .unwrap();
            };
            for name in app.modules().filter(|n| !grouped(n)) {
                node(&mut out, name, "  ");
            }
            for (i, group) in groups.iter().enumerate() {
                writeln!(
                    out,
                    "  subgraph cluster_fused_{i} {{\n    label=\"{FUSED}\";\n    style=\"rounded,dashed\";"
                )
                .unwrap();
                for name in group {
                    node(&mut out, name, "    ");
                }
                out.push_str("  }\n");
            }
            if uses_host {
                writeln!(
                    out,
                    "  \"{HOST}\" [shape=ellipse, label=\"host application\"];"
                )
                .unwrap();
            }
            for l in &links {
                writeln!(
                    out,
                    "  \"{}\" -> \"{}\" [label=\"{}\"{}];",
                    l.importer,
                    l.provider,
                    label(&l.import, &l.export),
                    if l.fused { ", style=dashed" } else { "" }
                )
                .unwrap();
            }
            out.push_str("}\n");
        }
        GraphFormat::Mermaid => {
            out.push_str("flowchart LR\n");
            let node = |out: &mut String, name: &str, indent: &str| {
                let spec = app.spec(name).expect("every module has a spec");
                let text = describe(name, &spec, entry == Some(name)).join("<br/>");
                // A remote module is a rounded box (a stadium): it runs on other hosts.
                let (open, close) = if spec.placement == crate::spec::Placement::Remote {
                    ("([", "])")
                } else {
                    ("[", "]")
                };
                writeln!(
                    out,
                    "{indent}{}{open}\"{}\"{close}",
                    mermaid_id(name),
                    text.replace('"', "#quot;")
                )
                .unwrap();
            };
            for name in app.modules().filter(|n| !grouped(n)) {
                node(&mut out, name, "  ");
            }
            for (i, group) in groups.iter().enumerate() {
                writeln!(out, "  subgraph fused_{i}[\"{FUSED}\"]").unwrap();
                for name in group {
                    node(&mut out, name, "    ");
                }
                out.push_str("  end\n");
            }
            if uses_host {
                writeln!(out, "  {}([\"host application\"])", mermaid_id(HOST)).unwrap();
            }
            for l in &links {
                writeln!(
                    out,
                    "  {} {}|\"{}\"| {}",
                    mermaid_id(&l.importer),
                    if l.fused { "-.->" } else { "-->" },
                    label(&l.import, &l.export),
                    mermaid_id(&l.provider)
                )
                .unwrap();
            }
        }
    }
    out
}

/// Mermaid ids cannot contain '-'; module names are otherwise safe.
fn mermaid_id(name: &str) -> String {
    format!("m_{}", name.replace('-', "_"))
}
