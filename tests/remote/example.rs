//! examples/notes/remote.toml: the notes app with `render` on another host, as the
//! manifest's comment runs it (a nats-server, `membrane host`, `membrane run`).

use super::host::app_name;
use super::nats::{Nats, nats_server};
use crate::common::*;
use membrane_test_artifacts as guests;

/// The example's manifest in `dir`, with its data there, on the NATS server at `url`.
fn remote_notes(dir: &std::path::Path, url: &str) -> String {
    let text = std::fs::read_to_string(
        std::path::Path::new(guests::ROOT).join("examples/notes/remote.toml"),
    )
    .unwrap()
    .replace(
        "../../guests/target",
        &format!("{}/guests/target", guests::ROOT),
    )
    .replace("nats://127.0.0.1:4222", url)
    .replace("name = \"notes\"", &format!("name = \"{}\"", app_name()));
    std::fs::create_dir_all(dir.join("data")).unwrap();
    write_manifest(dir, &text).to_str().unwrap().to_string()
}

#[test]
fn the_notes_example_renders_on_another_host() {
    let Some(_) = nats_server() else { return };
    let nats = Nats::start();
    let tmp = tempfile::tempdir().unwrap();
    let m = remote_notes(tmp.path(), &nats.url);
    // Drawing it needs no NATS server: the remote box is dashed.
    let o = membrane(&["graph", &m]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("placement remote"), "{}", stdout(&o));
    assert!(stdout(&o).contains("style=dashed"), "{}", stdout(&o));
    // Without a host, the entry's call of `render` fails, typed.
    let o = membrane(&["run", &m, "--", "add", "buy milk"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = membrane(&["run", &m, "--", "list"]);
    assert!(!o.status.success(), "{}", stdout(&o));
    let mut host = super::host_proc(&["host", &m, "--modules", "render"]);
    let o = membrane(&["run", &m, "--", "list"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("│   1. buy milk │"), "{}", stdout(&o));
    assert!(host.stop().success());
}
