//! `membrane graph`: the app as boxes (modules with their grants and limits) and arrows
//! (links labelled with the interface and version), as Graphviz DOT or Mermaid.

use std::fmt::Write as _;

use crate::app::App;
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
    lines
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
    let uses_host = app.links().iter().any(|l| l.provider == HOST);
    let mut out = String::new();
    match format {
        GraphFormat::Dot => {
            out.push_str(
                "digraph app {\n  rankdir=LR;\n  node [shape=box, fontname=\"monospace\"];\n",
            );
            for name in app.modules() {
                let spec = app.spec(name).expect("every module has a spec");
                let text = describe(name, &spec, entry == Some(name)).join("\\n");
                writeln!(
                    out,
                    "  \"{name}\" [label=\"{}\"];",
                    text.replace('"', "\\\"")
                )
                .unwrap();
            }
            if uses_host {
                writeln!(
                    out,
                    "  \"{HOST}\" [shape=ellipse, label=\"host application\"];"
                )
                .unwrap();
            }
            for l in app.links() {
                writeln!(
                    out,
                    "  \"{}\" -> \"{}\" [label=\"{}\"];",
                    l.importer,
                    l.provider,
                    label(&l.import, &l.export)
                )
                .unwrap();
            }
            out.push_str("}\n");
        }
        GraphFormat::Mermaid => {
            out.push_str("flowchart LR\n");
            for name in app.modules() {
                let spec = app.spec(name).expect("every module has a spec");
                let text = describe(name, &spec, entry == Some(name)).join("<br/>");
                writeln!(
                    out,
                    "  {}[\"{}\"]",
                    mermaid_id(name),
                    text.replace('"', "#quot;")
                )
                .unwrap();
            }
            if uses_host {
                writeln!(out, "  {}([\"host application\"])", mermaid_id(HOST)).unwrap();
            }
            for l in app.links() {
                writeln!(
                    out,
                    "  {} -->|\"{}\"| {}",
                    mermaid_id(&l.importer),
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
