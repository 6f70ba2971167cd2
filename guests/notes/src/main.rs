//! The example app's entry: a note-taking command. It has no grants of its own; it reaches
//! storage and rendering only through the two interfaces the manifest links.

wit_bindgen::generate!({
    path: ["../../wit/acme-kv", "../../wit/acme-text", "../../wit/acme-notes"],
    world: "acme:notes/notes",
    generate_all,
});

use acme::kv::store;
use acme::text::render::{self, Note};
use exports::acme::notes::api::Guest;

struct Notes;

impl Guest for Notes {
    fn add(text: String) -> Result<u32, String> {
        let id = store::get("next-id")
            .and_then(|v| v.parse().ok())
            .unwrap_or(1u32);
        store::set(&format!("note:{id:08}"), &text)?;
        store::set("next-id", &(id + 1).to_string())?;
        Ok(id)
    }

    fn show() -> String {
        let notes: Vec<Note> = store::keys()
            .iter()
            .filter_map(|k| {
                let id = k.strip_prefix("note:")?.parse().ok()?;
                Some(Note {
                    id,
                    text: store::get(k)?,
                })
            })
            .collect();
        render::render_list("Notes", &notes)
    }
}

export!(Notes);

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("add") if args.len() > 1 => match Notes::add(args[1..].join(" ")) {
            Ok(id) => println!("added note {id}"),
            Err(e) => {
                eprintln!("cannot add the note: {e}");
                std::process::exit(1);
            }
        },
        Some("list") | None => print!("{}", Notes::show()),
        _ => {
            eprintln!("usage: notes [add <text> | list]");
            std::process::exit(2);
        }
    }
}
