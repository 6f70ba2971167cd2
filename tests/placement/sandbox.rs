//! The OS sandbox of a `process` worker, on its own: the `membrane` binary started as the
//! sandbox probe (`MEMBRANE_SANDBOX_PROBE`) locks itself down as a worker would, then tries
//! what a worker must not do. Each refusal comes from the kernel, not from WASI: Landlock
//! answers EACCES (EXDEV for a link), seccomp EPERM.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::Command;

use serde_json::{Value, json};

/// Two grants, a file outside them, and a listener to connect to.
struct Fixture {
    _tmp: tempfile::TempDir,
    ro: PathBuf,
    rw: PathBuf,
    inside: PathBuf,
    outside: PathBuf,
    listener: TcpListener,
}

impl Fixture {
    fn new() -> Fixture {
        let tmp = tempfile::tempdir().unwrap();
        let ro = tmp.path().join("ro");
        let rw = tmp.path().join("rw");
        let secret = tmp.path().join("secret");
        for d in [&ro, &rw, &secret] {
            std::fs::create_dir(d).unwrap();
        }
        let inside = ro.join("inside.txt");
        std::fs::write(&inside, "granted").unwrap();
        let outside = secret.join("outside.txt");
        std::fs::write(&outside, "not granted").unwrap();
        Fixture {
            ro,
            rw,
            inside,
            outside,
            listener: TcpListener::bind("127.0.0.1:0").unwrap(),
            _tmp: tmp,
        }
    }

    /// The probe's spec: `plan` plus the attempts on this fixture.
    fn spec(&self, plan: Value) -> Value {
        json!({
            "plan": plan,
            "inside": self.inside,
            "outside": self.outside,
            "connect": self.listener.local_addr().unwrap().to_string(),
            "resolve": "localhost",
        })
    }

    fn plan(&self, network: bool, allow_weaker: bool) -> Value {
        json!({
            "ro": [self.ro],
            "rw": [self.rw],
            "network": network,
            "names": network,
            "data_limit": 1u64 << 32,
            "files": 256,
            "allow_weaker": allow_weaker,
        })
    }
}

/// Runs the probe; returns its exit status and the JSON line it printed.
fn probe(spec: &Value, landlock_off: bool) -> (i32, Value) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_membrane"));
    cmd.env("MEMBRANE_SANDBOX_PROBE", spec.to_string())
        .env_remove("MEMBRANE_SANDBOX_LANDLOCK");
    if landlock_off {
        cmd.env("MEMBRANE_SANDBOX_LANDLOCK", "off");
    }
    let out = cmd.output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let report = serde_json::from_str(stdout.trim()).unwrap_or_else(|e| {
        panic!(
            "the probe printed no JSON ({e}): stdout {stdout:?}, stderr {:?}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (out.status.code().unwrap_or(-1), report)
}

fn field<'a>(report: &'a Value, name: &str) -> &'a str {
    report[name]
        .as_str()
        .unwrap_or_else(|| panic!("no `{name}` in {report}"))
}

#[test]
fn the_kernel_refuses_what_a_worker_without_network_must_not_do() {
    let f = Fixture::new();
    let (code, r) = probe(&f.spec(f.plan(false, false)), false);
    assert_eq!(
        code, 0,
        "this kernel must offer Landlock (ABI >= 5) and seccomp: {r}"
    );
    let applied = &r["applied"];
    assert_eq!(applied["landlock"], "full", "{r}");
    assert!(applied["landlock_abi"].as_u64().unwrap() >= 5, "{r}");
    assert_eq!(applied["seccomp"], true, "{r}");
    assert_eq!(applied["no_new_privs"], true, "{r}");
    assert_eq!(applied["missing"], json!([]), "{r}");

    assert_eq!(field(&r, "inside_read"), "ok");
    assert_eq!(field(&r, "rw_write"), "ok");
    // Landlock: a file outside the grants, a write into a read-only grant, a hard link
    // that would make a read-only file writable.
    assert_eq!(field(&r, "outside_open"), "EACCES");
    assert_eq!(field(&r, "ro_write"), "EACCES");
    assert_eq!(field(&r, "ro_link"), "EXDEV");
    // seccomp: no new socket, no new process, no exec, no signal out.
    assert_eq!(field(&r, "connect"), "EPERM");
    assert_eq!(field(&r, "exec"), "EPERM");
    assert_eq!(field(&r, "execve"), "EPERM");
    assert_eq!(field(&r, "signal_parent"), "EPERM");
    // Landlock's TCP rule alone, on a socket made before the lockdown.
    if applied["landlock_abi"].as_u64().unwrap() >= 4 {
        assert_eq!(field(&r, "connect_held"), "EACCES");
    }
    // Without a named destination, the resolver's files are out of reach.
    assert_ne!(field(&r, "resolve"), "ok");
    assert_eq!(field(&r, "thread"), "ok");
    assert_eq!(r["limits"]["core"], 0, "{r}");
    assert_eq!(r["limits"]["data"], 1u64 << 32, "{r}");
    assert_eq!(r["limits"]["files"], 256, "{r}");

    assert!(!f.ro.join("probe-write").exists());
    assert!(!f.rw.join("probe-link").exists());
}

#[test]
fn a_network_grant_allows_sockets_and_names_but_nothing_else() {
    let f = Fixture::new();
    let (code, r) = probe(&f.spec(f.plan(true, false)), false);
    assert_eq!(code, 0, "{r}");
    assert_eq!(r["applied"]["missing"], json!([]), "{r}");
    assert_eq!(field(&r, "connect"), "ok");
    assert_eq!(field(&r, "connect_held"), "ok");
    assert_eq!(field(&r, "resolve"), "ok");
    assert_eq!(field(&r, "outside_open"), "EACCES");
    assert_eq!(field(&r, "ro_write"), "EACCES");
    assert_eq!(field(&r, "exec"), "EPERM");
    assert_eq!(field(&r, "execve"), "EPERM");
    assert_eq!(field(&r, "signal_parent"), "EPERM");
    assert_eq!(field(&r, "thread"), "ok");
}

#[test]
fn without_landlock_the_module_is_refused_unless_the_manifest_accepts_it() {
    let f = Fixture::new();
    let (code, r) = probe(&f.spec(f.plan(false, false)), true);
    assert_eq!(code, 3, "{r}");
    assert_eq!(field(&r, "kind"), "denied");
    assert!(
        field(&r, "error").contains("allow_weaker_sandbox = true"),
        "{r}"
    );
    assert!(r.get("outside_open").is_none(), "nothing was tried: {r}");
}

#[test]
fn allow_weaker_runs_with_the_layers_left_and_says_which_are_missing() {
    let f = Fixture::new();
    let (code, r) = probe(&f.spec(f.plan(false, true)), true);
    assert_eq!(code, 0, "{r}");
    let applied = &r["applied"];
    assert_eq!(applied["landlock"], "none", "{r}");
    assert_eq!(applied["landlock_abi"], 0, "{r}");
    assert_eq!(
        applied["missing"],
        json!(["landlock-filesystem", "landlock-network"]),
        "{r}"
    );
    assert_eq!(applied["seccomp"], true, "{r}");
    // The override really switches Landlock off: the file outside the grants opens ...
    assert_eq!(field(&r, "outside_open"), "ok");
    // ... while seccomp still refuses sockets and processes.
    assert_eq!(field(&r, "connect"), "EPERM");
    assert_eq!(field(&r, "exec"), "EPERM");
    assert_eq!(field(&r, "execve"), "EPERM");
    assert_eq!(field(&r, "thread"), "ok");
}
