//! Shared-memory rings between the host and a worker: a connection's bytes without system
//! calls.
//!
//! Each connection gets a memfd the host creates, sizes and seals (it can then never shrink
//! or grow, so neither side's mapping can fault), mapped by both sides. It holds two
//! single-producer single-consumer byte rings, one per direction. The framed stream of the
//! connection (`channel.rs`) goes through them instead of the socket; the socket stays for
//! what it does well: waking a side that parked (one byte, a doorbell) and telling it that
//! the other side is gone (end of file).
//!
//! A ring's indices are free-running `u64` byte counts: `tail` (written by the producer)
//! and `head` (by the consumer). A side that parks sets its flag, then checks the ring
//! once more before it sleeps; a side that moves an index then checks the other's flag and
//! rings the doorbell when it is set. Both pairs (store, fence, load) are sequentially
//! consistent, so one of the two always sees the other: no wake-up is lost.
//!
//! The host does not trust the worker with this memory either. It keeps its own copy of
//! the indices it writes, reads the worker's only to learn how far it may go, and refuses
//! (breaks the connection) any value that claims more than the ring holds or moves
//! backwards. Bytes are copied out of the shared memory before anything looks at them, so
//! the worker changing them afterwards changes nothing. Every access to the mapping is an
//! atomic one: the other side is another process whose writes race ours by design.

use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU8, AtomicU32, AtomicU64, Ordering, fence};
use std::time::Duration;

/// Bytes of one direction's ring: two of them per connection. A frame larger than this
/// crosses in pieces, the writer waiting for the reader to make room.
pub(crate) const CAPACITY: usize = 64 << 10;

/// A direction's control block: its own cache lines, apart from the data.
const CONTROL: usize = 256;
/// Offsets inside a control block.
const TAIL: usize = 0;
const HEAD: usize = 64;
const READER_PARKED: usize = 128;
const WRITER_PARKED: usize = 192;
/// Set by a direction's reader when it lets its end go: its writer must not think bytes it
/// writes then were delivered (the worker's last log lines go to the control socket then).
const READER_GONE: usize = 224;

/// One direction: its control block, then its data.
const DIRECTION: usize = CONTROL + CAPACITY;
/// The memfd's size: host -> worker, then worker -> host.
pub(crate) const SIZE: usize = 2 * DIRECTION;

/// Which end of the connection this is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Side {
    Host,
    Worker,
}

/// Why a ring cannot be used.
#[derive(Debug)]
pub(crate) struct Corrupt(pub String);

/// A connection's two rings, mapped.
pub(crate) struct Rings {
    base: NonNull<u8>,
    /// The direction this side writes, and the one it reads.
    tx: usize,
    rx: usize,
    /// This side's own copies of the indices it owns.
    tail: u64,
    head: u64,
    _memfd: OwnedFd,
}

// SAFETY: the mapping is owned by `Rings` (unmapped in `Drop`), every access to it is an
// atomic operation through raw pointers, and a `Rings` is used by one thread at a time
// (`&mut self` for everything that moves an index).
unsafe impl Send for Rings {}

impl Rings {
    /// Makes the shared memory of one connection: a sealed memfd of [`SIZE`] bytes, mapped.
    /// The host calls this and passes the memfd to the worker.
    pub(crate) fn create() -> io::Result<(Rings, OwnedFd)> {
        use rustix::fs::{MemfdFlags, SealFlags};
        let fd = rustix::fs::memfd_create(
            "membrane-ring",
            MemfdFlags::CLOEXEC | MemfdFlags::ALLOW_SEALING,
        )?;
        rustix::fs::ftruncate(&fd, SIZE as u64)?;
        rustix::fs::fcntl_add_seals(&fd, SealFlags::SHRINK | SealFlags::GROW | SealFlags::SEAL)?;
        let theirs = fd.as_fd().try_clone_to_owned()?;
        Ok((Rings::map(fd, Side::Host)?, theirs))
    }

    /// Maps the rings of a memfd the host made (the worker's side); checks that it is the
    /// size the host makes.
    pub(crate) fn open(fd: OwnedFd) -> io::Result<Rings> {
        let size = rustix::fs::fstat(&fd)?.st_size;
        if size != SIZE as i64 {
            return Err(io::Error::other(format!(
                "a ring memfd of {size} bytes, not {SIZE}"
            )));
        }
        Rings::map(fd, Side::Worker)
    }

    fn map(fd: OwnedFd, side: Side) -> io::Result<Rings> {
        use rustix::mm::{MapFlags, ProtFlags};
        // SAFETY: a new shared mapping of the whole memfd, at an address the kernel picks;
        // no existing memory is touched. The memfd is sealed against shrinking (the host
        // sealed it before anyone else had it), so no access within SIZE can fault.
        let ptr = unsafe {
            rustix::mm::mmap(
                std::ptr::null_mut(),
                SIZE,
                ProtFlags::READ | ProtFlags::WRITE,
                MapFlags::SHARED,
                &fd,
                0,
            )?
        };
        let base = NonNull::new(ptr.cast::<u8>()).ok_or_else(|| io::Error::other("mmap"))?;
        let (tx, rx) = match side {
            Side::Host => (0, DIRECTION),
            Side::Worker => (DIRECTION, 0),
        };
        let mut rings = Rings {
            base,
            tx,
            rx,
            tail: 0,
            head: 0,
            _memfd: fd,
        };
        // Both start where the memory says (zero in a new memfd, which only the host has
        // written to): a worker's view of a fresh connection.
        rings.tail = rings.u64_at(tx + TAIL).load(Ordering::Acquire);
        rings.head = rings.u64_at(rx + HEAD).load(Ordering::Acquire);
        Ok(rings)
    }

    fn u64_at(&self, offset: usize) -> &AtomicU64 {
        debug_assert!(offset.is_multiple_of(8) && offset + 8 <= SIZE);
        // SAFETY: inside the mapping, 8-aligned (the mapping is page-aligned and every
        // control offset is a multiple of 64); shared memory is only accessed atomically.
        unsafe { AtomicU64::from_ptr(self.base.as_ptr().add(offset).cast()) }
    }

    fn u32_at(&self, offset: usize) -> &AtomicU32 {
        debug_assert!(offset.is_multiple_of(4) && offset + 4 <= SIZE);
        // SAFETY: as in `u64_at`.
        unsafe { AtomicU32::from_ptr(self.base.as_ptr().add(offset).cast()) }
    }

    fn byte_at(&self, offset: usize) -> &AtomicU8 {
        debug_assert!(offset < SIZE);
        // SAFETY: inside the mapping; atomics of one byte need no alignment.
        unsafe { AtomicU8::from_ptr(self.base.as_ptr().add(offset)) }
    }

    /// Copies what the peer wrote into `out`, up to its length; `Ok(0)` when the ring is
    /// empty. Returns whether the peer waits for room (a doorbell is then due).
    pub(crate) fn read(&mut self, out: &mut [u8]) -> Result<(usize, bool), Corrupt> {
        let tail = self.u64_at(self.rx + TAIL).load(Ordering::Acquire);
        let have = tail.wrapping_sub(self.head);
        if have > CAPACITY as u64 {
            return Err(Corrupt(format!(
                "its ring claims {have} bytes written past what was read (at most {CAPACITY})"
            )));
        }
        let n = (have as usize).min(out.len());
        if n == 0 {
            return Ok((0, false));
        }
        let data = self.rx + CONTROL;
        let start = (self.head % CAPACITY as u64) as usize;
        let first = n.min(CAPACITY - start);
        let (a, b) = out[..n].split_at_mut(first);
        for (at, part) in [(data + start, a), (data, b)] {
            for (i, byte) in part.iter_mut().enumerate() {
                *byte = self.byte_at(at + i).load(Ordering::Relaxed);
            }
        }
        self.head += n as u64;
        self.u64_at(self.rx + HEAD)
            .store(self.head, Ordering::Release);
        fence(Ordering::SeqCst);
        let writer_waits = self.u32_at(self.rx + WRITER_PARKED).load(Ordering::Relaxed) != 0;
        Ok((n, writer_waits))
    }

    /// Copies as much of `bytes` as there is room for; returns how much, and whether the
    /// peer is parked waiting for bytes (a doorbell is then due).
    pub(crate) fn write(&mut self, bytes: &[u8]) -> Result<(usize, bool), Corrupt> {
        let head = self.u64_at(self.tx + HEAD).load(Ordering::Acquire);
        let used = self.tail.wrapping_sub(head);
        if used > CAPACITY as u64 {
            return Err(Corrupt(format!(
                "its ring claims to have read {} bytes more than were written",
                head.wrapping_sub(self.tail)
            )));
        }
        let n = (CAPACITY - used as usize).min(bytes.len());
        if n == 0 {
            return Ok((0, false));
        }
        let data = self.tx + CONTROL;
        let start = (self.tail % CAPACITY as u64) as usize;
        let first = n.min(CAPACITY - start);
        let (a, b) = bytes[..n].split_at(first);
        for (at, part) in [(data + start, a), (data, b)] {
            for (i, byte) in part.iter().enumerate() {
                self.byte_at(at + i).store(*byte, Ordering::Relaxed);
            }
        }
        self.tail += n as u64;
        self.u64_at(self.tx + TAIL)
            .store(self.tail, Ordering::Release);
        fence(Ordering::SeqCst);
        let reader_waits = self.u32_at(self.tx + READER_PARKED).load(Ordering::Relaxed) != 0;
        Ok((n, reader_waits))
    }

    /// Before parking to wait for bytes: says so until the returned mark is dropped;
    /// `None` when bytes arrived meanwhile (then do not park).
    pub(crate) fn park_reader(&self) -> Option<Parked<'_>> {
        let flag = self.u32_at(self.rx + READER_PARKED);
        flag.store(1, Ordering::Relaxed);
        fence(Ordering::SeqCst);
        if self.u64_at(self.rx + TAIL).load(Ordering::Acquire) != self.head {
            flag.store(0, Ordering::Relaxed);
            return None;
        }
        Some(Parked(flag))
    }

    /// Whether the side that reads what this side writes let its end go.
    pub(crate) fn peer_gone(&self) -> bool {
        self.u32_at(self.tx + READER_GONE).load(Ordering::Acquire) != 0
    }

    /// Whether the outgoing ring has room (for a writer's spin: no flag set).
    pub(crate) fn has_room(&self) -> bool {
        let head = self.u64_at(self.tx + HEAD).load(Ordering::Acquire);
        self.tail.wrapping_sub(head) < CAPACITY as u64
    }

    /// Before parking to wait for room: says so until the returned mark is dropped; `None`
    /// when room was made meanwhile.
    pub(crate) fn park_writer(&self) -> Option<Parked<'_>> {
        let flag = self.u32_at(self.tx + WRITER_PARKED);
        flag.store(1, Ordering::Relaxed);
        fence(Ordering::SeqCst);
        let head = self.u64_at(self.tx + HEAD).load(Ordering::Acquire);
        if self.tail.wrapping_sub(head) < CAPACITY as u64 {
            flag.store(0, Ordering::Relaxed);
            return None;
        }
        Some(Parked(flag))
    }
}

/// A side's "I am parked" flag, set while this lives (a wait that ends, fails or is
/// cancelled clears it).
pub(crate) struct Parked<'a>(&'a AtomicU32);

impl Drop for Parked<'_> {
    fn drop(&mut self) {
        self.0.store(0, Ordering::Relaxed);
    }
}

impl Drop for Rings {
    fn drop(&mut self) {
        self.u32_at(self.rx + READER_GONE)
            .store(1, Ordering::Release);
        // SAFETY: the mapping made in `map`, of SIZE bytes, unmapped once; nothing borrows
        // it past `self`.
        let _ = unsafe { rustix::mm::munmap(self.base.as_ptr().cast(), SIZE) };
    }
}

/// Wakes the other side, parked on the connection's socket: one byte. A full socket
/// already holds wake-ups, so it needs none more.
pub(crate) fn ring_doorbell(sock: &UnixStream) -> io::Result<()> {
    use rustix::net::SendFlags;
    match rustix::net::send(sock, &[0], SendFlags::NOSIGNAL | SendFlags::DONTWAIT) {
        Ok(_) | Err(rustix::io::Errno::AGAIN | rustix::io::Errno::INTR) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// Reads the wake-up bytes the socket holds, without blocking; `Ok(false)` when the other
/// side ended. Reads at most a few KiB: a worker that keeps ringing cannot hold the host
/// here (what is left wakes the next wait at once, which then finds the rings as they are).
pub(crate) fn drain_doorbells(sock: &UnixStream) -> io::Result<bool> {
    use rustix::net::RecvFlags;
    let mut bytes = [0u8; 256];
    for _ in 0..16 {
        match rustix::net::recv(sock, &mut bytes, RecvFlags::DONTWAIT) {
            Ok((0, _)) => return Ok(false),
            Ok(_) => {}
            Err(rustix::io::Errno::AGAIN) => return Ok(true),
            Err(rustix::io::Errno::INTR) => {}
            Err(rustix::io::Errno::CONNRESET | rustix::io::Errno::PIPE) => return Ok(false),
            Err(e) => return Err(e.into()),
        }
    }
    Ok(true)
}

/// Blocks in poll(2) until the socket is readable (a wake-up, or the other side's end) or
/// `timeout` passes.
pub(crate) fn wait_readable(sock: &UnixStream, timeout: Option<Duration>) -> io::Result<()> {
    use rustix::event::{PollFd, PollFlags};
    let ts = timeout.map(|d| rustix::time::Timespec {
        tv_sec: d.as_secs() as i64,
        tv_nsec: d.subsec_nanos() as i64,
    });
    let mut fds = [PollFd::new(sock, PollFlags::IN)];
    match rustix::event::poll(&mut fds, ts.as_ref()) {
        Ok(_) | Err(rustix::io::Errno::INTR) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// A worker's end of a connection as a plain byte stream, for the tests' fake workers,
/// which speak the protocol byte by byte (and break it on purpose).
#[cfg(feature = "test-hooks")]
#[doc(hidden)]
pub struct RingStream {
    sock: UnixStream,
    rings: Rings,
}

#[cfg(feature = "test-hooks")]
impl RingStream {
    /// The stream of a connection the host passed: its socket and its rings' memfd.
    pub fn open(sock: OwnedFd, memfd: OwnedFd) -> io::Result<RingStream> {
        Ok(RingStream {
            sock: UnixStream::from(sock),
            rings: Rings::open(memfd)?,
        })
    }

    /// Writes an index no honest worker writes (more bytes than the ring holds), and
    /// wakes the host: what a compromised worker could do to the shared memory.
    pub fn corrupt(&mut self) -> io::Result<()> {
        self.rings
            .u64_at(self.rings.tx + TAIL)
            .store(self.rings.tail + CAPACITY as u64 + 1, Ordering::Release);
        ring_doorbell(&self.sock)
    }
}

#[cfg(feature = "test-hooks")]
impl io::Read for RingStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            let (n, writer_waits) = self.rings.read(buf).map_err(|c| io::Error::other(c.0))?;
            if writer_waits {
                ring_doorbell(&self.sock)?;
            }
            if n > 0 || buf.is_empty() {
                return Ok(n);
            }
            let Some(_parked) = self.rings.park_reader() else {
                continue;
            };
            wait_readable(&self.sock, None)?;
            if !drain_doorbells(&self.sock)? {
                return Ok(0);
            }
        }
    }
}

#[cfg(feature = "test-hooks")]
impl io::Write for RingStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        loop {
            if self.rings.peer_gone() {
                return Err(io::ErrorKind::BrokenPipe.into());
            }
            let (n, reader_waits) = self.rings.write(buf).map_err(|c| io::Error::other(c.0))?;
            if reader_waits {
                ring_doorbell(&self.sock)?;
            }
            if n > 0 || buf.is_empty() {
                return Ok(n);
            }
            let Some(_parked) = self.rings.park_writer() else {
                continue;
            };
            wait_readable(&self.sock, Some(Duration::from_secs(1)))?;
            if !drain_doorbells(&self.sock)? {
                return Err(io::ErrorKind::BrokenPipe.into());
            }
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair() -> (Rings, Rings) {
        let (host, theirs) = Rings::create().unwrap();
        (host, Rings::open(theirs).unwrap())
    }

    #[test]
    fn bytes_cross_both_ways_and_wrap_around() {
        let (mut host, mut worker) = pair();
        let mut out = vec![0u8; CAPACITY];
        for round in 0..5u8 {
            let msg: Vec<u8> = (0..CAPACITY / 3).map(|i| i as u8 ^ round).collect();
            assert_eq!(host.write(&msg).unwrap().0, msg.len());
            let (n, _) = worker.read(&mut out).unwrap();
            assert_eq!(&out[..n], &msg[..]);
            assert_eq!(worker.write(&msg[..10]).unwrap().0, 10);
            assert_eq!(host.read(&mut out).unwrap().0, 10);
        }
        assert_eq!(host.read(&mut out).unwrap().0, 0);
    }

    #[test]
    fn a_full_ring_takes_what_fits_and_a_parked_peer_is_seen() {
        let (mut host, mut worker) = pair();
        let big = vec![7u8; CAPACITY + 100];
        let parked = worker.park_reader().expect("nothing was written yet");
        let (n, reader_waits) = host.write(&big).unwrap();
        assert_eq!((n, reader_waits), (CAPACITY, true));
        drop(parked);
        assert!(worker.park_reader().is_none(), "bytes are there");
        let waiting = host.park_writer().expect("no room yet");
        let mut out = vec![0u8; 100];
        let (n, writer_waits) = worker.read(&mut out).unwrap();
        assert_eq!((n, writer_waits), (100, true));
        drop(waiting);
        assert!(host.park_writer().is_none(), "room was made");
        assert_eq!(host.write(&big[CAPACITY..]).unwrap().0, 100);
        let (_, writer_waits) = worker.read(&mut out).unwrap();
        assert!(!writer_waits, "the mark went with its guard");
    }

    #[test]
    fn a_side_that_lets_go_is_seen_by_the_other() {
        let (host, worker) = pair();
        assert!(!worker.peer_gone() && !host.peer_gone());
        drop(host);
        assert!(worker.peer_gone());
    }

    #[test]
    fn a_peer_that_keeps_ringing_cannot_hold_the_drain() {
        let (a, b) = UnixStream::pair().unwrap();
        b.set_nonblocking(true).unwrap();
        a.set_nonblocking(true).unwrap();
        // More wake-ups than one drain reads: it returns, the socket still readable.
        let flood = vec![0u8; 64 << 10];
        let mut sent = 0;
        while let Ok(n) = rustix::net::send(&a, &flood, rustix::net::SendFlags::DONTWAIT) {
            sent += n;
            if sent >= flood.len() {
                break;
            }
        }
        assert!(sent > 16 * 256, "{sent}");
        assert!(drain_doorbells(&b).unwrap());
        drop(a);
        // The end is still seen once the bytes before it are read.
        while drain_doorbells(&b).unwrap() {}
    }

    #[test]
    fn indices_a_hostile_peer_writes_are_refused() {
        let (mut host, worker) = pair();
        // The worker claims to have written more than the ring holds.
        worker
            .u64_at(worker.tx + TAIL)
            .store(CAPACITY as u64 + 1, Ordering::Release);
        let mut out = [0u8; 16];
        assert!(host.read(&mut out).unwrap_err().0.contains("claims"));
        // ... or to have read bytes nobody wrote.
        worker.u64_at(worker.rx + HEAD).store(5, Ordering::Release);
        assert!(host.write(b"x").unwrap_err().0.contains("claims"));
    }

    #[test]
    fn a_ring_memfd_cannot_be_shrunk_or_grown_and_a_wrong_size_is_refused() {
        let (_host, theirs) = Rings::create().unwrap();
        assert!(rustix::fs::ftruncate(&theirs, 0).is_err());
        assert!(rustix::fs::ftruncate(&theirs, SIZE as u64 * 2).is_err());
        let other = rustix::fs::memfd_create("x", rustix::fs::MemfdFlags::CLOEXEC).unwrap();
        rustix::fs::ftruncate(&other, 4096).unwrap();
        assert!(Rings::open(other).is_err());
    }
}
