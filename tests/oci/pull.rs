//! Push, then load by reference: through `membrane push` and `membrane call`, and through
//! the library; pulled once, and a pinned component loads from the cache with the registry
//! down; an unpinned one then fails naming the reference and the address.

use membrane::ErrorKind;
use membrane::oci::OciErrorKind;

use super::registry::Registry;
use super::*;
use crate::common::{assert_clean_failure, guests, stderr, stdout};

#[tokio::test]
async fn a_pushed_component_loads_and_answers_through_the_command_and_the_library() {
    let Some(reg) = Registry::start() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let cache = tmp.path().join("cache");
    let reference = reg.reference("acme/greet:1.0");

    let o = membrane_in_cache(&cache)
        .args(["push", guests::GREET_V1, &reference])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let digest = stdout(&o).trim().to_string();
    assert!(
        digest.starts_with("sha256:") && digest.len() == 71,
        "push prints the manifest digest: {digest:?}"
    );
    assert!(stderr(&o).contains(&format!("@{digest}")), "{}", stderr(&o));

    let app_dir = tmp.path().join("app");
    std::fs::create_dir(&app_dir).unwrap();
    manifest(&app_dir, &reference);
    let o = membrane_in_cache(&cache)
        .args(["call", app_dir.to_str().unwrap(), MODULE, HELLO, r#""oci""#])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stdout(&o).trim(), r#""v1 hello oci""#);

    let lib_cache = tmp.path().join("lib-cache");
    let app = load(&app_dir, &lib_cache).await.expect("the app loads");
    assert_eq!(hello(&app, "lib").await, "v1 hello lib");
    assert_eq!(cached_components(&lib_cache).len(), 1);

    // Only components are pushed, and the error says what the file is instead.
    let junk = tmp.path().join("junk.wasm");
    std::fs::write(&junk, b"not wasm at all").unwrap();
    let core = tmp.path().join("core.wasm");
    std::fs::write(&core, wat::parse_str("(module)").unwrap()).unwrap();
    for (file, says) in [
        (&junk, "not WebAssembly"),
        (&core, "core WebAssembly module"),
    ] {
        let o = membrane_in_cache(&cache)
            .args(["push", file.to_str().unwrap(), &reference])
            .output()
            .unwrap();
        assert_clean_failure(&o, says);
        assert!(
            stderr(&o).contains("error[invalid-component]"),
            "{}",
            stderr(&o)
        );
    }
}

#[tokio::test]
async fn a_pinned_component_is_pulled_once_and_loads_with_the_registry_down() {
    let Some(mut reg) = Registry::start() else {
        return;
    };
    let pushed = push(&reg.reference("acme/greet:1.0"), guests::GREET_V1).await;
    let tmp = tempfile::tempdir().unwrap();
    let cache = tmp.path().join("cache");
    let pinned = tmp.path().join("pinned");
    std::fs::create_dir(&pinned).unwrap();
    manifest(
        &pinned,
        &reg.reference(&format!("acme/greet@{}", pushed.manifest)),
    );
    let by_tag = tmp.path().join("tag");
    std::fs::create_dir(&by_tag).unwrap();
    manifest(&by_tag, &reg.reference("acme/greet:1.0"));

    let app = load(&pinned, &cache)
        .await
        .expect("loads from the registry");
    assert_eq!(hello(&app, "a").await, "v1 hello a");
    assert_eq!(
        cached_components(&cache),
        [format!("{}.wasm", pushed.component.hex())]
    );

    // No registry from here on: the pinned component comes from the cache, by the
    // library and by the command.
    reg.stop();
    let app = load(&pinned, &cache).await.expect("loads from the cache");
    assert_eq!(hello(&app, "b").await, "v1 hello b");
    let o = membrane_in_cache(&cache)
        .args(["call", pinned.to_str().unwrap(), MODULE, HELLO, r#""c""#])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stdout(&o).trim(), r#""v1 hello c""#);

    // A tag must be asked for: with the registry down, that is a typed error naming the
    // reference and the address.
    let e = load(&by_tag, &cache)
        .await
        .err()
        .expect("a tag needs the registry");
    assert_eq!(e.kind(), ErrorKind::Unavailable, "{}", membrane::chain(&e));
    assert_eq!(e.module(), Some(MODULE));
    assert_eq!(e.key(), Some("modules.greet.component"));
    assert_eq!(e.location().map(|l| l.line), Some(2));
    let oci = oci_error(&e);
    assert_eq!(oci.reference, reg.reference("acme/greet:1.0"));
    match &oci.kind {
        OciErrorKind::Unreachable { address, .. } => assert_eq!(*address, reg.address()),
        other => panic!("{other:?}"),
    }
    let text = membrane::chain(&e);
    assert!(
        text.contains(&reg.address()) && text.contains("acme/greet:1.0"),
        "{text}"
    );
    let o = membrane_in_cache(&cache)
        .args(["call", by_tag.to_str().unwrap(), MODULE, HELLO, r#""d""#])
        .output()
        .unwrap();
    assert_clean_failure(&o, "error[unavailable]");
    assert!(stderr(&o).contains(&reg.address()), "{}", stderr(&o));
}

#[tokio::test]
async fn a_reload_pulls_what_the_tag_names_now() {
    let Some(reg) = Registry::start() else { return };
    let reference = reg.reference("acme/greet:1.0");
    push(&reference, guests::GREET_V1).await;
    let tmp = tempfile::tempdir().unwrap();
    manifest(tmp.path(), &reference);
    let app = load(tmp.path(), &tmp.path().join("cache")).await.unwrap();
    assert_eq!(hello(&app, "a").await, "v1 hello a");

    push(&reference, guests::GREET_V2).await;
    let report = app.reload(tmp.path().join("membrane.toml")).await.unwrap();
    assert_eq!(report.upgraded.len(), 1, "{report:?}");
    assert_eq!(hello(&app, "b").await, "v2 hello b");
    let report = app.reload(tmp.path().join("membrane.toml")).await.unwrap();
    assert!(report.upgraded.is_empty(), "{report:?}");
    assert_eq!(report.unchanged, [MODULE]);
}
