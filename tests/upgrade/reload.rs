//! `App::reload`: a manifest read again; only what changed gets a new generation.

use std::path::Path;

use membrane::ErrorKind;

use super::hello;
use crate::common::{guests, runtime, write_manifest};

/// A manifest of `front` and `greet`, the provider read from `greet.wasm` in `dir`.
fn manifest(dir: &Path, front_instances: usize, extra: &str) -> std::path::PathBuf {
    write_manifest(
        dir,
        &format!(
            r#"
[modules.front]
component = {front:?}
links = {{ "acme:greet/api" = "greet", "acme:greet/tally" = "greet" }}
limits = {{ instances = {front_instances} }}

[modules.greet]
component = "greet.wasm"
{extra}
"#,
            front = guests::GREET_FRONT
        ),
    )
}

#[tokio::test]
async fn a_reload_upgrades_only_the_modules_that_changed() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(guests::GREET_V1, dir.path().join("greet.wasm")).unwrap();
    let path = manifest(dir.path(), 1, "");
    let app = runtime().load(&path).await.unwrap();
    assert_eq!(app.manifest_path(), Some(path.as_path()));
    assert_eq!(hello(&app).await.unwrap(), "v1 hello x");

    // Nothing changed.
    let r = app.reload(&path).await.unwrap();
    assert!(r.upgraded.is_empty());
    assert_eq!(r.unchanged, ["front", "greet"]);

    // New component bytes at the same path.
    std::fs::copy(guests::GREET_V2, dir.path().join("greet.wasm")).unwrap();
    let r = app.reload(&path).await.unwrap();
    let names: Vec<&str> = r.upgraded.iter().map(|u| u.module.as_str()).collect();
    assert_eq!(names, ["greet"]);
    assert_eq!(hello(&app).await.unwrap(), "v2 hello x");

    // A changed limit of the importer: raised, so it needs consent.
    let path = manifest(dir.path(), 2, "");
    let e = app.reload(&path).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Denied);
    assert_eq!(e.key(), Some("modules.front.limits.instances"));
    let wider = membrane::UpgradeOptions::new().accept_wider_grants();
    let r = app.reload_with(&path, wider).await.unwrap();
    let names: Vec<&str> = r.upgraded.iter().map(|u| u.module.as_str()).collect();
    assert_eq!(names, ["front"]);
    assert_eq!(app.status()["front"].generation, 2);
    assert_eq!(hello(&app).await.unwrap(), "v2 hello x");
}

#[tokio::test]
async fn a_bad_reload_changes_nothing_and_says_where() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(guests::GREET_V1, dir.path().join("greet.wasm")).unwrap();
    let path = manifest(dir.path(), 1, "");
    let app = runtime().load(&path).await.unwrap();

    // An unknown key: refused with its line.
    let bad = manifest(
        dir.path(),
        1,
        "[modules.greet.upgrade]\nrollback_ratio = 3.0\n",
    );
    let e = app.reload(&bad).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Manifest);
    assert_eq!(e.key(), Some("modules.greet.upgrade.rollback_ratio"));
    assert!(e.location().is_some());

    // A module added.
    let added = manifest(
        dir.path(),
        1,
        &format!("[modules.extra]\ncomponent = {:?}\n", guests::HELLO),
    );
    let e = app.reload(&added).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Manifest);
    assert!(membrane::chain(&e).contains("extra"));

    // A version the gate refuses.
    std::fs::copy(guests::GREET_DROPPED, dir.path().join("greet.wasm")).unwrap();
    let path = manifest(dir.path(), 1, "");
    let e = app.reload(&path).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Link);

    let st = app.status();
    assert_eq!((st["front"].generation, st["greet"].generation), (1, 1));
    assert_eq!(hello(&app).await.unwrap(), "v1 hello x");
}
