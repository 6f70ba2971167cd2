//! A `process` module passes the capability tests of an isolated one, and its worker's
//! kernel sandbox refuses the same things again on its own (the self-check).

use std::io::{Read, Write};
use std::path::PathBuf;

use membrane::{DirMode, Val};

use super::process::probe_in_worker;
use crate::common::*;

/// root/ro/file.txt, root/rw/, root/secret.txt, root/rw/escape -> ../secret.txt
struct Tree {
    _tmp: tempfile::TempDir,
    root: PathBuf,
}

fn tree() -> Tree {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().to_path_buf();
    std::fs::create_dir(root.join("ro")).unwrap();
    std::fs::create_dir(root.join("rw")).unwrap();
    std::fs::write(root.join("ro/file.txt"), "read me").unwrap();
    std::fs::write(root.join("secret.txt"), "top secret").unwrap();
    std::os::unix::fs::symlink("../secret.txt", root.join("rw/escape")).unwrap();
    Tree { _tmp: tmp, root }
}

async fn fs_worker(t: &Tree) -> membrane::App {
    probe_in_worker(|m| {
        m.dir(t.root.join("ro"), "/ro", DirMode::ReadOnly).dir(
            t.root.join("rw"),
            "/rw",
            DirMode::ReadWrite,
        )
    })
    .await
}

async fn refused(app: &membrane::App, func: &str, args: &[Val]) {
    let out = caps(app, func, args).await.unwrap();
    assert!(
        matches!(&out[0], Val::Result(Err(_))),
        "{func}{args:?} was allowed: {out:?}"
    );
}

#[tokio::test]
async fn files_granted_work_and_the_rest_is_refused() {
    let t = tree();
    let app = fs_worker(&t).await;
    let out = caps(&app, "read-file", &[s("/ro/file.txt")]).await.unwrap();
    assert_eq!(result_text(&out), Ok("read me".into()));
    let out = caps(&app, "write-file", &[s("/rw/new.txt"), s("new")])
        .await
        .unwrap();
    assert!(matches!(&out[0], Val::Result(Ok(_))), "{out:?}");
    assert_eq!(
        std::fs::read_to_string(t.root.join("rw/new.txt")).unwrap(),
        "new"
    );
    let secret = t.root.join("secret.txt");
    for path in [
        "/ro/../secret.txt".to_string(),
        "/rw/escape".to_string(),
        secret.display().to_string(),
        "/etc/passwd".to_string(),
    ] {
        refused(&app, "read-file", &[s(&path)]).await;
    }
    refused(&app, "write-file", &[s("/ro/file.txt"), s("changed")]).await;
    refused(&app, "write-file", &[s("/rw/escape"), s("pwned")]).await;
    // A hard link would make a read-only file writable through the read-write grant.
    refused(&app, "hardlink", &[s("/ro/file.txt"), s("/rw/linked.txt")]).await;
    assert!(!t.root.join("rw/linked.txt").exists());
    assert_eq!(std::fs::read_to_string(&secret).unwrap(), "top secret");
    assert_eq!(
        std::fs::read_to_string(t.root.join("ro/file.txt")).unwrap(),
        "read me"
    );
}

#[tokio::test]
async fn no_grant_means_no_filesystem() {
    let app = probe_in_worker(|m| m).await;
    for path in ["/", "/tmp", "."] {
        refused(&app, "list-dir", &[s(path)]).await;
    }
}

/// A listener on 127.0.0.1 that answers one `ping` per connection with `pong`.
fn pong_server() -> std::net::SocketAddr {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    std::thread::spawn(move || {
        for conn in l.incoming() {
            let Ok(mut c) = conn else { return };
            let mut buf = [0u8; 4];
            if c.read_exact(&mut buf).is_ok() {
                let _ = c.write_all(b"pong");
            }
        }
    });
    addr
}

#[tokio::test]
async fn network_only_where_granted() {
    let addr = pong_server();
    let app = probe_in_worker(|m| m).await;
    refused(&app, "connect", &[s(&addr.to_string())]).await;
    let app = probe_in_worker(|m| m.network(addr.to_string())).await;
    let out = caps(&app, "connect", &[s(&addr.to_string())])
        .await
        .unwrap();
    assert_eq!(result_text(&out), Ok("pong".into()));
    // Another port of the same host is not granted.
    let other = pong_server();
    refused(&app, "connect", &[s(&other.to_string())]).await;
}

#[test]
fn guest_output_reaches_the_host_log_with_the_module_name() {
    let tmp = tempfile::tempdir().unwrap();
    let m = write_manifest(
        tmp.path(),
        &format!(
            "[modules.m]\ncomponent = {:?}\nplacement = \"process\"\n",
            guests::PROBE
        ),
    );
    let o = membrane(&[
        "call",
        m.to_str().unwrap(),
        "m",
        &format!("{CAPS}#print"),
        "\"hello from a worker\"",
        "false",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let log = stderr(&o);
    assert!(log.contains("text=\"hello from a worker\""), "{log}");
    assert!(log.contains("module=m"), "{log}");
}

/// The worker's own attempts, after its lockdown, outside WASI: the kernel refuses.
#[tokio::test]
async fn the_kernel_sandbox_refuses_on_its_own() {
    let t = tree();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let app = fs_worker(&t).await;
    let request = serde_json::json!({
        "outside": t.root.join("secret.txt"),
        "inside": t.root.join("ro/file.txt"),
        "ro_dir": t.root.join("ro"),
        "rw_dir": t.root.join("rw"),
        "connect": listener.local_addr().unwrap().to_string(),
    })
    .to_string();
    let answer = membrane::process::workers::worker_self_check(&app, "m", &request).unwrap();
    let v: serde_json::Value = serde_json::from_str(&answer).unwrap();
    assert_eq!(v["inside_read"], "ok", "{v}");
    assert_eq!(v["rw_write"], "ok", "{v}");
    // Landlock: outside the grants, writes into a read-only grant, links out of it.
    assert_eq!(v["outside_open"], "EACCES", "{v}");
    assert_eq!(v["ro_write"], "EACCES", "{v}");
    assert_ne!(v["ro_link"], "ok", "{v}");
    // seccomp: no new socket without a network grant, no new process.
    assert_eq!(v["connect"], "EPERM", "{v}");
    assert_ne!(v["exec"], "ok", "{v}");
    assert!(!t.root.join("rw/probe-link").exists());
}
