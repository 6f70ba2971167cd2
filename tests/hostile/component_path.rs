//! What a component path may lead to (issue 31): nothing a module may change (no link or
//! directory on the way inside a read-write grant), nothing but a regular file within
//! `[app] max_component_size`, and nothing that blocks the server while it is read.

use std::path::Path;
use std::time::Duration;

use bytes::Bytes;
use membrane::{AppSpec, ErrorKind, ModuleSpec};
use rustix::fs::{CWD, FileType, Mode};

use crate::common::{guests, runtime, write_manifest};
use crate::serve::cli::{Proc, start_with};
use crate::serve::{get, request, send, with_token};

/// A hang guard: reading a FIFO would block forever.
const GUARD: Duration = Duration::from_secs(30);

fn fifo(path: &Path) {
    rustix::fs::mknodat(CWD, path, FileType::Fifo, Mode::from_raw_mode(0o600), 0).unwrap();
}

/// `root/real/probe.wasm`, and `root/work/g` (the directory the module may write).
fn layout(root: &Path) {
    std::fs::create_dir_all(root.join("real")).unwrap();
    std::fs::create_dir_all(root.join("work/g")).unwrap();
    std::fs::copy(guests::PROBE, root.join("real/probe.wasm")).unwrap();
}

fn manifest(root: &Path, component: &str, mode: &str) -> std::path::PathBuf {
    write_manifest(
        root,
        &format!(
            "[modules.m]\ncomponent = {component:?}\n\
             grants = {{ dirs = [{{ host = \"work/g\", guest = \"/g\", mode = \"{mode}\" }}] }}\n"
        ),
    )
}

#[tokio::test]
async fn a_link_on_the_way_to_a_component_inside_a_read_write_grant_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    layout(root);
    // The component is a link the module could re-point (`symlink-at` in /g) ...
    std::os::unix::fs::symlink("../../real/probe.wasm", root.join("work/g/glink.wasm")).unwrap();
    // ... or it lies below a linked directory the module could re-point.
    std::os::unix::fs::symlink("../../real", root.join("work/g/dlink")).unwrap();
    for component in ["work/g/glink.wasm", "work/g/dlink/probe.wasm"] {
        let m = manifest(root, component, "rw");
        let Err(e) = runtime().load(&m).await else {
            panic!("{component} inside a read-write grant loads");
        };
        assert_eq!(e.kind(), ErrorKind::Denied, "{}", membrane::chain(&e));
        assert_eq!(e.key(), Some("modules.m.grants.dirs"), "{component}");
        assert_eq!(e.module(), Some("m"));
        // Read-only, the module cannot re-point anything: fine.
        let m = manifest(root, component, "ro");
        runtime().load(&m).await.unwrap();
    }
    // Nor can a reload bring it in: the gate refuses the same.
    let m = manifest(root, "real/probe.wasm", "rw");
    let app = runtime().load(&m).await.unwrap();
    let m = manifest(root, "work/g/glink.wasm", "rw");
    let e = app.reload(&m).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Denied, "{}", membrane::chain(&e));
    assert_eq!(app.status()["m"].generation, 1);
}

#[tokio::test]
async fn a_link_on_the_way_to_the_manifest_inside_a_read_write_grant_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    layout(root);
    let text = format!(
        "[modules.m]\ncomponent = {:?}\n\
         grants = {{ dirs = [{{ host = {:?}, guest = \"/g\", mode = \"rw\" }}] }}\n",
        root.join("real/probe.wasm"),
        root.join("work/g")
    );
    let real = root.join("real/membrane.toml");
    std::fs::write(&real, text).unwrap();
    runtime().load(&real).await.unwrap();
    // Loaded through a link inside the directory the module may write: it could re-point
    // the link and have the next reload read a manifest of its choosing.
    let linked = root.join("work/g/membrane.toml");
    std::os::unix::fs::symlink(&real, &linked).unwrap();
    let Err(e) = runtime().load(&linked).await else {
        panic!("a read-write grant holding a link to the manifest loads");
    };
    assert_eq!(e.kind(), ErrorKind::Denied, "{}", membrane::chain(&e));
    assert!(e.to_string().contains("manifest"), "{e}");
}

#[tokio::test]
async fn only_a_regular_file_within_the_size_limit_is_read() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    layout(root);
    fifo(&root.join("fifo.wasm"));
    std::os::unix::fs::symlink("/dev/zero", root.join("zero.wasm")).unwrap();
    for component in ["fifo.wasm", "zero.wasm", "real"] {
        let spec = AppSpec::new().module("m", ModuleSpec::from_file(root.join(component)));
        let r = tokio::time::timeout(GUARD, runtime().load_spec(spec))
            .await
            .unwrap_or_else(|_| panic!("loading {component} hangs"));
        let Err(e) = r else {
            panic!("{component} loads");
        };
        assert_eq!(
            e.kind(),
            ErrorKind::InvalidComponent,
            "{}",
            membrane::chain(&e)
        );
        assert_eq!(e.key(), Some("modules.m.component"));
        assert!(e.to_string().contains("not a regular file"), "{e}");
    }
    // Over the limit: refused before it is read, naming the key.
    let size = std::fs::metadata(guests::PROBE).unwrap().len();
    let spec = AppSpec::new()
        .module("m", ModuleSpec::from_file(root.join("real/probe.wasm")))
        .max_component_size(size - 1);
    let Err(e) = runtime().load_spec(spec).await else {
        panic!("a component over max_component_size loads");
    };
    assert_eq!(e.kind(), ErrorKind::InvalidComponent);
    assert_eq!(e.key(), Some("app.max_component_size"));
    let spec = AppSpec::new()
        .module("m", ModuleSpec::from_file(root.join("real/probe.wasm")))
        .max_component_size(size);
    runtime().load_spec(spec).await.unwrap();
    // A manifest that is a FIFO is refused too, at once.
    fifo(&root.join("fifo.toml"));
    let r = tokio::time::timeout(
        GUARD,
        tokio::task::spawn_blocking({
            let p = root.join("fifo.toml");
            move || membrane::Manifest::from_file(p)
        }),
    )
    .await
    .expect("reading a FIFO manifest hangs")
    .unwrap();
    let e = r.expect_err("a FIFO manifest parses");
    assert_eq!(e.kind(), ErrorKind::Manifest, "{}", membrane::chain(&e));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_component_that_becomes_a_fifo_does_not_freeze_the_server() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    std::fs::copy(guests::GREET_V1, root.join("greet.wasm")).unwrap();
    let m = write_manifest(
        root,
        &format!(
            "[app.http]\nroutes = {{ \"/\" = \"web\" }}\n[app.admin]\nlisten = \"127.0.0.1:0\"\n\
             [modules.web]\ncomponent = {:?}\nlinks = {{ \"acme:greet/api\" = \"greet\" }}\n\
             [modules.greet]\ncomponent = \"greet.wasm\"\n",
            guests::GREET_HTTP
        ),
    );
    let s = start_with(&m, &["--watch"], &[]);
    assert_eq!(get(s.addr, "/bob").await.status, 200);
    // The component is replaced by a FIFO nobody writes.
    fifo(&root.join("greet.fifo"));
    std::fs::rename(root.join("greet.fifo"), root.join("greet.wasm")).unwrap();
    let line = s.wait_for_log("reload refused");
    assert!(line.contains("not a regular file"), "{line}");
    // The server answers all along, and an explicit reload is answered, not stuck. Each
    // step has its own hang guard; a stuck one says which, and what the server waits in.
    let admin = s.admin.unwrap();
    assert_eq!(
        guarded(&s, "GET /bob", get(s.addr, "/bob")).await.status,
        200
    );
    assert_eq!(
        guarded(&s, "GET /status", get(admin, "/status"))
            .await
            .status,
        200
    );
    let reload = send(
        admin,
        with_token(request("POST", "/reload", Bytes::new()), &s.token()),
    );
    let r = guarded(&s, "POST /reload", reload).await.unwrap();
    assert_eq!(r.status, 422, "{}", r.body);
    assert!(r.body.contains("not a regular file"), "{}", r.body);
}

/// `f`, or a panic naming `what` and the server's threads when it takes longer than [`GUARD`].
async fn guarded<T>(s: &Proc, what: &str, f: impl Future<Output = T>) -> T {
    match tokio::time::timeout(GUARD, f).await {
        Ok(v) => v,
        Err(_) => panic!("the server froze at {what}:\n{}", s.diagnose()),
    }
}
