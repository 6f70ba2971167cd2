//! The seccomp layer: an allow-list of the system calls a worker makes, as a BPF filter
//! built in-process with `seccompiler` and installed on the calling thread (no TSYNC: the
//! worker has one thread when it locks down, and its later threads inherit the filter).
//!
//! Everything else fails with EPERM instead of killing the worker, so a call missing from
//! the list shows up as an error naming the operation, not as a dead process. `clone3`
//! fails with ENOSYS so that glibc falls back to `clone`, whose flags a filter can read
//! (`clone3` passes them in memory). A syscall of a foreign architecture (the 32-bit
//! entry points of an x86_64 process) kills the process.
//!
//! The list is what wasmtime running already-compiled code, tokio, the Rust standard
//! library and glibc call, plus WASI's filesystem and socket calls; it errs on the side of
//! robustness (a harmless call is allowed even if nothing is known to make it) and is
//! strict where a call reaches outside the process:
//! - no process creation: `clone` only with `CLONE_THREAD` and no namespace flag; no
//!   `fork`, `vfork`, `execve`, `execveat`;
//! - no `ptrace`, `process_vm_*`, `pidfd_*`, `kcmp`; signals only to the worker itself;
//! - no new sockets without a network grant; with one, IPv4 and IPv6 sockets only (no unix
//!   sockets: Landlock only restricts pathname unix sockets from ABI 9, and the resolver's
//!   nscd probe falls back quietly); `socketpair` of unix sockets always (every tokio
//!   runtime with I/O enabled makes one for its signal driver, and a connected pair
//!   reaches nothing outside the process);
//! - no `chmod`, `chown`, extended attributes, `mknod`: Landlock has no right for the first
//!   three, so they would reach files outside the grants;
//! - no System V IPC, `io_uring`, `bpf`, `perf_event_open`, `userfaultfd`, keyrings,
//!   mounts, namespaces, modules, `reboot`, swap, `personality`;
//! - `ioctl`, `fcntl` and `prctl` restricted to the harmless commands the runtime uses
//!   (no `TIOCSTI` into a terminal, no `F_SETOWN` signals to another process).

use std::collections::BTreeMap;

use seccompiler::{
    BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter,
    SeccompRule, TargetArch,
};

use crate::error::{Error, ErrorKind, Result};

/// `prctl(PR_SET_VMA)`: glibc names anonymous mappings (thread stacks) with it.
const PR_SET_VMA: u64 = 0x5356_4d41;

/// Namespace flags of `clone`: refused even together with `CLONE_THREAD`.
const CLONE_NAMESPACES: u64 = (libc::CLONE_NEWNS
    | libc::CLONE_NEWCGROUP
    | libc::CLONE_NEWUTS
    | libc::CLONE_NEWIPC
    | libc::CLONE_NEWUSER
    | libc::CLONE_NEWPID
    | libc::CLONE_NEWNET) as u64;

/// Whether the kernel installs seccomp filters with an errno action. Applies nothing.
pub(super) fn available() -> bool {
    let action: u32 = libc::SECCOMP_RET_ERRNO;
    // SAFETY: SECCOMP_GET_ACTION_AVAIL reads one u32 from the pointer; nothing is changed.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            libc::SECCOMP_GET_ACTION_AVAIL,
            0,
            &action as *const u32,
        )
    };
    rc == 0 && target_arch().is_some()
}

/// Installs the filters on the calling thread: `clone3` -> ENOSYS, then the allow-list
/// (last, because `seccompiler::apply_filter` calls `prctl(PR_SET_NO_NEW_PRIVS)`, which the
/// allow-list does not allow).
pub(super) fn apply(network: bool) -> Result<()> {
    let arch = target_arch().ok_or_else(|| {
        Error::new(
            ErrorKind::Denied,
            format!(
                "the worker sandbox has no seccomp filter for {}",
                std::env::consts::ARCH
            ),
        )
    })?;
    for program in programs(network, std::process::id(), arch).map_err(failed)? {
        seccompiler::apply_filter(&program).map_err(failed)?;
    }
    Ok(())
}

fn failed(e: seccompiler::Error) -> Error {
    Error::new(
        ErrorKind::Io,
        "the worker cannot install its seccomp filter",
    )
    .with_source(e)
}

fn target_arch() -> Option<TargetArch> {
    match std::env::consts::ARCH {
        "x86_64" => Some(TargetArch::x86_64),
        "aarch64" => Some(TargetArch::aarch64),
        _ => None,
    }
}

/// The two BPF programs, in the order they are installed. A refused `clone3` gets ENOSYS
/// whatever the allow-list says: of two filters' results the kernel keeps the one of
/// higher precedence, and ERRNO outranks ALLOW, so the order does not matter for that.
fn programs(
    network: bool,
    pid: u32,
    arch: TargetArch,
) -> std::result::Result<Vec<BpfProgram>, seccompiler::Error> {
    let allow = SeccompFilter::new(
        allow_list(network, pid)?,
        SeccompAction::Errno(libc::EPERM as u32),
        SeccompAction::Allow,
        arch,
    )?;
    let clone3 = SeccompFilter::new(
        BTreeMap::from([(libc::SYS_clone3, Vec::new())]),
        SeccompAction::Allow,
        SeccompAction::Errno(libc::ENOSYS as u32),
        arch,
    )?;
    Ok(vec![clone3.try_into()?, allow.try_into()?])
}

/// An ioctl request number as the filter compares it (`Ioctl` is `c_ulong` with glibc,
/// `c_int` with musl; the kernel reads the low 32 bits).
#[allow(clippy::unnecessary_cast)]
fn ioctl_cmd(request: libc::Ioctl) -> u64 {
    request as u64
}

/// One condition: argument `arg` compared as `op` with `value`.
fn arg(
    arg: u8,
    len: SeccompCmpArgLen,
    op: SeccompCmpOp,
    value: u64,
) -> std::result::Result<SeccompCondition, seccompiler::Error> {
    Ok(SeccompCondition::new(arg, len, op, value)?)
}

/// Rules that allow a call when argument `index` (a 32-bit value) is one of `values`.
fn one_of(index: u8, values: &[u64]) -> std::result::Result<Vec<SeccompRule>, seccompiler::Error> {
    values
        .iter()
        .map(|v| {
            Ok(SeccompRule::new(vec![arg(
                index,
                SeccompCmpArgLen::Dword,
                SeccompCmpOp::Eq,
                *v,
            )?])?)
        })
        .collect()
}

/// The allowed calls: an empty rule list allows the call whatever its arguments; rules
/// allow it when one of them matches.
fn allow_list(
    network: bool,
    pid: u32,
) -> std::result::Result<BTreeMap<i64, Vec<SeccompRule>>, seccompiler::Error> {
    let mut rules: BTreeMap<i64, Vec<SeccompRule>> = BTreeMap::new();
    for nr in ANY_ARGUMENTS.iter().chain(ARCH_ANY_ARGUMENTS) {
        rules.insert(*nr, Vec::new());
    }

    // Threads, never processes.
    rules.insert(
        libc::SYS_clone,
        vec![SeccompRule::new(vec![
            arg(
                0,
                SeccompCmpArgLen::Qword,
                SeccompCmpOp::MaskedEq(libc::CLONE_THREAD as u64),
                libc::CLONE_THREAD as u64,
            )?,
            arg(
                0,
                SeccompCmpArgLen::Qword,
                SeccompCmpOp::MaskedEq(CLONE_NAMESPACES),
                0,
            )?,
        ])?],
    );
    // Refused by the second filter with ENOSYS (glibc then uses `clone`).
    rules.insert(libc::SYS_clone3, Vec::new());

    // Signals to the worker itself only (raise, abort, a thread's own signals).
    let own = one_of(0, &[u64::from(pid)])?;
    for nr in [
        libc::SYS_kill,
        libc::SYS_tgkill,
        libc::SYS_rt_sigqueueinfo,
        libc::SYS_rt_tgsigqueueinfo,
    ] {
        rules.insert(nr, own.clone());
    }
    rules.insert(libc::SYS_prlimit64, one_of(0, &[0, u64::from(pid)])?);

    rules.insert(
        libc::SYS_fcntl,
        one_of(
            1,
            &[
                libc::F_DUPFD,
                libc::F_DUPFD_CLOEXEC,
                libc::F_GETFD,
                libc::F_SETFD,
                libc::F_GETFL,
                libc::F_SETFL,
                libc::F_GETLK,
                libc::F_SETLK,
                libc::F_SETLKW,
                libc::F_OFD_GETLK,
                libc::F_OFD_SETLK,
                libc::F_OFD_SETLKW,
                libc::F_ADD_SEALS,
                libc::F_GET_SEALS,
                libc::F_GETPIPE_SZ,
            ]
            .map(|c| c as u64),
        )?,
    );
    rules.insert(
        libc::SYS_ioctl,
        one_of(
            1,
            &[
                libc::FIONBIO,
                libc::FIOCLEX,
                libc::FIONCLEX,
                libc::FIONREAD,
                libc::TCGETS,
                libc::TIOCGWINSZ,
            ]
            .map(ioctl_cmd),
        )?,
    );
    rules.insert(
        libc::SYS_prctl,
        one_of(
            0,
            &[
                libc::PR_SET_NAME as u64,
                libc::PR_GET_NAME as u64,
                PR_SET_VMA,
                libc::PR_GET_NO_NEW_PRIVS as u64,
                libc::PR_GET_SECCOMP as u64,
                libc::PR_GET_DUMPABLE as u64,
                libc::PR_CAPBSET_READ as u64,
            ],
        )?,
    );

    if network {
        rules.insert(
            libc::SYS_socket,
            one_of(0, &[libc::AF_INET as u64, libc::AF_INET6 as u64])?,
        );
    }
    // An AF_UNIX pair connects only to itself (no name, no peer outside the process), and
    // every tokio runtime with I/O enabled makes one for its signal driver.
    rules.insert(libc::SYS_socketpair, one_of(0, &[libc::AF_UNIX as u64])?);
    Ok(rules)
}

/// Calls allowed whatever their arguments, on every architecture.
const ANY_ARGUMENTS: &[i64] = &[
    // Descriptors: I/O on what the worker holds. Opening by path is Landlock's to judge.
    libc::SYS_read,
    libc::SYS_write,
    libc::SYS_readv,
    libc::SYS_writev,
    libc::SYS_pread64,
    libc::SYS_pwrite64,
    libc::SYS_preadv,
    libc::SYS_pwritev,
    libc::SYS_preadv2,
    libc::SYS_pwritev2,
    libc::SYS_lseek,
    libc::SYS_close,
    libc::SYS_close_range,
    libc::SYS_dup,
    libc::SYS_dup3,
    libc::SYS_openat,
    libc::SYS_openat2,
    libc::SYS_newfstatat,
    libc::SYS_fstat,
    libc::SYS_statx,
    libc::SYS_getdents64,
    libc::SYS_readlinkat,
    libc::SYS_mkdirat,
    libc::SYS_unlinkat,
    libc::SYS_renameat,
    libc::SYS_renameat2,
    libc::SYS_linkat,
    libc::SYS_symlinkat,
    libc::SYS_fsync,
    libc::SYS_fdatasync,
    libc::SYS_ftruncate,
    libc::SYS_truncate,
    libc::SYS_fallocate,
    // WASI's set-times; Landlock does not restrict timestamps (see SECURITY.md).
    libc::SYS_utimensat,
    libc::SYS_faccessat,
    libc::SYS_faccessat2,
    libc::SYS_statfs,
    libc::SYS_fstatfs,
    libc::SYS_getcwd,
    libc::SYS_chdir,
    libc::SYS_fchdir,
    libc::SYS_flock,
    libc::SYS_fadvise64,
    libc::SYS_umask,
    // std::io::copy's fast paths.
    libc::SYS_copy_file_range,
    libc::SYS_sendfile,
    libc::SYS_splice,
    // Waiting and waking.
    libc::SYS_pipe2,
    libc::SYS_eventfd2,
    libc::SYS_epoll_create1,
    libc::SYS_epoll_ctl,
    libc::SYS_epoll_pwait,
    libc::SYS_epoll_pwait2,
    libc::SYS_ppoll,
    libc::SYS_pselect6,
    libc::SYS_timerfd_create,
    libc::SYS_timerfd_settime,
    libc::SYS_timerfd_gettime,
    // Sockets the worker holds (its connection to the host, descriptors passed over it,
    // and with a network grant the sockets it creates). Creating one is filtered.
    libc::SYS_connect,
    libc::SYS_bind,
    libc::SYS_listen,
    libc::SYS_accept,
    libc::SYS_accept4,
    libc::SYS_getsockname,
    libc::SYS_getpeername,
    libc::SYS_setsockopt,
    libc::SYS_getsockopt,
    libc::SYS_sendto,
    libc::SYS_recvfrom,
    libc::SYS_sendmsg,
    libc::SYS_recvmsg,
    libc::SYS_sendmmsg,
    libc::SYS_recvmmsg,
    libc::SYS_shutdown,
    // Memory: wasmtime maps, protects and resets linear memories and code; images of
    // initialized memory live in memfds.
    libc::SYS_brk,
    libc::SYS_mmap,
    libc::SYS_munmap,
    libc::SYS_mprotect,
    libc::SYS_madvise,
    libc::SYS_mremap,
    libc::SYS_msync,
    libc::SYS_mincore,
    libc::SYS_memfd_create,
    libc::SYS_membarrier,
    libc::SYS_pkey_alloc,
    libc::SYS_pkey_free,
    libc::SYS_pkey_mprotect,
    // Threads and time.
    libc::SYS_futex,
    libc::SYS_futex_waitv,
    libc::SYS_set_robust_list,
    libc::SYS_rseq,
    libc::SYS_set_tid_address,
    libc::SYS_exit,
    libc::SYS_exit_group,
    libc::SYS_sched_yield,
    libc::SYS_sched_getaffinity,
    libc::SYS_sched_getparam,
    libc::SYS_sched_getscheduler,
    libc::SYS_getcpu,
    libc::SYS_nanosleep,
    libc::SYS_clock_nanosleep,
    libc::SYS_clock_gettime,
    libc::SYS_clock_getres,
    libc::SYS_gettimeofday,
    libc::SYS_restart_syscall,
    // Signals: handlers (wasmtime's traps), masks, alternate stacks. Sending is filtered.
    libc::SYS_rt_sigaction,
    libc::SYS_rt_sigprocmask,
    libc::SYS_rt_sigreturn,
    libc::SYS_sigaltstack,
    libc::SYS_rt_sigpending,
    libc::SYS_rt_sigsuspend,
    libc::SYS_rt_sigtimedwait,
    // Who and where: read-only.
    libc::SYS_getpid,
    libc::SYS_getppid,
    libc::SYS_gettid,
    libc::SYS_getuid,
    libc::SYS_geteuid,
    libc::SYS_getgid,
    libc::SYS_getegid,
    libc::SYS_getresuid,
    libc::SYS_getresgid,
    libc::SYS_getgroups,
    libc::SYS_getpgid,
    libc::SYS_getsid,
    libc::SYS_uname,
    libc::SYS_sysinfo,
    libc::SYS_getrusage,
    libc::SYS_times,
    libc::SYS_getrlimit,
    libc::SYS_getrandom,
    // No child can exist; waiting for one just fails.
    libc::SYS_wait4,
    libc::SYS_waitid,
];

/// The x86_64 entry points that newer architectures dropped (glibc and std mostly use the
/// `*at` forms, but nothing forbids the old ones and Landlock checks both alike).
#[cfg(target_arch = "x86_64")]
const ARCH_ANY_ARGUMENTS: &[i64] = &[
    libc::SYS_open,
    libc::SYS_stat,
    libc::SYS_lstat,
    libc::SYS_access,
    libc::SYS_readlink,
    libc::SYS_mkdir,
    libc::SYS_rmdir,
    libc::SYS_unlink,
    libc::SYS_rename,
    libc::SYS_link,
    libc::SYS_symlink,
    libc::SYS_getdents,
    libc::SYS_pipe,
    libc::SYS_dup2,
    libc::SYS_poll,
    libc::SYS_select,
    libc::SYS_epoll_wait,
    libc::SYS_epoll_create,
    libc::SYS_eventfd,
    libc::SYS_time,
    libc::SYS_arch_prctl,
    // Shadow stacks for new threads when glibc enables CET (not named in libc yet).
    453,
    // The kernel's uretprobe trampoline (6.11+), if someone traces the worker.
    335,
];

#[cfg(not(target_arch = "x86_64"))]
const ARCH_ANY_ARGUMENTS: &[i64] = &[];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_filters_compile() {
        let arch = target_arch().expect("a supported architecture");
        for network in [false, true] {
            let programs = programs(network, 4242, arch).unwrap();
            assert_eq!(programs.len(), 2);
            // Far below the kernel's 4096 instructions per filter.
            assert!(programs[0].len() < 1024, "{}", programs[0].len());
        }
    }

    #[test]
    fn process_creation_and_tracing_are_not_listed() {
        let rules = allow_list(true, 1).unwrap();
        for nr in [
            libc::SYS_execve,
            libc::SYS_execveat,
            libc::SYS_ptrace,
            libc::SYS_process_vm_readv,
            libc::SYS_process_vm_writev,
            libc::SYS_kcmp,
            libc::SYS_bpf,
            libc::SYS_perf_event_open,
            libc::SYS_mount,
            libc::SYS_umount2,
            libc::SYS_pivot_root,
            libc::SYS_chroot,
            libc::SYS_unshare,
            libc::SYS_setns,
            libc::SYS_keyctl,
            libc::SYS_add_key,
            libc::SYS_request_key,
            libc::SYS_userfaultfd,
            libc::SYS_io_uring_setup,
            libc::SYS_io_uring_enter,
            libc::SYS_io_uring_register,
            libc::SYS_kexec_load,
            libc::SYS_init_module,
            libc::SYS_finit_module,
            libc::SYS_delete_module,
            libc::SYS_reboot,
            libc::SYS_swapon,
            libc::SYS_swapoff,
            libc::SYS_personality,
            libc::SYS_fchmodat,
            libc::SYS_fchownat,
            libc::SYS_setxattr,
            libc::SYS_mknodat,
            libc::SYS_pidfd_open,
            libc::SYS_pidfd_getfd,
            libc::SYS_shmget,
            libc::SYS_tkill,
        ] {
            assert!(!rules.contains_key(&nr), "syscall {nr} is allowed");
        }
        #[cfg(target_arch = "x86_64")]
        for nr in [libc::SYS_fork, libc::SYS_vfork, libc::SYS_chmod] {
            assert!(!rules.contains_key(&nr), "syscall {nr} is allowed");
        }
        assert!(
            !allow_list(false, 1)
                .unwrap()
                .contains_key(&libc::SYS_socket)
        );
    }
}
