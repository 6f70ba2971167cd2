//! Issue 22, class 4: a descriptor the host inherited does not reach its worker process.
//! Landlock does not restrict descriptors that are already open, so a secret file the host
//! was started with would be readable by a compromised worker that had it.

use std::os::fd::AsRawFd;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::common::*;

/// The descriptor number the host is started with on the secret file.
const INHERITED: i32 = 7;

/// The processes whose parent is `pid`.
fn children(pid: u32) -> Vec<u32> {
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|p| {
            std::fs::read_to_string(format!("/proc/{p}/stat")).is_ok_and(|stat| {
                let after = stat.rsplit_once(')').map_or("", |(_, a)| a);
                after.split_whitespace().nth(1) == Some(&pid.to_string())
            })
        })
        .collect()
}

/// Whether `pid` has installed its seccomp filter: a worker that has locked itself down,
/// long after its descriptors were set up for it.
fn locked_down(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .is_ok_and(|s| s.lines().any(|l| l == "Seccomp:\t2"))
}

/// What each open descriptor of `pid` refers to.
fn descriptors(pid: u32) -> Vec<(String, PathBuf)> {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .filter_map(|e| {
            let e = e.ok()?;
            Some((
                e.file_name().to_string_lossy().into_owned(),
                std::fs::read_link(e.path()).ok()?,
            ))
        })
        .collect()
}

/// Starts `membrane call` on a `process` module whose call sleeps, with descriptor
/// [`INHERITED`] open on `secret` (without close-on-exec, as a parent that leaks one does).
fn host_holding(secret: &Path, manifest: &Path) -> std::process::Child {
    let file = std::fs::File::open(secret).unwrap();
    let fd = file.as_raw_fd();
    let mut cmd = membrane_command();
    cmd.args([
        "call",
        manifest.to_str().unwrap(),
        "m",
        &format!("{CAPS}#sleep-ms"),
        "60000",
    ])
    .stdin(Stdio::null())
    .stdout(Stdio::null())
    .stderr(Stdio::null());
    // SAFETY: between fork and exec only dup2 and fcntl run, both async-signal-safe.
    unsafe {
        cmd.pre_exec(move || {
            let r = if fd == INHERITED {
                libc::fcntl(fd, libc::F_SETFD, 0)
            } else {
                libc::dup2(fd, INHERITED)
            };
            if r < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let child = cmd.spawn().expect("membrane starts");
    drop(file);
    child
}

#[test]
fn a_descriptor_the_host_inherited_does_not_reach_its_worker() {
    let tmp = tempfile::tempdir().unwrap();
    let secret = tmp.path().join("secret.txt");
    std::fs::write(&secret, "the host's secret").unwrap();
    let manifest = write_manifest(
        tmp.path(),
        &format!(
            "[modules.m]\ncomponent = {:?}\nplacement = \"process\"\n",
            guests::PROBE
        ),
    );
    let mut host = host_holding(&secret, &manifest);
    let until = Instant::now() + Duration::from_secs(60);
    let worker = loop {
        if let Some(w) = children(host.id()).into_iter().find(|p| locked_down(*p)) {
            break w;
        }
        if let Ok(Some(status)) = host.try_wait() {
            panic!("the host ended before its worker was seen: {status}");
        }
        assert!(Instant::now() < until, "no locked-down worker appeared");
        std::thread::sleep(Duration::from_millis(10));
    };
    let host_fds = descriptors(host.id());
    let worker_fds = descriptors(worker);
    let _ = host.kill();
    let _ = host.wait();
    // The host does hold the secret: the test is about what its worker gets.
    assert!(
        host_fds
            .iter()
            .any(|(n, p)| n == &INHERITED.to_string() && p == &secret),
        "the host lacks fd {INHERITED}: {host_fds:?}"
    );
    assert!(
        !worker_fds.iter().any(|(_, p)| p == &secret),
        "the worker holds the host's secret: {worker_fds:?}"
    );
    // Beyond stdio and its two sockets, the worker holds only what it opened itself.
    for (n, p) in &worker_fds {
        let n: i32 = n.parse().unwrap();
        assert!(
            n <= 4 || !p.starts_with(tmp.path()),
            "fd {n} -> {}",
            p.display()
        );
    }
}
