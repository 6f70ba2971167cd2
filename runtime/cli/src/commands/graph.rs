//! `membrane graph`: the app as boxes (modules with their placement, grants and limits) and
//! arrows (links labelled with the interface and version), as Graphviz DOT or Mermaid. The
//! boxes say what the admin page's do: both draw the core's cards (`membrane_core::card`).
//! Modules joined by fused links (`placement = "fused"` on both sides) are drawn inside one
//! box: they run as one component, in one sandbox, with one fate.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use membrane_core::card::{self, Card};
use membrane_core::names::HOST;

use crate::config::config_for;
use crate::membrane::{App, Manifest, Placement, Runtime};
use crate::output::out;
use crate::progress;

/// Print the app as a graph: modules with their grants and limits, links between them.
#[derive(clap::Args)]
pub struct Args {
    /// The app's manifest, or a directory holding its membrane.toml.
    #[arg(default_value = "membrane.toml")]
    manifest: PathBuf,
    /// Output format.
    #[arg(long, value_enum, default_value = "dot")]
    format: Format,
}

/// The output format.
#[derive(Clone, Copy, clap::ValueEnum)]
enum Format {
    /// Graphviz DOT (`dot -Tsvg`).
    Dot,
    /// Mermaid flowchart.
    Mermaid,
}

/// Runs `membrane graph`.
pub async fn run(a: Args) -> anyhow::Result<ExitCode> {
    let m = Manifest::from_file(&a.manifest)?;
    // Drawing the app needs no NATS server.
    let mut config = config_for(&m.app);
    config.connect_nats = false;
    let app = progress::load(&Runtime::new(config)?, m.app).await?;
    out(&render(&app, a.format))?;
    Ok(ExitCode::SUCCESS)
}

/// A box's text: the module's name, then its card's lines.
fn lines(card: &Card) -> Vec<String> {
    std::iter::once(card.name.clone())
        .chain(card.lines.iter().map(|(text, _)| text.clone()))
        .collect()
}

/// Renders the app's modules and links.
fn render(app: &App, format: Format) -> String {
    let cards: BTreeMap<String, Card> = card::cards(app)
        .into_iter()
        .map(|c| (c.name.clone(), c))
        .collect();
    let links = app.links();
    let uses_host = links.iter().any(|l| l.provider == HOST);
    let groups = card::fused_groups(&links);
    let grouped = |name: &str| groups.iter().any(|g| g.iter().any(|m| m == name));
    let mut out = String::new();
    match format {
        Format::Dot => {
            out.push_str(
                "digraph app {\n  rankdir=LR;\n  node [shape=box, fontname=\"monospace\"];\n",
            );
            let node = |out: &mut String, name: &str, indent: &str| {
                let Some(c) = cards.get(name) else { return };
                let text = lines(c).join("\\n");
                // A remote module's box is dashed: it runs on other hosts.
                let remote = c.placement == Placement::Remote;
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
                    "  subgraph cluster_fused_{i} {{\n    label=\"{}\";\n    style=\"rounded,dashed\";",
                    card::FUSED
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
                    card::link_label(&l.import, &l.export),
                    if l.fused { ", style=dashed" } else { "" }
                )
                .unwrap();
            }
            out.push_str("}\n");
        }
        Format::Mermaid => {
            out.push_str("flowchart LR\n");
            let node = |out: &mut String, name: &str, indent: &str| {
                let Some(c) = cards.get(name) else { return };
                let text = lines(c).join("<br/>");
                // A remote module is a rounded box (a stadium): it runs on other hosts.
                let (open, close) = if c.placement == Placement::Remote {
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
                writeln!(out, "  subgraph fused_{i}[\"{}\"]", card::FUSED).unwrap();
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
                    card::link_label(&l.import, &l.export),
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
