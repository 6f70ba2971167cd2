//! The hostile-guest suite: every way a guest can try to hurt the host, its neighbours or the
//! data ends in the exact error kind, with the host alive and a well-behaved module of the
//! same app still answering correctly.

use std::time::Duration;

use membrane::{AppSpec, DirMode, ErrorKind, ModuleSpec, Val};

use crate::common::*;

/// An app with the hostile probe as `bad` (shaped by `f`) and the types guest as `good`.
async fn hostile(f: impl FnOnce(ModuleSpec) -> ModuleSpec) -> membrane::App {
    runtime()
        .load_spec(
            AppSpec::new()
                .module(
                    "bad",
                    f(ModuleSpec::from_file(guests::PROBE).timeout(Duration::from_millis(500))),
                )
                .module("good", ModuleSpec::from_file(guests::TYPES)),
        )
        .await
        .expect("app loads")
}

async fn bad(app: &membrane::App, func: &str, args: &[Val]) -> membrane::Result<Vec<Val>> {
    app.call("bad", &format!("{CAPS}#{func}"), args).await
}

/// The neighbour is untouched, and the hostile module itself still serves a plain call.
async fn contained(app: &membrane::App) {
    let out = app.call("good", "hello", &[s("neighbour")]).await.unwrap();
    assert_eq!(out[0], s("hello, neighbour"));
    let out = bad(app, "length", &[s("still here")]).await.unwrap();
    assert_eq!(out[0], Val::U64(10));
}

async fn expect(app: &membrane::App, func: &str, args: &[Val], kind: ErrorKind) -> membrane::Error {
    let e = bad(app, func, args).await.expect_err(func);
    assert_eq!(e.kind(), kind, "{func}: {}", membrane::chain(&e));
    contained(app).await;
    e
}

#[tokio::test]
async fn infinite_loop() {
    let app = hostile(|m| m).await;
    expect(&app, "spin", &[], ErrorKind::Timeout).await;
}

#[tokio::test]
async fn tight_loop_of_host_calls() {
    let app = hostile(|m| m).await;
    expect(&app, "spin-hostcalls", &[], ErrorKind::Timeout).await;
}

#[tokio::test]
async fn memory_grow_until_refused() {
    let app = hostile(|m| m.memory(32 << 20)).await;
    expect(&app, "bomb", &[], ErrorKind::MemoryLimit).await;
}

#[tokio::test]
async fn single_huge_allocation_fails_inside_the_guest() {
    let app = hostile(|m| m.memory(32 << 20)).await;
    let out = bad(&app, "try-alloc", &[Val::U64(3 << 30)]).await.unwrap();
    assert!(result_text(&out).is_err(), "{out:?}");
    contained(&app).await;
}

#[tokio::test]
async fn unbounded_recursion() {
    let app = hostile(|m| m).await;
    expect(
        &app,
        "recurse",
        &[Val::U64(1 << 40)],
        ErrorKind::StackOverflow,
    )
    .await;
}

#[tokio::test]
async fn guest_panic() {
    let app = hostile(|m| m).await;
    expect(&app, "panic", &[s("boom")], ErrorKind::Trap).await;
}

#[tokio::test]
async fn enormous_random_request() {
    let app = hostile(|m| m).await;
    expect(&app, "random-bytes", &[Val::U64(1 << 40)], ErrorKind::Trap).await;
    // A sane request works.
    let out = bad(&app, "random-bytes", &[Val::U64(64)]).await.unwrap();
    assert_eq!(out[0], Val::U64(64));
}

#[tokio::test]
async fn stdout_flood_is_capped_not_fatal() {
    let app = hostile(|m| m.output(64 << 10)).await;
    let flood = "x".repeat(4 << 20);
    bad(&app, "print", &[s(&flood), Val::Bool(false)])
        .await
        .unwrap();
    contained(&app).await;
}

#[tokio::test]
async fn million_entry_list_argument() {
    let app = hostile(|m| m).await;
    let list: Vec<Val> = (0..1_000_000i64).map(Val::S64).collect();
    let out = bad(&app, "sum", &[Val::List(list)]).await.unwrap();
    assert_eq!(out[0], Val::S64((0..1_000_000i64).sum()));
    // Ten million (80 MB) does not fit in the module's 64 MiB.
    let list: Vec<Val> = (0..10_000_000i64).map(Val::S64).collect();
    expect(&app, "sum", &[Val::List(list)], ErrorKind::MemoryLimit).await;
}

#[tokio::test]
async fn trap_in_the_middle_of_a_write() {
    let tmp = tempfile::tempdir().unwrap();
    let app = hostile(|m| m.dir(tmp.path(), "/data", DirMode::ReadWrite)).await;
    expect(
        &app,
        "write-then-panic",
        &[s("/data/half.txt"), s("first part")],
        ErrorKind::Trap,
    )
    .await;
    // What was written before the trap stays written (no atomicity; see SECURITY.md), and the
    // file is a plain file with exactly those bytes, not garbage.
    assert_eq!(
        std::fs::read_to_string(tmp.path().join("half.txt")).unwrap(),
        "first part"
    );
}

struct Tree {
    _tmp: tempfile::TempDir,
    root: std::path::PathBuf,
}

/// root/ro/file.txt (granted read-only at /ro), root/rw/ (read-write at /rw),
/// root/secret.txt (not granted).
fn tree() -> Tree {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().to_path_buf();
    std::fs::create_dir_all(root.join("ro")).unwrap();
    std::fs::create_dir_all(root.join("rw")).unwrap();
    std::fs::write(root.join("ro/file.txt"), "read only").unwrap();
    std::fs::write(root.join("secret.txt"), "secret").unwrap();
    Tree { _tmp: tmp, root }
}

async fn fs_app(t: &Tree) -> membrane::App {
    let (ro, rw) = (t.root.join("ro"), t.root.join("rw"));
    hostile(move |m| {
        m.dir(ro, "/ro", DirMode::ReadOnly)
            .dir(rw, "/rw", DirMode::ReadWrite)
    })
    .await
}

async fn refused(app: &membrane::App, func: &str, args: &[Val]) {
    let out = bad(app, func, args).await.unwrap();
    assert!(
        result_text(&out).is_err(),
        "{func}{args:?} was allowed: {out:?}"
    );
    contained(app).await;
}

fn unchanged(t: &Tree) {
    assert_eq!(
        std::fs::read_to_string(t.root.join("ro/file.txt")).unwrap(),
        "read only"
    );
    assert_eq!(
        std::fs::read_to_string(t.root.join("secret.txt")).unwrap(),
        "secret"
    );
}

#[tokio::test]
async fn dot_dot_escape() {
    let t = tree();
    let app = fs_app(&t).await;
    refused(&app, "read-file", &[s("/rw/../secret.txt")]).await;
    refused(&app, "write-file", &[s("/rw/../../escape.txt"), s("x")]).await;
    unchanged(&t);
}

#[tokio::test]
async fn absolute_path_escape() {
    let t = tree();
    let app = fs_app(&t).await;
    refused(
        &app,
        "read-file",
        &[s(t.root.join("secret.txt").to_str().unwrap())],
    )
    .await;
    refused(&app, "read-file", &[s("/etc/passwd")]).await;
}

#[tokio::test]
async fn symlink_out_of_the_grant() {
    let t = tree();
    let app = fs_app(&t).await;
    // A link planted by someone else (or left by a process with more rights) is not followed
    // out of the grant, neither for reading nor for writing.
    std::os::unix::fs::symlink(t.root.join("secret.txt"), t.root.join("rw/planted")).unwrap();
    refused(&app, "read-file", &[s("/rw/planted")]).await;
    refused(&app, "write-file", &[s("/rw/planted"), s("pwned")]).await;
    unchanged(&t);
}

#[tokio::test]
async fn symlink_loop() {
    let t = tree();
    let app = fs_app(&t).await;
    std::os::unix::fs::symlink("b", t.root.join("rw/a")).unwrap();
    std::os::unix::fs::symlink("a", t.root.join("rw/b")).unwrap();
    refused(&app, "read-file", &[s("/rw/a")]).await;
}

#[tokio::test]
async fn trailing_slash_symlink() {
    let t = tree();
    let app = fs_app(&t).await;
    std::os::unix::fs::symlink("../secret.txt", t.root.join("rw/link")).unwrap();
    refused(&app, "read-file", &[s("/rw/link/")]).await;
    refused(&app, "list-dir", &[s("/rw/link/")]).await;
    refused(&app, "write-file", &[s("/rw/link/"), s("x")]).await;
    unchanged(&t);
}

#[tokio::test]
async fn hard_link_from_read_only_into_read_write() {
    let t = tree();
    let app = fs_app(&t).await;
    refused(&app, "hardlink", &[s("/ro/file.txt"), s("/rw/linked.txt")]).await;
    assert!(!t.root.join("rw/linked.txt").exists());
    unchanged(&t);
}

#[tokio::test]
async fn rename_from_read_only_into_read_write() {
    let t = tree();
    let app = fs_app(&t).await;
    refused(&app, "rename", &[s("/ro/file.txt"), s("/rw/moved.txt")]).await;
    assert!(!t.root.join("rw/moved.txt").exists());
    unchanged(&t);
}

#[tokio::test]
async fn truncate_of_a_read_only_file() {
    let t = tree();
    let app = fs_app(&t).await;
    refused(&app, "truncate", &[s("/ro/file.txt")]).await;
    refused(&app, "write-file", &[s("/ro/file.txt"), s("")]).await;
    unchanged(&t);
}

fn listener() -> (std::net::TcpListener, u16) {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    (l, port)
}

async fn net_refused(addr: String, grant: String) {
    let app = hostile(move |m| m.network(grant)).await;
    let out = bad(&app, "connect", &[s(&addr)]).await.unwrap();
    assert!(result_text(&out).is_err(), "{addr} connected");
    contained(&app).await;
}

#[tokio::test]
async fn network_to_an_ungranted_port() {
    let (_a, granted) = listener();
    let (_b, other) = listener();
    net_refused(format!("127.0.0.1:{other}"), format!("127.0.0.1:{granted}")).await;
}

#[tokio::test]
async fn network_to_a_granted_hosts_other_port() {
    let (_a, granted) = listener();
    let (_b, other) = listener();
    net_refused(format!("localhost:{other}"), format!("localhost:{granted}")).await;
}

#[tokio::test]
async fn network_to_cloud_metadata() {
    let (_a, granted) = listener();
    net_refused("169.254.169.254:80".into(), format!("127.0.0.1:{granted}")).await;
}

#[tokio::test]
async fn network_to_an_ipv4_mapped_denied_host() {
    let (_a, granted) = listener();
    net_refused(
        format!("[::ffff:127.0.0.2]:{granted}"),
        format!("127.0.0.1:{granted}"),
    )
    .await;
    net_refused(
        "[::ffff:169.254.169.254]:80".to_string(),
        format!("127.0.0.1:{granted}"),
    )
    .await;
}

async fn good_app_still_loads() {
    let app = runtime()
        .load_spec(AppSpec::new().module("good", ModuleSpec::from_file(guests::TYPES)))
        .await
        .unwrap();
    assert_eq!(
        app.call("good", "hello", &[s("x")]).await.unwrap()[0],
        s("hello, x")
    );
}

#[tokio::test]
async fn malformed_truncated_and_core_binaries() {
    let types = std::fs::read(guests::TYPES).unwrap();
    let mut flipped = types.clone();
    let mid = flipped.len() / 3;
    flipped[mid..mid + 64].iter_mut().for_each(|b| *b = !*b);
    for (what, bytes) in [
        ("garbage", b"\0asm\x0d\0\x01\0garbage garbage".to_vec()),
        ("truncated", types[..types.len() - 100].to_vec()),
        ("bit-flipped", flipped),
        (
            "core module",
            wat::parse_str("(module (memory 1) (func (export \"_start\")))").unwrap(),
        ),
        ("empty", Vec::new()),
    ] {
        let e = runtime()
            .load_spec(
                AppSpec::new()
                    .module("bad", ModuleSpec::from_bytes(bytes))
                    .module("good", ModuleSpec::from_file(guests::TYPES)),
            )
            .await
            .err()
            .unwrap_or_else(|| panic!("{what} loaded"));
        assert_eq!(e.kind(), ErrorKind::InvalidComponent, "{what}: {e}");
    }
    good_app_still_loads().await;
}

#[tokio::test]
async fn import_that_was_not_granted() {
    let e = runtime()
        .load_spec(
            AppSpec::new()
                .module("bad", ModuleSpec::from_file(guests::NEEDS_KV))
                .module("good", ModuleSpec::from_file(guests::TYPES)),
        )
        .await
        .err()
        .unwrap();
    assert_eq!(e.kind(), ErrorKind::Link, "{e}");
    good_app_still_loads().await;
}

#[tokio::test]
async fn link_whose_types_mismatch() {
    // relay imports work@1.2.0; types exports something else entirely.
    let e = runtime()
        .load_spec(
            AppSpec::new()
                .module(
                    "bad",
                    ModuleSpec::from_file(guests::RELAY).link("membrane-test:chain/work", "good"),
                )
                .module("good", ModuleSpec::from_file(guests::TYPES)),
        )
        .await
        .err()
        .unwrap();
    assert_eq!(e.kind(), ErrorKind::Link, "{e}");
    good_app_still_loads().await;
}

/// front -> relay -> worker, with tight limits on the relay.
async fn chain_app(relay: impl FnOnce(ModuleSpec) -> ModuleSpec) -> membrane::App {
    runtime()
        .load_spec(
            AppSpec::new()
                .module(
                    "relay",
                    relay(
                        ModuleSpec::from_file(guests::RELAY)
                            .link("membrane-test:chain/work", "worker"),
                    ),
                )
                .module("worker", ModuleSpec::from_file(guests::WORKER))
                .module("good", ModuleSpec::from_file(guests::TYPES)),
        )
        .await
        .unwrap()
}

async fn chain_contained(app: &membrane::App) {
    let out = app.call("good", "hello", &[s("n")]).await.unwrap();
    assert_eq!(out[0], s("hello, n"));
    let out = app
        .call("relay", "membrane-test:chain/relay#echo", &[s("ok")])
        .await
        .unwrap();
    assert_eq!(out[0], s("relay:worker:ok"));
}

#[tokio::test]
async fn hundred_mib_string_to_a_linked_module() {
    let app = chain_app(|m| m.memory(512 << 20).timeout(Duration::from_secs(30))).await;
    let big = "y".repeat(100 << 20);
    let e = app
        .call("relay", "membrane-test:chain/relay#echo", &[s(&big)])
        .await
        .unwrap_err();
    assert_eq!(
        e.kind(),
        ErrorKind::HostcallLimit,
        "{}",
        membrane::chain(&e)
    );
    chain_contained(&app).await;
}

#[tokio::test]
async fn a_million_resource_handles() {
    let app = chain_app(|m| m.timeout(Duration::from_secs(30))).await;
    let e = app
        .call(
            "relay",
            "membrane-test:chain/relay#counters",
            &[Val::U32(1_000_000)],
        )
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::TableLimit, "{}", membrane::chain(&e));
    chain_contained(&app).await;
}

#[tokio::test]
async fn recursion_through_a_link_is_refused_at_load() {
    let wit = "package t:x; interface x { f: func(); } interface y { g: func(); } \
               world a { import x; export y; } world b { import y; export x; }";
    let e = runtime()
        .load_spec(
            AppSpec::new()
                .module(
                    "a",
                    ModuleSpec::from_bytes(synth(wit, "t:x/a")).link("t:x/x", "b"),
                )
                .module(
                    "b",
                    ModuleSpec::from_bytes(synth(wit, "t:x/b")).link("t:x/y", "a"),
                )
                .module("good", ModuleSpec::from_file(guests::TYPES)),
        )
        .await
        .err()
        .unwrap();
    assert_eq!(e.kind(), ErrorKind::Link, "{e}");
    assert!(e.to_string().contains("cycle: a -> b -> a"), "{e}");
    good_app_still_loads().await;
}

#[tokio::test]
async fn a_thousand_concurrent_calls_half_cancelled() {
    let app = hostile(|m| m.concurrency(32, 2000).timeout(Duration::from_secs(30))).await;
    let mut tasks = Vec::new();
    for i in 0..1000u64 {
        let app = app.clone();
        tasks.push(tokio::spawn(async move {
            bad(&app, "sleep-ms", &[Val::U64(1 + i % 5)]).await
        }));
    }
    for (i, t) in tasks.iter().enumerate() {
        if i % 2 == 0 {
            t.abort();
        }
    }
    let mut finished = 0;
    for (i, t) in tasks.into_iter().enumerate() {
        match t.await {
            Ok(r) => {
                r.unwrap();
                finished += 1;
            }
            Err(e) => assert!(e.is_cancelled() && i % 2 == 0, "task {i}: {e}"),
        }
    }
    assert!(finished >= 500, "{finished}");
    // Every instance came back: nothing leaked, nothing is stuck.
    eventually("every instance is back", || {
        let st = &app.status()["bad"];
        st.busy == 0 && st.waiting == 0
    })
    .await;
    contained(&app).await;
}

/// A component whose core module declares a table of `min` elements.
fn component_with_table(min: u32) -> Vec<u8> {
    synth_with(
        "package t:t; world w { export f: func(); }",
        "t:t/w",
        Some(&format!(
            "(module (table {min} funcref) (func (export \"f\")))"
        )),
    )
}

#[tokio::test]
async fn table_with_a_huge_minimum() {
    let e = runtime()
        .load_spec(
            AppSpec::new()
                .module(
                    "bad",
                    ModuleSpec::from_bytes(component_with_table(50_000_000)),
                )
                .module("good", ModuleSpec::from_file(guests::TYPES)),
        )
        .await
        .err()
        .unwrap();
    assert_eq!(e.kind(), ErrorKind::TableLimit, "{}", membrane::chain(&e));
    good_app_still_loads().await;
    // A modest table is fine.
    let app = runtime()
        .load_spec(AppSpec::new().module("ok", ModuleSpec::from_bytes(component_with_table(100))))
        .await
        .unwrap();
    app.call("ok", "f", &[]).await.unwrap();
}

#[tokio::test]
async fn in_flight_calls_into_other_modules_finish_normally() {
    let gate = Gate::new().await;
    // The spinner's short deadline is what ends its call; the bomb and the panic get a
    // deadline far above their work, so that a busy machine still sees them as what they
    // are (a memory bomb slowed past 200 ms would otherwise end as a timeout).
    let app = runtime()
        .load_spec(
            AppSpec::new()
                .module(
                    "spinner",
                    ModuleSpec::from_file(guests::PROBE).timeout(Duration::from_millis(200)),
                )
                .module(
                    "bad",
                    ModuleSpec::from_file(guests::PROBE).timeout(HANG_GUARD),
                )
                .module("busy", gate.grant(ModuleSpec::from_file(guests::PROBE))),
        )
        .await
        .unwrap();
    let busy = {
        let (app, args) = (app.clone(), gate.args());
        tokio::spawn(async move {
            let held = app.call("busy", &format!("{CAPS}#connect"), &args).await;
            let counted = app.call("busy", &format!("{CAPS}#bump"), &[]).await;
            (held, counted)
        })
    };
    // The neighbour's call is in flight while the hostile module fails three ways.
    let held = gate.arrived().await;
    let spin = app.call("spinner", &format!("{CAPS}#spin"), &[]).await;
    assert_eq!(spin.unwrap_err().kind(), ErrorKind::Timeout);
    assert_eq!(
        bad(&app, "panic", &[s("x")]).await.unwrap_err().kind(),
        ErrorKind::Trap
    );
    assert_eq!(
        bad(&app, "bomb", &[]).await.unwrap_err().kind(),
        ErrorKind::MemoryLimit
    );
    assert_eq!(
        app.status()["busy"].busy,
        1,
        "the neighbour's call is still running"
    );
    held.release().await;
    let (held, counted) = busy.await.unwrap();
    assert_eq!(result_text(&held.unwrap()).unwrap(), "pong");
    // Same instance as the held call: its state survived the neighbour's failures.
    assert_eq!(counted.unwrap()[0], Val::U64(1));
}

// The classes of the outside review (issue 8), one file each.
mod admin;
mod component_path;
pub mod connections;
mod descriptors;
mod disk;
mod grants;
mod logs;
mod reload;
mod streams;

// Classes 3 and 4 of the second review (issue 22): a compromised worker process.
mod fake_worker;
mod inherited;
mod worker;
