//! Class 1: a module redirecting a grant. A module with a read-write grant of `box` renames
//! `box/inner` away and plants a symlink in its place; whoever was granted `box/inner` must
//! keep the directory it was given, and the next load must refuse the symlink. Read-write
//! grants must not reach the code the host runs.

use std::path::{Path, PathBuf};

use membrane::{AppSpec, Config, DirMode, ErrorKind, Lifecycle, ModuleSpec, Runtime, Val};

use crate::common::*;

struct Boxed {
    _tmp: tempfile::TempDir,
    root: PathBuf,
}

/// root/box/inner/mine.txt, root/elsewhere/secret.txt (granted to nobody).
fn boxed() -> Boxed {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().to_path_buf();
    std::fs::create_dir_all(root.join("box/inner")).unwrap();
    std::fs::create_dir_all(root.join("elsewhere")).unwrap();
    std::fs::write(root.join("box/inner/mine.txt"), "inner's own").unwrap();
    std::fs::write(root.join("elsewhere/secret.txt"), "secret").unwrap();
    Boxed { _tmp: tmp, root }
}

async fn caps_of(app: &membrane::App, module: &str, func: &str, args: &[Val]) -> Vec<Val> {
    app.call(module, &format!("{CAPS}#{func}"), args)
        .await
        .unwrap_or_else(|e| panic!("{module}.{func}: {}", membrane::chain(&e)))
}

/// `attacker` swaps `box/inner` for a relative symlink to `elsewhere`.
async fn swap_inner(app: &membrane::App, attacker: &str, box_at: &str) {
    let out = caps_of(
        app,
        attacker,
        "rename",
        &[s(&format!("{box_at}/inner")), s(&format!("{box_at}/moved"))],
    )
    .await;
    assert!(result_text(&out).is_ok(), "{out:?}");
    let out = caps_of(
        app,
        attacker,
        "symlink",
        &[s("../elsewhere"), s(&format!("{box_at}/inner"))],
    )
    .await;
    assert!(result_text(&out).is_ok(), "planting the symlink: {out:?}");
}

/// The inner grant still sees its own directory and nothing of `elsewhere`.
async fn inner_holds(app: &membrane::App, module: &str, at: &str, root: &Path) {
    let out = caps_of(app, module, "read-file", &[s(&format!("{at}/secret.txt"))]).await;
    assert!(result_text(&out).is_err(), "read through the swap: {out:?}");
    let out = caps_of(app, module, "read-file", &[s(&format!("{at}/mine.txt"))]).await;
    assert_eq!(result_text(&out), Ok("inner's own".to_string()));
    let out = caps_of(
        app,
        module,
        "write-file",
        &[s(&format!("{at}/dropped.txt")), s("x")],
    )
    .await;
    if result_text(&out).is_ok() {
        // A read-write inner grant writes into the directory it was given, now box/moved.
        assert!(root.join("box/moved/dropped.txt").exists());
    }
    assert!(!root.join("elsewhere/dropped.txt").exists());
    assert_eq!(
        std::fs::read_to_string(root.join("elsewhere/secret.txt")).unwrap(),
        "secret"
    );
}

async fn two_modules(b: &Boxed, inner_mode: DirMode) -> membrane::Result<membrane::App> {
    runtime()
        .load_spec(
            AppSpec::new()
                .module(
                    "outer",
                    ModuleSpec::from_file(guests::PROBE).dir(
                        b.root.join("box"),
                        "/box",
                        DirMode::ReadWrite,
                    ),
                )
                .module(
                    "inner",
                    // A fresh instance (and WASI context) for every call.
                    ModuleSpec::from_file(guests::PROBE)
                        .lifecycle(Lifecycle::PerCall)
                        .dir(b.root.join("box/inner"), "/data", inner_mode),
                ),
        )
        .await
}

#[tokio::test]
async fn a_nested_grant_cannot_be_redirected_by_another_module() {
    for mode in [DirMode::ReadOnly, DirMode::ReadWrite] {
        let b = boxed();
        let app = two_modules(&b, mode).await.unwrap();
        swap_inner(&app, "outer", "/box").await;
        inner_holds(&app, "inner", "/data", &b.root).await;
        // The next load refuses the symlink instead of following it.
        let e = two_modules(&b, mode).await.err().expect("load refused");
        assert_eq!(e.kind(), ErrorKind::Denied, "{}", membrane::chain(&e));
    }
}

#[tokio::test]
async fn a_nested_grant_cannot_be_redirected_by_its_own_module() {
    let b = boxed();
    let rt = runtime();
    let load = || {
        rt.load_spec(
            AppSpec::new().module(
                "both",
                ModuleSpec::from_file(guests::PROBE)
                    .lifecycle(Lifecycle::PerCall)
                    .dir(b.root.join("box"), "/box", DirMode::ReadWrite)
                    .dir(b.root.join("box/inner"), "/inner", DirMode::ReadOnly),
            ),
        )
    };
    let app = load().await.unwrap();
    swap_inner(&app, "both", "/box").await;
    inner_holds(&app, "both", "/inner", &b.root).await;
    let e = load().await.err().expect("load refused");
    assert_eq!(e.kind(), ErrorKind::Denied, "{}", membrane::chain(&e));
}

#[tokio::test]
async fn a_grant_through_a_symlink_is_refused_at_load() {
    let b = boxed();
    std::os::unix::fs::symlink(b.root.join("elsewhere"), b.root.join("link")).unwrap();
    for path in [b.root.join("link"), b.root.join("link/../box")] {
        let e = runtime()
            .load_spec(AppSpec::new().module(
                "m",
                ModuleSpec::from_file(guests::PROBE).dir(&path, "/data", DirMode::ReadOnly),
            ))
            .await
            .err()
            .expect("refused");
        assert_eq!(e.kind(), ErrorKind::Denied, "{}", membrane::chain(&e));
    }
}

/// A module whose read-write grant holds a component (its own or another's) could replace
/// that module's code and run it with that module's grants.
#[tokio::test]
async fn a_read_write_grant_must_not_hold_a_component() {
    let tmp = tempfile::tempdir().unwrap();
    let code = tmp.path().join("code");
    std::fs::create_dir_all(&code).unwrap();
    std::fs::copy(guests::TYPES, code.join("types.wasm")).unwrap();
    let spec = |mode| {
        AppSpec::new()
            .module(
                "writer",
                ModuleSpec::from_file(guests::PROBE).dir(tmp.path(), "/all", mode),
            )
            .module("victim", ModuleSpec::from_file(code.join("types.wasm")))
    };
    let e = runtime()
        .load_spec(spec(DirMode::ReadWrite))
        .await
        .err()
        .expect("refused");
    assert_eq!(e.kind(), ErrorKind::Denied, "{}", membrane::chain(&e));
    // Read-only is fine.
    runtime().load_spec(spec(DirMode::ReadOnly)).await.unwrap();
}

#[tokio::test]
async fn a_read_write_grant_must_not_hold_the_manifest_or_the_cache() {
    let tmp = tempfile::tempdir().unwrap();
    let m = write_manifest(
        tmp.path(),
        &format!(
            "[modules.m]\ncomponent = {:?}\ngrants = {{ dirs = [{{ host = \".\", guest = \"/app\", mode = \"rw\" }}] }}\n",
            guests::PROBE
        ),
    );
    let e = runtime().load(&m).await.err().expect("refused");
    assert_eq!(e.kind(), ErrorKind::Denied, "{}", membrane::chain(&e));

    // Compiled code is loaded without validation: a module must not be able to write it.
    let data = tempfile::tempdir().unwrap();
    let mut config = Config::default();
    config.cache_dir = Some(data.path().join("cache"));
    let spec = |dir: &Path| {
        AppSpec::new().module(
            "m",
            ModuleSpec::from_file(guests::PROBE).dir(dir, "/data", DirMode::ReadWrite),
        )
    };
    let rt = Runtime::new(config).unwrap();
    for granted in [data.path().to_path_buf(), data.path().join("cache")] {
        let e = rt.load_spec(spec(&granted)).await.err().expect("refused");
        assert_eq!(e.kind(), ErrorKind::Denied, "{}", membrane::chain(&e));
    }
    std::fs::create_dir_all(data.path().join("other")).unwrap();
    rt.load_spec(spec(&data.path().join("other")))
        .await
        .unwrap();
}
