//! The routed module of `examples/web`: notes over HTTP. It has no grants of its own; every
//! request reaches storage (`acme:kv/store`) and rendering (`acme:text/render`) through the
//! two links of its manifest, so one request crosses three isolated modules.
//!
//! | request | answer |
//! |---|---|
//! | `GET /` | the notes, rendered by the renderer |
//! | `POST /notes` (the body is the note) | 201 `added <id>` |
//! | `GET /notes/<id>` | the note's text, or 404 |

wit_bindgen::generate!({
    path: ["../../wit/acme-kv", "../../wit/acme-text", "../../wit/acme-web"],
    world: "acme:web/web",
    generate_all,
});

use acme::kv::store;
use acme::text::render::{self, Note};
use wasip2::exports::http::incoming_handler::Guest;
use wasip2::http::types::{
    Fields, IncomingRequest, Method, OutgoingBody, OutgoingResponse, ResponseOutparam,
};

/// Notes longer than this are refused (the module's `limits.body` bounds the request too).
const MAX_NOTE: usize = 64 << 10;

struct Web;

fn respond(out: ResponseOutparam, status: u16, body: &str) {
    let headers = Fields::new();
    let _ = headers.append("content-type", b"text/plain; charset=utf-8");
    let response = OutgoingResponse::new(headers);
    let _ = response.set_status_code(status);
    let Ok(body_out) = response.body() else {
        return;
    };
    ResponseOutparam::set(out, Ok(response));
    if let Ok(stream) = body_out.write() {
        // blocking-write-and-flush takes at most 4096 bytes at a time.
        for chunk in body.as_bytes().chunks(4096) {
            if stream.blocking_write_and_flush(chunk).is_err() {
                return;
            }
        }
    }
    let _ = OutgoingBody::finish(body_out, None);
}

fn read_body(request: &IncomingRequest) -> Option<String> {
    let body = request.consume().ok()?;
    let mut data = Vec::new();
    {
        let stream = body.stream().ok()?;
        loop {
            match stream.blocking_read(16 << 10) {
                Ok(chunk) => data.extend_from_slice(&chunk),
                Err(wasip2::io::streams::StreamError::Closed) => break,
                Err(_) => return None,
            }
            if data.len() > MAX_NOTE {
                return None;
            }
        }
    }
    String::from_utf8(data).ok()
}

fn add(text: &str) -> Result<u32, String> {
    let id = store::get("next-id")
        .and_then(|v| v.parse().ok())
        .unwrap_or(1u32);
    store::set(&format!("note:{id:08}"), text)?;
    store::set("next-id", &(id + 1).to_string())?;
    Ok(id)
}

fn list() -> String {
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
    render::render_list("notes", &notes)
}

impl Guest for Web {
    fn handle(request: IncomingRequest, out: ResponseOutparam) {
        let full = request.path_with_query().unwrap_or_default();
        let path = full.split('?').next().unwrap_or("");
        let method = request.method();
        match (path, &method) {
            ("/", Method::Get) => respond(out, 200, &list()),
            ("/notes", Method::Post) => match read_body(&request) {
                Some(text) if !text.trim().is_empty() => match add(text.trim()) {
                    Ok(id) => respond(out, 201, &format!("added {id}\n")),
                    Err(e) => respond(out, 500, &format!("cannot store the note: {e}\n")),
                },
                _ => respond(
                    out,
                    400,
                    "send the note as a UTF-8 body of at most 64 KiB\n",
                ),
            },
            (p, Method::Get) if p.starts_with("/notes/") => {
                let note = p["/notes/".len()..]
                    .parse::<u32>()
                    .ok()
                    .and_then(|id| store::get(&format!("note:{id:08}")));
                match note {
                    Some(text) => respond(out, 200, &format!("{text}\n")),
                    None => respond(out, 404, "no such note\n"),
                }
            }
            ("/" | "/notes", _) => respond(out, 405, "method not allowed\n"),
            (p, _) if p.starts_with("/notes/") => respond(out, 405, "method not allowed\n"),
            _ => respond(out, 404, "not found\n"),
        }
    }
}

wasip2::http::proxy::export!(Web);
