//! A test probe of the sandbox: it tries, after the lockdown, what a worker must not be
//! able to do, and reports what the kernel answered.
//!
//! Two entry points:
//! - [`main`]: a process started with `MEMBRANE_SANDBOX_PROBE=<json>` (see
//!   `membrane::worker::main_if_worker`) locks itself down with the spec's plan, as a worker
//!   would, then runs the attempts and prints one JSON line;
//! - [`check`]: a worker that is locked down already runs the attempts when the host asks
//!   (tests only), and answers with the same JSON.
//!
//! Outcomes are `"ok"` or the errno's name (`"EACCES"`, `"EPERM"`, `"EXDEV"`), so a test
//! can tell which layer refused: Landlock answers EACCES (EXDEV for a link that would gain
//! rights), seccomp EPERM.

use std::ffi::CString;
use std::fs::File;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use rustix::process::{Resource, getrlimit};
use serde::{Deserialize, Serialize};

use super::{Applied, Plan, lock_down};

/// What to try; every field is optional, an absent one is not tried.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Attempts {
    /// An existing file outside the grants: opening it must fail.
    outside: Option<PathBuf>,
    /// A file beneath a granted directory (a read-only one, for `ro_link`): reading it
    /// must work.
    inside: Option<PathBuf>,
    /// A TCP address (`127.0.0.1:port`) to connect to, as `TcpStream::connect` does
    /// (a new socket, then connect).
    connect: Option<String>,
    /// A read-only grant to try to create a file in (the plan's first by default).
    ro_dir: Option<PathBuf>,
    /// A read-write grant to create a file in, and to hard-link `inside` into (the plan's
    /// first by default).
    rw_dir: Option<PathBuf>,
    /// A name to look up with the system resolver.
    resolve: Option<String>,
}

/// The spec of [`main`]: the plan to apply and the attempts.
#[derive(Debug, Deserialize)]
struct Spec {
    plan: Plan,
    #[serde(flatten)]
    attempts: Attempts,
}

/// What the kernel answered to each attempt: `"ok"` or an errno name.
#[derive(Debug, Default, Serialize)]
struct Outcomes {
    #[serde(skip_serializing_if = "Option::is_none")]
    inside_read: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    outside_open: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    ro_write: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    rw_write: Option<String>,
    /// A hard link of `inside` into the read-write grant: it would make a read-only file
    /// writable.
    #[serde(skip_serializing_if = "Option::is_none")]
    ro_link: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    connect: Option<String>,
    /// Connecting a socket created before the lockdown: seccomp lets it through, so this
    /// is Landlock's TCP rule alone ([`main`] only).
    #[serde(skip_serializing_if = "Option::is_none")]
    connect_held: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    resolve: Option<String>,
    /// `std::process::Command` running /bin/true (a new process, then exec).
    #[serde(skip_serializing_if = "Option::is_none")]
    exec: Option<String>,
    /// `execve` of /bin/true from the probe itself ([`main`] only; tried last: if it
    /// worked, the probe would be gone and print nothing).
    #[serde(skip_serializing_if = "Option::is_none")]
    execve: Option<String>,
    /// `kill(parent, 0)`: a signal to a process outside the sandbox.
    #[serde(skip_serializing_if = "Option::is_none")]
    signal_parent: Option<String>,
    /// Starting and joining a thread: must work.
    #[serde(skip_serializing_if = "Option::is_none")]
    thread: Option<String>,
    /// The resource limits in force (hard limits; `null` is unlimited).
    limits: Limits,
}

/// Hard resource limits, as the process sees them.
#[derive(Debug, Default, Serialize)]
struct Limits {
    core: Option<u64>,
    data: Option<u64>,
    files: Option<u64>,
}

/// The line [`main`] prints.
#[derive(Serialize)]
struct Report {
    applied: Applied,
    #[serde(flatten)]
    outcomes: Outcomes,
}

/// Runs the probe described by `spec` (JSON); returns the process's exit status: 0 after
/// the report, 2 for a bad spec, 3 when the lockdown was refused (`{"error", "kind"}`).
///
/// Everything before [`lock_down`] runs on the one thread the process has.
pub(crate) fn main(spec: &str) -> i32 {
    let spec: Spec = match serde_json::from_str(spec) {
        Ok(s) => s,
        Err(e) => {
            println!(
                "{}",
                serde_json::json!({ "error": format!("bad probe spec: {e}") })
            );
            return 2;
        }
    };
    // A socket made before the lockdown, to try Landlock's TCP rule without seccomp's.
    let held = spec
        .attempts
        .connect
        .as_deref()
        .and_then(|a| a.parse::<SocketAddr>().ok())
        .and_then(|addr| new_tcp_socket(&addr).ok().map(|fd| (fd, addr)));
    let applied = match lock_down(&spec.plan) {
        Ok(a) => a,
        Err(e) => {
            println!(
                "{}",
                serde_json::json!({ "error": crate::error::chain(&e), "kind": e.kind().as_str() })
            );
            return 3;
        }
    };
    let mut attempts = spec.attempts;
    attempts.ro_dir = attempts.ro_dir.or_else(|| spec.plan.ro.first().cloned());
    attempts.rw_dir = attempts.rw_dir.or_else(|| spec.plan.rw.first().cloned());
    let mut outcomes = attempt(&attempts);
    if let Some((fd, addr)) = held {
        outcomes.connect_held = Some(outcome(connect_fd(&fd, &addr)));
    }
    outcomes.execve = Some(outcome(execve_true()));
    let report = Report { applied, outcomes };
    println!(
        "{}",
        serde_json::to_string(&report).expect("plain data serializes")
    );
    0
}

/// Runs the attempts of `spec` (JSON, the fields of [`main`]'s spec without `plan`) in a
/// process that is locked down already; returns the outcomes as JSON.
pub(crate) fn check(spec: &str) -> String {
    match serde_json::from_str::<Attempts>(spec) {
        Ok(a) => serde_json::to_string(&attempt(&a)).expect("plain data serializes"),
        Err(e) => serde_json::json!({ "error": format!("bad probe spec: {e}") }).to_string(),
    }
}

/// The attempts both entry points make.
fn attempt(a: &Attempts) -> Outcomes {
    let mut o = Outcomes::default();
    if let Some(inside) = &a.inside {
        o.inside_read = Some(outcome(read(inside)));
    }
    if let Some(outside) = &a.outside {
        o.outside_open = Some(outcome(File::open(outside)));
    }
    if let Some(dir) = &a.ro_dir {
        o.ro_write = Some(outcome(create(&dir.join("probe-write"))));
    }
    if let Some(dir) = &a.rw_dir {
        o.rw_write = Some(outcome(create(&dir.join("probe-write"))));
        if let Some(inside) = &a.inside {
            o.ro_link = Some(outcome(std::fs::hard_link(inside, dir.join("probe-link"))));
        }
    }
    if let Some(addr) = &a.connect {
        o.connect = Some(outcome(TcpStream::connect(addr.as_str())));
    }
    if let Some(name) = &a.resolve {
        o.resolve = Some(outcome((name.as_str(), 0).to_socket_addrs().and_then(
            |mut addrs| {
                addrs
                    .next()
                    .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::NotFound, "no address"))
            },
        )));
    }
    o.exec = Some(outcome(std::process::Command::new("/bin/true").status()));
    // SAFETY: getppid and kill with signal 0 (existence and permission check only).
    o.signal_parent = Some(outcome(cvt(unsafe { libc::kill(libc::getppid(), 0) })));
    o.thread = Some(outcome(
        std::thread::Builder::new()
            .name("membrane-probe".into())
            .spawn(|| 7)
            .and_then(|t| {
                t.join()
                    .map_err(|_| std::io::Error::other("the thread panicked"))
            }),
    ));
    o.limits = Limits {
        core: getrlimit(Resource::Core).maximum,
        data: getrlimit(Resource::Data).maximum,
        files: getrlimit(Resource::Nofile).maximum,
    };
    o
}

fn read(path: &Path) -> std::io::Result<()> {
    let mut s = Vec::new();
    File::open(path)?.read_to_end(&mut s).map(drop)
}

fn create(path: &Path) -> std::io::Result<()> {
    File::create(path)?.write_all(b"probe")
}

/// `"ok"`, or the errno's name (`"errno 97"` for one without a name here, the message
/// for an error without an errno, such as a failed name lookup).
fn outcome<T>(r: std::io::Result<T>) -> String {
    let e = match r {
        Ok(_) => return "ok".to_string(),
        Err(e) => e,
    };
    let Some(n) = e.raw_os_error() else {
        return format!("error: {e}");
    };
    let name = match n {
        libc::EPERM => "EPERM",
        libc::ENOENT => "ENOENT",
        libc::ESRCH => "ESRCH",
        libc::EACCES => "EACCES",
        libc::EEXIST => "EEXIST",
        libc::EXDEV => "EXDEV",
        libc::ENOTDIR => "ENOTDIR",
        libc::EISDIR => "EISDIR",
        libc::EINVAL => "EINVAL",
        libc::EMFILE => "EMFILE",
        libc::EROFS => "EROFS",
        libc::EAGAIN => "EAGAIN",
        libc::ENOSYS => "ENOSYS",
        libc::ELOOP => "ELOOP",
        libc::EAFNOSUPPORT => "EAFNOSUPPORT",
        libc::EADDRNOTAVAIL => "EADDRNOTAVAIL",
        libc::ENETUNREACH => "ENETUNREACH",
        libc::ECONNREFUSED => "ECONNREFUSED",
        libc::EHOSTUNREACH => "EHOSTUNREACH",
        libc::ETIMEDOUT => "ETIMEDOUT",
        _ => return format!("errno {n}"),
    };
    name.to_string()
}

fn cvt(rc: libc::c_int) -> std::io::Result<()> {
    if rc < 0 {
        Err(std::io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// A TCP socket, not connected.
fn new_tcp_socket(addr: &SocketAddr) -> std::io::Result<OwnedFd> {
    let family = if addr.is_ipv4() {
        libc::AF_INET
    } else {
        libc::AF_INET6
    };
    // SAFETY: plain integer arguments.
    let fd = unsafe { libc::socket(family, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: a new descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// `connect(2)` of `fd` to `addr`.
fn connect_fd(fd: &OwnedFd, addr: &SocketAddr) -> std::io::Result<()> {
    match addr {
        SocketAddr::V4(v4) => {
            let sa = libc::sockaddr_in {
                sin_family: libc::AF_INET as libc::sa_family_t,
                sin_port: v4.port().to_be(),
                sin_addr: libc::in_addr {
                    s_addr: u32::from(*v4.ip()).to_be(),
                },
                sin_zero: [0; 8],
            };
            // SAFETY: a valid sockaddr_in and its size.
            cvt(unsafe {
                libc::connect(
                    fd.as_raw_fd(),
                    (&sa as *const libc::sockaddr_in).cast(),
                    size_of::<libc::sockaddr_in>() as libc::socklen_t,
                )
            })
        }
        SocketAddr::V6(v6) => {
            let sa = libc::sockaddr_in6 {
                sin6_family: libc::AF_INET6 as libc::sa_family_t,
                sin6_port: v6.port().to_be(),
                sin6_flowinfo: v6.flowinfo(),
                sin6_addr: libc::in6_addr {
                    s6_addr: v6.ip().octets(),
                },
                sin6_scope_id: v6.scope_id(),
            };
            // SAFETY: a valid sockaddr_in6 and its size.
            cvt(unsafe {
                libc::connect(
                    fd.as_raw_fd(),
                    (&sa as *const libc::sockaddr_in6).cast(),
                    size_of::<libc::sockaddr_in6>() as libc::socklen_t,
                )
            })
        }
    }
}

/// `execve("/bin/true")` in this process: returns only if it was refused.
fn execve_true() -> std::io::Result<()> {
    let path = CString::new("/bin/true").expect("no NUL");
    let argv = [path.as_ptr(), std::ptr::null()];
    let envp = [std::ptr::null()];
    // SAFETY: NUL-terminated strings in NULL-terminated arrays that outlive the call.
    cvt(unsafe { libc::execve(path.as_ptr(), argv.as_ptr(), envp.as_ptr()) })
}
