//! The app as inline SVG: a box per module (name, placement, grants, key limits and a live
//! status line) and an arrow per importer and provider, labelled with the interfaces and
//! their versions. Made on the server; [`super::layout`] decides where things go.
//!
//! Text is measured, not rendered, here: the page asks for a monospace font, whose glyphs
//! are about 0.6 em wide everywhere, and boxes are sized for 0.62 em so text fits whichever
//! monospace font the browser picks. Lines longer than [`MAX_CHARS`] are cut with an
//! ellipsis; each box's `<title>` (a tooltip) has them whole.
//!
//! Hooks for the page's script: every module's group has `data-module="NAME"` and classes
//! `state-…` and `health-…`, and its status line has `data-field="summary"`.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use super::layout::{self, EdgeIn, Point, Size};
use super::markup::{escape, truncate};
use crate::app::App;
use crate::names::HOST;
use crate::status::ModuleStatus;
use crate::supervisor::Health;
use membrane_core::card::{self, Card, LineKind};

/// Longest line of a box or a label, in characters.
const MAX_CHARS: usize = 44;
/// Font sizes (px) and the advance assumed per character.
const TITLE_PX: f64 = 14.0;
const TEXT_PX: f64 = 12.0;
const LABEL_PX: f64 = 11.0;
const ADVANCE: f64 = 0.62;
/// Line heights (px).
const TITLE_LINE: f64 = 20.0;
const TEXT_LINE: f64 = 16.0;
const LABEL_LINE: f64 = 14.0;
/// Padding inside a box and around a label.
const PAD_X: f64 = 10.0;
const PAD_Y: f64 = 8.0;
const LABEL_PAD: f64 = 4.0;
const MIN_BOX: f64 = 140.0;

/// One line of text in a box, with its CSS class.
struct Line {
    text: String,
    class: &'static str,
}

/// What a box shows: a module's card, its live status, and how it is styled.
struct Tile {
    /// The module's name, or `None` for the host application.
    module: Option<String>,
    title: String,
    lines: Vec<Line>,
    /// The tooltip: every line whole, and details left out of the box.
    tooltip: Vec<String>,
    classes: String,
}

impl Tile {
    fn size(&self) -> Size {
        let title = self.title.chars().count().min(MAX_CHARS) as f64 * TITLE_PX * ADVANCE;
        let text = self
            .lines
            .iter()
            .map(|l| l.text.chars().count().min(MAX_CHARS) as f64 * TEXT_PX * ADVANCE)
            .fold(0.0, f64::max);
        Size {
            width: (title.max(text) + 2.0 * PAD_X).max(MIN_BOX).ceil(),
            height: 2.0 * PAD_Y + TITLE_LINE + TEXT_LINE * self.lines.len() as f64,
        }
    }
}

/// The status line of a box: `gen 2 · probation · healthy`. The page's script writes the
/// same from `/status`.
pub(crate) fn summary(s: &ModuleStatus) -> String {
    format!(
        "gen {} · {} · {}",
        s.generation,
        s.state.as_str(),
        health(&s.health)
    )
}

/// The circuit's state as `/status` names it.
pub(crate) fn health(h: &Health) -> &'static str {
    h.as_str()
}

fn module_box(c: &Card, status: Option<&ModuleStatus>) -> Tile {
    let mut lines: Vec<Line> = c
        .lines
        .iter()
        .map(|(text, kind)| Line {
            text: text.clone(),
            class: match kind {
                LineKind::Placement => "placement",
                LineKind::Grant => "grant",
                LineKind::NoGrants => "none",
                LineKind::Limit => "limit",
            },
        })
        .collect();
    // The tooltip has every line whole, and what the box leaves out for its length.
    let tooltip = std::iter::once(c.name.clone())
        .chain(lines.iter().map(|l| l.text.clone()))
        .chain(c.details.iter().cloned())
        .collect();
    let (live, classes) = match status {
        Some(s) => (
            summary(s),
            format!(
                "node module state-{} health-{}",
                s.state.as_str(),
                health(&s.health)
            ),
        ),
        None => ("–".to_string(), "node module".to_string()),
    };
    lines.push(Line {
        text: live,
        class: "live",
    });
    Tile {
        module: Some(c.name.clone()),
        title: c.name.clone(),
        lines,
        tooltip,
        classes,
    }
}

fn host_box() -> Tile {
    let text = "interfaces the embedder provides".to_string();
    Tile {
        module: None,
        title: "host application".into(),
        tooltip: vec!["host application".into(), text.clone()],
        lines: vec![Line {
            text,
            class: "none",
        }],
        classes: "node host".into(),
    }
}

/// The app's graph as an `<svg>` element.
pub(crate) fn svg(app: &App, status: &BTreeMap<String, ModuleStatus>) -> String {
    let mut boxes: Vec<Tile> = card::cards(app)
        .iter()
        .map(|c| module_box(c, status.get(&c.name)))
        .collect();
    let index: BTreeMap<String, usize> = boxes
        .iter()
        .enumerate()
        .filter_map(|(i, b)| Some((b.module.clone()?, i)))
        .collect();
    // One edge per importer and provider, a label line per interface.
    let mut pairs: BTreeMap<(usize, usize), Vec<String>> = BTreeMap::new();
    let mut host = None;
    for l in app.links() {
        let Some(&from) = index.get(&l.importer) else {
            continue;
        };
        let to = match index.get(&l.provider) {
            Some(&to) => to,
            None if l.provider == HOST => *host.get_or_insert_with(|| {
                boxes.push(host_box());
                boxes.len() - 1
            }),
            None => continue,
        };
        pairs
            .entry((from, to))
            .or_default()
            .push(card::link_label(&l.import, &l.export));
    }
    let labels: Vec<(usize, usize, Vec<String>)> = pairs
        .into_iter()
        .map(|((from, to), mut lines)| {
            lines.sort();
            lines.dedup();
            (from, to, lines)
        })
        .collect();
    let sizes: Vec<Size> = boxes.iter().map(Tile::size).collect();
    let edges: Vec<EdgeIn> = labels
        .iter()
        .map(|(from, to, lines)| EdgeIn {
            from: *from,
            to: *to,
            label: label_size(lines),
        })
        .collect();
    let d = layout::layout(&sizes, &edges);
    let mut out = String::new();
    let (w, h) = (d.width.ceil(), d.height.ceil());
    let _ = write!(
        out,
        r#"<svg class="graph" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {w} {h}" width="{w}" height="{h}" role="img" aria-label="the app's modules and links">"#
    );
    out.push_str(
        r#"<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="8" markerHeight="8" orient="auto-start-reverse"><path d="M0 0L10 5L0 10z"/></marker></defs>"#,
    );
    for ((from, to, lines), (route, e)) in labels.iter().zip(d.edges.iter().zip(&edges)) {
        let data = |i: usize| escape(boxes[i].module.as_deref().unwrap_or(HOST));
        let _ = write!(
            out,
            r#"<g class="edge" data-from="{}" data-to="{}"><title>{}</title><path d="{}" marker-end="url(#arrow)"/>"#,
            data(*from),
            data(*to),
            escape(&lines.join("\n")),
            path(&route.points)
        );
        let (x, y) = (
            route.label.x - e.label.width / 2.0,
            route.label.y - e.label.height / 2.0,
        );
        let _ = write!(
            out,
            r#"<rect class="label" x="{x:.1}" y="{y:.1}" width="{:.1}" height="{:.1}" rx="3"/>"#,
            e.label.width, e.label.height
        );
        for (i, line) in lines.iter().enumerate() {
            let ty = y + LABEL_PAD + LABEL_LINE * (i as f64 + 0.75);
            let _ = write!(
                out,
                r#"<text class="label" x="{:.1}" y="{ty:.1}" text-anchor="middle">{}</text>"#,
                route.label.x,
                escape(&truncate(line, MAX_CHARS))
            );
        }
        out.push_str("</g>");
    }
    for (b, r) in boxes.iter().zip(&d.nodes) {
        let data = b
            .module
            .as_deref()
            .map(|m| format!(r#" data-module="{}""#, escape(m)))
            .unwrap_or_default();
        let _ = write!(
            out,
            r#"<g class="{}"{data} transform="translate({:.1} {:.1})"><title>{}</title><rect width="{:.1}" height="{:.1}" rx="6"/>"#,
            b.classes,
            r.x,
            r.y,
            escape(&b.tooltip.join("\n")),
            r.width,
            r.height
        );
        let _ = write!(
            out,
            r#"<text class="name" x="{PAD_X}" y="{:.1}">{}</text>"#,
            PAD_Y + TITLE_LINE * 0.75,
            escape(&truncate(&b.title, MAX_CHARS))
        );
        for (i, line) in b.lines.iter().enumerate() {
            let field = if line.class == "live" {
                r#" data-field="summary""#
            } else {
                ""
            };
            let _ = write!(
                out,
                r#"<text class="{}"{field} x="{PAD_X}" y="{:.1}">{}</text>"#,
                line.class,
                PAD_Y + TITLE_LINE + TEXT_LINE * (i as f64 + 0.75),
                escape(&truncate(&line.text, MAX_CHARS))
            );
        }
        out.push_str("</g>");
    }
    out.push_str("</svg>");
    out
}

fn label_size(lines: &[String]) -> Size {
    let chars = lines
        .iter()
        .map(|l| l.chars().count().min(MAX_CHARS))
        .max()
        .unwrap_or(0);
    Size {
        width: (chars as f64 * LABEL_PX * ADVANCE + 2.0 * LABEL_PAD).ceil(),
        height: LABEL_LINE * lines.len() as f64 + 2.0 * LABEL_PAD,
    }
}

/// The SVG path through `points`: the curves [`layout`] placed the labels on.
fn path(points: &[Point]) -> String {
    let mut d = String::new();
    if let Some(p) = points.first() {
        let _ = write!(d, "M{:.1} {:.1}", p.x, p.y);
    }
    for w in points.windows(2) {
        let (a, b) = (w[0], w[1]);
        if (a.x - b.x).abs() < 0.05 {
            let _ = write!(d, "L{:.1} {:.1}", b.x, b.y);
        } else {
            let ym = (a.y + b.y) / 2.0;
            let _ = write!(
                d,
                "C{:.1} {ym:.1} {:.1} {ym:.1} {:.1} {:.1}",
                a.x, b.x, b.x, b.y
            );
        }
    }
    d
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn straight_stretches_are_lines_and_others_curves() {
        let p = |x, y| Point { x, y };
        assert_eq!(
            path(&[p(0.0, 0.0), p(0.0, 10.0), p(20.0, 30.0)]),
            "M0.0 0.0L0.0 10.0C0.0 20.0 20.0 20.0 20.0 30.0"
        );
    }
}
