//! Class 3: file descriptors, a resource of the whole process. A module that opens files
//! (or sockets) and keeps them must hit its own `files` limit long before the process runs
//! out, so that its neighbours can still open theirs.

use membrane::{AppSpec, DirMode, ErrorKind, ModuleSpec, Val};

use crate::common::*;

struct Shared {
    _tmp: tempfile::TempDir,
    dir: std::path::PathBuf,
}

fn shared() -> Shared {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().to_path_buf();
    std::fs::write(dir.join("f.txt"), "data").unwrap();
    Shared { _tmp: tmp, dir }
}

/// `hog` (one instance, `files` open at most) and `neighbour`, both granted the same dir.
async fn app(s: &Shared, files: u32) -> membrane::App {
    let module = || ModuleSpec::from_file(guests::PROBE).dir(&s.dir, "/d", DirMode::ReadOnly);
    runtime()
        .load_spec(
            AppSpec::new()
                .module("hog", module().files(files).concurrency(1, 8))
                .module("neighbour", module()),
        )
        .await
        .unwrap()
}

async fn call(
    app: &membrane::App,
    m: &str,
    func: &str,
    args: &[Val],
) -> membrane::Result<Vec<Val>> {
    app.call(m, &format!("{CAPS}#{func}"), args).await
}

async fn neighbour_reads(app: &membrane::App) {
    let out = call(app, "neighbour", "read-file", &[s("/d/f.txt")])
        .await
        .unwrap();
    assert_eq!(result_text(&out), Ok("data".to_string()));
}

#[tokio::test]
async fn opens_past_the_limit_fail_inside_the_guest_and_handles_kept_count() {
    let sh = shared();
    let app = app(&sh, 16).await;
    let out = call(
        &app,
        "hog",
        "open-many",
        &[s("/d/f.txt"), Val::U32(10_000), Val::Bool(false)],
    )
    .await
    .unwrap();
    let err = result_text(&out).unwrap_err();
    assert!(err.starts_with("16 opened"), "{err}");
    neighbour_reads(&app).await;
    // The handles outlive the call (the instance is reused): the next call has no room.
    let out = call(
        &app,
        "hog",
        "open-many",
        &[s("/d/f.txt"), Val::U32(1), Val::Bool(false)],
    )
    .await
    .unwrap();
    assert!(result_text(&out).unwrap_err().starts_with("0 opened"));
    // Directory listings hold a descriptor too.
    let out = call(&app, "hog", "list-dir", &[s("/d")]).await.unwrap();
    assert!(result_text(&out).is_err(), "{out:?}");
    // Closing them gives the room back.
    let out = call(&app, "hog", "close-all", &[]).await.unwrap();
    assert_eq!(out[0], Val::U32(16));
    let out = call(
        &app,
        "hog",
        "open-many",
        &[s("/d/f.txt"), Val::U32(16), Val::Bool(false)],
    )
    .await
    .unwrap();
    assert_eq!(result_text(&out), Ok("16".to_string()));
    neighbour_reads(&app).await;
}

#[tokio::test]
async fn a_call_that_fails_after_a_refused_open_is_a_files_limit() {
    let sh = shared();
    let app = app(&sh, 8).await;
    let e = call(
        &app,
        "hog",
        "open-many",
        &[s("/d/f.txt"), Val::U32(100), Val::Bool(true)],
    )
    .await
    .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::FilesLimit, "{}", membrane::chain(&e));
    // The failed instance (and its handles) is gone; the next one starts with none.
    let out = call(
        &app,
        "hog",
        "open-many",
        &[s("/d/f.txt"), Val::U32(8), Val::Bool(true)],
    )
    .await
    .unwrap();
    assert_eq!(result_text(&out), Ok("8".to_string()));
    neighbour_reads(&app).await;
}

#[tokio::test]
async fn sockets_count_against_the_same_limit() {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap().to_string();
    let app = runtime()
        .load_spec(
            AppSpec::new().module(
                "hog",
                ModuleSpec::from_file(guests::PROBE)
                    .network(addr.clone())
                    .files(4),
            ),
        )
        .await
        .unwrap();
    let out = call(&app, "hog", "hold-sockets", &[s(&addr), Val::U32(100)])
        .await
        .unwrap();
    let err = result_text(&out).unwrap_err();
    assert!(err.starts_with("4 connected"), "{err}");
    drop(l);
}

/// The reviewer's case: one module keeping thousands of handles. With the default limit it
/// stops at 256 per instance; the process keeps descriptors for everyone else.
#[tokio::test]
async fn the_default_limit_stops_a_hoarder_far_below_the_process_limit() {
    let sh = shared();
    let app = runtime()
        .load_spec(
            AppSpec::new()
                .module(
                    "hog",
                    ModuleSpec::from_file(guests::PROBE)
                        .dir(&sh.dir, "/d", DirMode::ReadOnly)
                        .concurrency(2, 8),
                )
                .module(
                    "neighbour",
                    ModuleSpec::from_file(guests::PROBE).dir(&sh.dir, "/d", DirMode::ReadOnly),
                ),
        )
        .await
        .unwrap();
    let limit = membrane::Limits::DEFAULT_FILES;
    let out = call(
        &app,
        "hog",
        "open-many",
        &[s("/d/f.txt"), Val::U32(20_000), Val::Bool(false)],
    )
    .await
    .unwrap();
    let err = result_text(&out).unwrap_err();
    assert!(err.starts_with(&format!("{limit} opened")), "{err}");
    neighbour_reads(&app).await;
}
