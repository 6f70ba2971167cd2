//! Class 6: disk use under a read-write grant (quotas) and guests that exit.

use membrane::{AppSpec, DirMode, ErrorKind, Lifecycle, ModuleSpec, RestartPolicy, Val};

use crate::common::*;

async fn quota_app(dir: &std::path::Path, bytes: Option<u64>, files: Option<u64>) -> membrane::App {
    runtime()
        .load_spec(
            AppSpec::new().module(
                "m",
                ModuleSpec::from_file(guests::PROBE)
                    .dir(dir, "/data", DirMode::ReadWrite)
                    .quota("/data", bytes, files)
                    .lifecycle(Lifecycle::PerCall),
            ),
        )
        .await
        .unwrap()
}

fn written(out: &[Val]) -> u64 {
    match result_text(out) {
        Ok(n) => n.parse().unwrap(),
        Err(e) => e.split_once(' ').unwrap().0.parse().unwrap(),
    }
}

fn du(dir: &std::path::Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().metadata().unwrap().blocks() * 512)
        .sum()
}

#[tokio::test]
async fn writes_past_the_byte_quota_fail_inside_the_guest() {
    let tmp = tempfile::tempdir().unwrap();
    let quota = 1 << 20;
    let app = quota_app(tmp.path(), Some(quota), None).await;
    let out = caps(&app, "write-bytes", &[s("/data/big"), Val::U64(8 << 20)])
        .await
        .unwrap();
    // wasi-libc reports a refused stream write as EIO (it does not ask the host for the code).
    let err = result_text(&out).unwrap_err();
    assert!(written(&out) <= quota, "{err}");
    assert!(du(tmp.path()) <= quota, "{} bytes on disk", du(tmp.path()));
    // Space freed by truncating is found again (the quota re-measures near its limit).
    let out = caps(&app, "write-bytes", &[s("/data/big"), Val::U64(0)])
        .await
        .unwrap();
    assert_eq!(written(&out), 0);
    let out = caps(
        &app,
        "write-bytes",
        &[s("/data/small"), Val::U64(512 << 10)],
    )
    .await
    .unwrap();
    assert_eq!(result_text(&out), Ok((512u64 << 10).to_string()));
}

#[tokio::test]
async fn names_past_the_file_quota_fail_inside_the_guest() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::create_dir(tmp.path().join("sub")).unwrap();
    let app = quota_app(tmp.path(), None, Some(10)).await;
    // `sub` already counts as one name.
    let out = caps(&app, "create-files", &[s("/data/sub"), Val::U32(50_000)])
        .await
        .unwrap();
    let err = result_text(&out).unwrap_err();
    assert!(err.starts_with("9 created"), "{err}");
    assert_eq!(
        std::fs::read_dir(tmp.path().join("sub")).unwrap().count(),
        9
    );
    // Symlinks and directories are names too.
    let out = caps(&app, "symlink", &[s("x"), s("/data/link")])
        .await
        .unwrap();
    assert!(result_text(&out).is_err(), "{out:?}");
}

#[tokio::test]
async fn a_call_that_fails_after_a_refused_write_is_a_disk_quota() {
    let tmp = tempfile::tempdir().unwrap();
    let app = quota_app(tmp.path(), Some(64 << 10), None).await;
    // write-then-panic fails on its own when the write is refused (`expect`).
    let e = caps(
        &app,
        "write-then-panic",
        &[s("/data/x"), s(&"y".repeat(1 << 20))],
    )
    .await
    .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::DiskQuota, "{}", membrane::chain(&e));
}

#[tokio::test]
async fn a_quota_on_a_read_only_grant_is_a_manifest_error() {
    let tmp = tempfile::tempdir().unwrap();
    let e = runtime()
        .load_spec(
            AppSpec::new().module(
                "m",
                ModuleSpec::from_file(guests::PROBE)
                    .dir(tmp.path(), "/data", DirMode::ReadOnly)
                    .quota("/data", Some(1), None),
            ),
        )
        .await
        .err()
        .expect("refused");
    assert_eq!(e.kind(), ErrorKind::Manifest);
}

fn policy(max: u32) -> RestartPolicy {
    let mut p = RestartPolicy::default();
    p.max = max;
    p
}

/// An exit inside an export call ends the instance like a trap: the instance is not reused
/// and the failure counts against the module.
#[tokio::test]
async fn an_exit_in_an_export_call_is_a_failure_of_the_module() {
    let app = runtime()
        .load_spec(
            AppSpec::new().module(
                "m",
                ModuleSpec::from_file(guests::PROBE)
                    .concurrency(1, 4)
                    .restart(policy(2)),
            ),
        )
        .await
        .unwrap();
    assert_eq!(caps(&app, "bump", &[]).await.unwrap()[0], Val::U64(1));
    assert_eq!(caps(&app, "bump", &[]).await.unwrap()[0], Val::U64(2));
    let e = caps(&app, "exit", &[Val::U32(3)]).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Exit);
    // A fresh instance: the counter starts again.
    assert_eq!(caps(&app, "bump", &[]).await.unwrap()[0], Val::U64(1));
    for _ in 0..2 {
        caps(&app, "exit", &[Val::U32(0)]).await.unwrap_err();
    }
    let e = caps(&app, "bump", &[]).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unavailable, "{}", membrane::chain(&e));
}

#[tokio::test]
async fn a_provider_that_exits_is_taken_out_of_service_not_its_caller() {
    let policy = policy(1);
    let app = runtime()
        .load_spec(
            AppSpec::new()
                .module(
                    "worker",
                    ModuleSpec::from_file(guests::WORKER).restart(policy),
                )
                .module(
                    "relay",
                    ModuleSpec::from_file(guests::RELAY)
                        .link("membrane-test:chain/work", "worker")
                        .restart(policy),
                ),
        )
        .await
        .unwrap();
    let exit = "membrane-test:chain/relay#exit";
    for _ in 0..2 {
        let e = app.call("relay", exit, &[Val::U32(1)]).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Exit, "{}", membrane::chain(&e));
    }
    let status = app.status();
    assert!(
        matches!(
            status["worker"].health,
            membrane::Health::Unavailable { .. }
        ),
        "{status:?}"
    );
    assert_eq!(status["relay"].health, membrane::Health::Healthy);
}
