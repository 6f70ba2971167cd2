//! Renders notes as text. Pure computation: this module is granted nothing.

wit_bindgen::generate!({ path: "../../wit/acme-text", world: "renderer" });

use exports::acme::text::render::{Guest, Note};

struct Render;

impl Guest for Render {
    fn render_list(title: String, notes: Vec<Note>) -> String {
        let lines: Vec<String> = notes
            .iter()
            .map(|n| format!("{:>3}. {}", n.id, n.text))
            .collect();
        let width = lines
            .iter()
            .map(|l| l.chars().count())
            .chain([title.chars().count()])
            .max()
            .unwrap_or(0);
        let bar = "─".repeat(width + 2);
        let mut out = format!("┌{bar}┐\n│ {title:<width$} │\n├{bar}┤\n");
        if lines.is_empty() {
            out += &format!("│ {:<width$} │\n", "(no notes)");
        }
        for l in lines {
            out += &format!("│ {l:<width$} │\n");
        }
        out += &format!("└{bar}┘\n");
        out
    }
}

export!(Render);
