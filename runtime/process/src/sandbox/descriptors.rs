//! The descriptors a worker starts with: its standard streams and the protocol's two
//! sockets, nothing else.
//!
//! Landlock restricts what a process may open, not what it holds: a descriptor the host
//! inherited (a secret file its parent left open, a socket) would stay usable in a worker
//! that got it. Every descriptor the host opens itself is close-on-exec (std, rustix and
//! tokio open them so, and Membrane's own `open`, `socket`, `dup` and `recvmsg` calls ask
//! for it), but the host cannot know what it was started with. So in the worker's child,
//! between fork and exec, every other descriptor is marked close-on-exec, and the exec that
//! starts the worker program closes them. Marking rather than closing leaves std's own
//! close-on-exec pipe, which reports a failed exec to the host, working until the exec.
//! The child is a copy of a multi-threaded host there: only system calls run, never an
//! allocation.

use std::io;
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};

use rustix::fs::{Mode, OFlags, RawDir};
use rustix::io::FdFlags;

/// Marks every descriptor numbered `first` or above close-on-exec, in a child between fork
/// and exec: with close_range(2) where the kernel has its `CLOSE_RANGE_CLOEXEC` (Linux
/// 5.11); otherwise each descriptor /proc/self/fd lists; without /proc, every number up to
/// the descriptor limit.
pub(crate) fn close_on_exec_from(first: u32) -> io::Result<()> {
    // SAFETY: close_range takes plain integers and touches no memory.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_close_range,
            first,
            u32::MAX,
            libc::CLOSE_RANGE_CLOEXEC,
        )
    };
    if rc == 0 {
        return Ok(());
    }
    match mark_listed(first) {
        Ok(()) => Ok(()),
        Err(_) => mark_each(first),
    }
}

/// Marks the descriptors /proc/self/fd lists from `first` up, reading it with a buffer on
/// the stack.
fn mark_listed(first: u32) -> io::Result<()> {
    let dir = rustix::fs::open(
        c"/proc/self/fd",
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    let own = dir.as_raw_fd();
    let mut space = [MaybeUninit::<u8>::uninit(); 2048];
    let mut entries = RawDir::new(dir.as_fd(), &mut space);
    while let Some(entry) = entries.next() {
        let entry = entry?;
        if let Some(fd) = number(entry.file_name().to_bytes())
            && fd >= first
            && fd as i32 != own
        {
            mark(fd);
        }
    }
    Ok(())
}

/// Marks every number from `first` up to the soft descriptor limit (at most 2^20: this
/// runs only on a kernel before 5.11 without /proc, and a limit raised to its maximum
/// would take seconds).
fn mark_each(first: u32) -> io::Result<()> {
    let limit = rustix::process::getrlimit(rustix::process::Resource::Nofile)
        .current
        .unwrap_or(u64::MAX)
        .min(1 << 20) as u32;
    for fd in first..limit {
        mark(fd);
    }
    Ok(())
}

fn mark(fd: u32) {
    // SAFETY: the number is only used for this call; one that is not open fails with
    // EBADF, which changes nothing.
    let fd = unsafe { BorrowedFd::borrow_raw(fd as i32) };
    let _ = rustix::io::fcntl_setfd(fd, FdFlags::CLOEXEC);
}

/// A directory entry's name as a descriptor number (`.` and `..` are none).
fn number(name: &[u8]) -> Option<u32> {
    if name.is_empty() {
        return None;
    }
    name.iter().try_fold(0u32, |n, b| match b {
        b'0'..=b'9' => n.checked_mul(10)?.checked_add(u32::from(b - b'0')),
        _ => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_numbers_or_none() {
        assert_eq!(number(b"17"), Some(17));
        assert_eq!(number(b"."), None);
        assert_eq!(number(b".."), None);
        assert_eq!(number(b""), None);
        assert_eq!(number(b"99999999999"), None);
    }

    #[test]
    fn every_fallback_marks_what_is_open() {
        let flags = |fd: &std::fs::File| rustix::io::fcntl_getfd(fd).unwrap();
        for marker in [mark_listed as fn(u32) -> io::Result<()>, mark_each] {
            let file = std::fs::File::open("/proc/self/status").unwrap();
            let dup = rustix::io::fcntl_dupfd_cloexec(&file, 0).unwrap();
            rustix::io::fcntl_setfd(&dup, FdFlags::empty()).unwrap();
            let dup = std::fs::File::from(dup);
            assert!(!flags(&dup).contains(FdFlags::CLOEXEC));
            let n = dup.as_raw_fd() as u32;
            marker(n).unwrap();
            assert!(flags(&dup).contains(FdFlags::CLOEXEC));
        }
    }
}
