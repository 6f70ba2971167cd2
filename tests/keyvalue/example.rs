//! The notes examples on wasi:keyvalue (examples/notes/state.toml, state-nats.toml) as
//! their comments run them, and `membrane serve` killed (-9) in the middle of writes.

use std::path::Path;

use membrane_test_artifacts as guests;

use super::*;
use crate::serve::cli::start_with;

/// Example `file` of examples/notes in `dir`, its paths made absolute, `url` for NATS.
fn example(dir: &Path, file: &str, url: &str) -> String {
    let text = std::fs::read_to_string(Path::new(guests::ROOT).join("examples/notes").join(file))
        .unwrap()
        .replace(
            "../../guests/target",
            &format!("{}/guests/target", guests::ROOT),
        )
        .replace("nats://127.0.0.1:4222", url)
        .replace(
            "name = \"notes\"",
            &format!("name = \"{}\"", crate::remote::app_name()),
        );
    write_manifest(dir, &text).to_str().unwrap().to_string()
}

fn run(m: &str, args: &[&str]) -> String {
    let mut all = vec!["run", m, "--"];
    all.extend_from_slice(args);
    let o = membrane(&all);
    assert!(o.status.success(), "{}", stderr(&o));
    stdout(&o)
}

#[test]
fn the_notes_example_keeps_its_notes_in_a_bucket() {
    let tmp = tempfile::tempdir().unwrap();
    let m = example(tmp.path(), "state.toml", "");
    run(&m, &["add", "buy milk"]);
    run(&m, &["add", "call mom"]);
    // Another process, the same file.
    let list = run(&m, &["list"]);
    assert!(list.contains("1. buy milk"), "{list}");
    assert!(list.contains("2. call mom"), "{list}");
    assert!(tmp.path().join("data/state.redb").is_file());
}

/// state.toml with `notes` and `store` fused into one component: the composition's
/// `wasi:keyvalue` import reaches the store directly, under the grants both share.
#[test]
fn fused_modules_reach_the_store_directly() {
    let tmp = tempfile::tempdir().unwrap();
    let m = example(tmp.path(), "state.toml", "");
    let grants =
        r#"grants = { stdout = "inherit", stderr = "inherit", keyvalue = { notes = "rw" } }"#;
    let text = std::fs::read_to_string(&m)
        .unwrap()
        .replace(
            r#"grants = { stdout = "inherit", stderr = "inherit" }"#,
            grants,
        )
        .replace(r#"grants = { keyvalue = { notes = "rw" } }"#, grants)
        .replace(
            "[modules.store]\n",
            "[modules.store]\nplacement = \"fused\"\n",
        )
        .replace(
            "[modules.notes]\n",
            "[modules.notes]\nplacement = \"fused\"\n",
        );
    std::fs::write(&m, text).unwrap();
    let o = membrane(&["graph", &m]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("fused"), "{}", stdout(&o));
    run(&m, &["add", "fused"]);
    let list = run(&m, &["list"]);
    assert!(list.contains("1. fused"), "{list}");
    // The same file an isolated store reads.
    let isolated = example(tmp.path(), "state.toml", "");
    assert!(run(&isolated, &["list"]).contains("1. fused"));
}

#[test]
fn the_notes_example_on_nats_shares_its_notes_between_hosts() {
    let Some(_) = nats_server() else { return };
    let nats = Nats::with_jetstream();
    let tmp = tempfile::tempdir().unwrap();
    let m = example(tmp.path(), "state-nats.toml", &nats.url);
    let mut a = crate::remote::host_proc(&["host", &m, "--modules", "store"]);
    let mut b = crate::remote::host_proc(&["host", &m, "--modules", "store"]);
    for note in ["buy milk", "call mom", "water plants"] {
        run(&m, &["add", note]);
    }
    // Whichever host answers, the notes are the same; with one host gone, still.
    assert!(a.stop().success());
    let list = run(&m, &["list"]);
    for (i, note) in ["buy milk", "call mom", "water plants"].iter().enumerate() {
        assert!(list.contains(&format!("{}. {note}", i + 1)), "{list}");
    }
    assert!(b.stop().success());
}

/// `membrane serve` with the web example's routes on the embedded store, killed with
/// SIGKILL while a client adds notes one after another: every note it acknowledged (201)
/// is there after a restart, and /status and /metrics show the bucket.
#[test]
fn serve_killed_mid_writes_loses_no_acknowledged_write() {
    let tmp = tempfile::tempdir().unwrap();
    let manifest = write_manifest(
        tmp.path(),
        &format!(
            "[app.http]\nroutes = {{ \"/\" = \"web\" }}\n\
             [app.admin]\nlisten = \"127.0.0.1:0\"\n\
             [app.keyvalue]\npath = \"state.redb\"\n\
             [app.keyvalue.buckets]\nnotes = {{ keys = 10_000 }}\n\
             [modules.web]\ncomponent = {:?}\n\
             links = {{ \"acme:kv/store\" = \"store\", \"acme:text/render\" = \"render\" }}\n\
             [modules.store]\ncomponent = {:?}\ngrants = {{ keyvalue = {{ notes = \"rw\" }} }}\n\
             [modules.render]\ncomponent = {:?}\n",
            guests::WEB,
            guests::BUCKET_STORE,
            guests::RENDER
        ),
    );
    let rt = tokio::runtime::Runtime::new().unwrap();
    let mut server = start_with(&manifest, &[], &[]);
    let addr = server.addr;
    let (acked_tx, acked_rx) = std::sync::mpsc::channel::<(u32, String)>();
    let writer = rt.spawn(async move {
        for i in 0.. {
            let text = format!("note {i}");
            let req = crate::serve::request("POST", "/notes", text.clone());
            match crate::serve::send(addr, req).await {
                Ok(r) if r.status == 201 => {
                    let id = r
                        .body
                        .trim()
                        .strip_prefix("added ")
                        .unwrap()
                        .parse()
                        .unwrap();
                    if acked_tx.send((id, text)).is_err() {
                        return;
                    }
                }
                Ok(r) => panic!("{} {}", r.status, r.body),
                // The server is gone.
                Err(_) => return,
            }
        }
    });
    let mut acked: Vec<(u32, String)> = acked_rx.iter().take(40).collect();
    server.child.kill().unwrap();
    server.child.wait().unwrap();
    rt.block_on(writer).unwrap();
    acked.extend(acked_rx.try_iter());

    let server = start_with(&manifest, &[], &[]);
    let keys = rt.block_on(async {
        for (id, text) in &acked {
            let r = crate::serve::get(server.addr, &format!("/notes/{id}")).await;
            assert_eq!((r.status, r.body.trim()), (200, text.as_str()), "note {id}");
        }
        let admin = server.admin.expect("an admin listener");
        let status = crate::serve::get(admin, "/status").await;
        let v: serde_json::Value = serde_json::from_str(&status.body).unwrap();
        let notes = &v["buckets"]["notes"];
        // The notes and the next id, at least.
        assert!(
            notes["keys"].as_u64().unwrap() > acked.len() as u64,
            "{notes}"
        );
        assert!(notes["bytes"].as_u64().unwrap() > 0, "{notes}");
        assert_eq!(notes["keys_limit"], 10_000, "{notes}");
        let metrics = crate::serve::get(admin, "/metrics").await.body;
        let keys = crate::serve::sample(&metrics, "membrane_bucket_keys{bucket=\"notes\"}");
        assert_eq!(keys, notes["keys"].as_f64(), "{metrics}");
        let page = crate::serve::get(admin, "/").await.body;
        assert!(page.contains(r#"<tr data-bucket="notes">"#), "{page}");
        notes["keys"].as_u64().unwrap()
    });
    // The page's script fills the bucket's cells from /status.
    let Some(mut b) = crate::serve::browser::Browser::launch() else {
        return;
    };
    b.navigate(&format!("http://{}/", server.admin.unwrap()));
    let cell =
        r#"document.querySelector('tr[data-bucket="notes"] [data-field="keys"]').textContent"#;
    crate::common::eventually_blocking("the page shows the bucket's keys", || {
        b.eval(cell) == serde_json::json!(keys.to_string())
    });
}
