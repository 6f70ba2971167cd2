//! Filesystem grants: what is granted works, everything else is refused and nothing on
//! the host changes.

use membrane::DirMode;

use crate::common::*;

struct Layout {
    _tmp: tempfile::TempDir,
    root: std::path::PathBuf,
}

/// root/
///   granted/hello.txt, granted/escape -> ../secret.txt, granted/abs -> /<root>/secret.txt
///   secret.txt
fn layout() -> Layout {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().to_path_buf();
    std::fs::create_dir(root.join("granted")).unwrap();
    std::fs::write(root.join("granted/hello.txt"), "hello from the host").unwrap();
    std::fs::write(root.join("secret.txt"), "top secret").unwrap();
    std::os::unix::fs::symlink("../secret.txt", root.join("granted/escape")).unwrap();
    std::os::unix::fs::symlink(root.join("secret.txt"), root.join("granted/abs")).unwrap();
    Layout { _tmp: tmp, root }
}

#[tokio::test]
async fn granted_read_works() {
    let l = layout();
    let app = probe(|m| m.dir(l.root.join("granted"), "/data", DirMode::ReadOnly)).await;
    let out = caps(&app, "read-file", &[s("/data/hello.txt")])
        .await
        .unwrap();
    assert_eq!(result_text(&out), Ok("hello from the host".into()));
    let out = caps(&app, "list-dir", &[s("/data")]).await.unwrap();
    assert_eq!(
        membrane::to_wave(&out[0]).unwrap(),
        r#"ok(["abs", "escape", "hello.txt"])"#
    );
}

#[tokio::test]
async fn escapes_are_refused() {
    let l = layout();
    let app = probe(|m| m.dir(l.root.join("granted"), "/data", DirMode::ReadWrite)).await;
    let secret = l.root.join("secret.txt");
    for path in [
        "/data/../secret.txt".to_string(),
        "/data/escape".to_string(),
        "/data/abs".to_string(),
        secret.display().to_string(),
        "/etc/passwd".to_string(),
        "../secret.txt".to_string(),
        "/".to_string(),
    ] {
        let out = caps(&app, "read-file", &[s(&path)]).await.unwrap();
        assert!(result_text(&out).is_err(), "{path} was readable: {out:?}");
    }
    // Writing through an escaping symlink is refused too, and the target is unchanged.
    for path in ["/data/escape", "/data/abs", "/data/../secret.txt"] {
        let out = caps(&app, "write-file", &[s(path), s("pwned")])
            .await
            .unwrap();
        assert!(result_text(&out).is_err(), "{path} was writable");
    }
    assert_eq!(std::fs::read_to_string(&secret).unwrap(), "top secret");
    // The module still works after the refusals.
    let out = caps(&app, "read-file", &[s("/data/hello.txt")])
        .await
        .unwrap();
    assert!(result_text(&out).is_ok());
}

#[tokio::test]
async fn read_only_dirs_refuse_writes() {
    let l = layout();
    let app = probe(|m| m.dir(l.root.join("granted"), "/data", DirMode::ReadOnly)).await;
    let out = caps(&app, "write-file", &[s("/data/hello.txt"), s("changed")])
        .await
        .unwrap();
    let err = result_text(&out).unwrap_err();
    assert!(
        err.contains("ermission") || err.contains("ReadOnly") || err.contains("denied"),
        "{err}"
    );
    let out = caps(&app, "write-file", &[s("/data/new.txt"), s("new")])
        .await
        .unwrap();
    assert!(result_text(&out).is_err());
    assert_eq!(
        std::fs::read_to_string(l.root.join("granted/hello.txt")).unwrap(),
        "hello from the host"
    );
    assert!(!l.root.join("granted/new.txt").exists());
}

#[tokio::test]
async fn read_write_dirs_accept_writes() {
    let l = layout();
    let app = probe(|m| m.dir(l.root.join("granted"), "/data", DirMode::ReadWrite)).await;
    let out = caps(
        &app,
        "write-file",
        &[s("/data/new.txt"), s("written by the guest")],
    )
    .await
    .unwrap();
    assert_eq!(result_text(&out), Ok(String::new()));
    assert_eq!(
        std::fs::read_to_string(l.root.join("granted/new.txt")).unwrap(),
        "written by the guest"
    );
}

#[tokio::test]
async fn no_grant_means_no_filesystem() {
    let app = probe(|m| m).await;
    for path in ["/", "/etc/passwd", "."] {
        let out = caps(&app, "list-dir", &[s(path)]).await.unwrap();
        assert!(result_text(&out).is_err(), "{path} was listable");
    }
}

#[tokio::test]
async fn missing_host_dir_is_a_load_error() {
    let err = runtime()
        .load_spec(membrane::AppSpec::new().module(
            "m",
            membrane::ModuleSpec::from_file(guests::PROBE).dir(
                "/no/such/dir",
                "/data",
                DirMode::ReadOnly,
            ),
        ))
        .await
        .err()
        .expect("load fails");
    assert_eq!(err.kind(), membrane::ErrorKind::NotFound);
    assert_eq!(err.module(), Some("m"));
    assert_eq!(err.key(), Some("modules.m.grants.dirs[0]"));
}
