//! `membrane lock`: the lock pins what the tag named when it was written; a tag moved
//! later is not followed, and a locked artifact the registry lost is refused.

use membrane::ComponentSource;
use membrane::ErrorKind;
use membrane::oci::{Object, OciErrorKind};

use super::registry::Registry;
use super::*;
use crate::common::{guests, stderr, stdout};

#[tokio::test]
async fn membrane_lock_pins_the_tag_and_a_moved_tag_is_not_followed() {
    let Some(reg) = Registry::start() else { return };
    let reference = reg.reference("acme/greet:1.0");
    let v1 = push(&reference, guests::GREET_V1).await;
    let tmp = tempfile::tempdir().unwrap();
    let app_dir = tmp.path().join("app");
    std::fs::create_dir(&app_dir).unwrap();
    manifest(&app_dir, &reference);

    let o = membrane_in_cache(&tmp.path().join("lock-cache"))
        .args(["lock", app_dir.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains(v1.manifest.as_str()), "{}", stdout(&o));
    let text = std::fs::read_to_string(app_dir.join("membrane.lock")).unwrap();
    for part in [
        "[modules.greet]",
        &reference,
        v1.manifest.as_str(),
        v1.component.as_str(),
    ] {
        assert!(text.contains(part), "{part} not in the lock:\n{text}");
    }
    let m = read_manifest(&app_dir).unwrap();
    let ComponentSource::Oci(r) = m.app.modules()[MODULE].source() else {
        panic!("not an oci source")
    };
    let locked = r.locked().expect("the lock is read with the manifest");
    assert_eq!(locked.manifest, v1.manifest);
    assert_eq!(locked.component, v1.component);

    // The tag moves to another component.
    let v2 = push(&reference, guests::GREET_V2).await;
    assert_ne!(v2.manifest, v1.manifest);

    // With the lock, a fresh cache still gets the locked artifact, by the library and the
    // command; without it, the tag's new one.
    let app = load(&app_dir, &tmp.path().join("fresh")).await.unwrap();
    assert_eq!(hello(&app, "x").await, "v1 hello x");
    let o = membrane_in_cache(&tmp.path().join("fresh-cli"))
        .args(["call", app_dir.to_str().unwrap(), MODULE, HELLO, r#""y""#])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stdout(&o).trim(), r#""v1 hello y""#);
    let unlocked = Manifest::from_file_unlocked(app_dir.join("membrane.toml")).unwrap();
    let app = runtime_with(fetcher(&tmp.path().join("unlocked")))
        .load_spec(unlocked.app)
        .await
        .unwrap();
    assert_eq!(hello(&app, "z").await, "v2 hello z");

    // The registry loses the locked component: a fresh cache cannot get it, and says so.
    std::fs::remove_dir_all(reg.blob_data(v1.component.as_str()).parent().unwrap()).unwrap();
    let e = load(&app_dir, &tmp.path().join("gone"))
        .await
        .err()
        .expect("refused");
    assert_eq!(e.kind(), ErrorKind::NotFound, "{}", membrane::chain(&e));
    assert_eq!(e.module(), Some(MODULE));
    assert_eq!(e.key(), Some("modules.greet.component"));
    assert_eq!(
        oci_error(&e).kind,
        OciErrorKind::NotFound {
            object: Object::Component,
            name: v1.component.to_string()
        }
    );

    // A reference changed after locking is a manifest problem until it is locked again.
    manifest(&app_dir, &reg.reference("acme/greet:2.0"));
    let e = read_manifest(&app_dir).expect_err("a stale lock is refused");
    assert_eq!(e.kind(), ErrorKind::Manifest);
    assert_eq!(e.key(), Some("modules.greet.component"));
    assert!(e.message().contains("membrane lock"), "{e}");
}
