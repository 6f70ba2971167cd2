//! One connection between the host and a worker: frames over a Unix stream socket, or over
//! the connection's shared-memory rings (`ring.rs`) with the socket kept for wake-ups and
//! for seeing the other side end.
//!
//! A frame is a little-endian `u32` length, a tag byte and the body (the length counts tag
//! and body). A call is a round trip of two frames, and most calls into a module are
//! short, so the side that waits first spins on non-blocking reads for a few microseconds
//! (the answer usually arrives within them: no sleep, no wake-up) and only then parks in
//! poll(2) or, on the async path, in the tokio reactor. The spin is bounded, so a waiting
//! side costs at most that much CPU per frame.
//!
//! What a receiving side holds is bounded by what arrived, never by what a header
//! announced: a frame's tag and length are checked against what this side accepts
//! ([`Accept`], `wire/sizes.rs`) as soon as its header is in, and the buffer grows (by
//! doubling, up to the frame's size) only when the bytes already received fill it.

use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

use rustix::net::{RecvFlags, SendFlags};

use crate::ring::Rings;
pub(crate) use crate::wire::sizes::Accept;
use crate::wire::sizes::MAX_FRAME;

/// How long a waiting side spins before it parks.
pub(crate) const SPIN: Duration = Duration::from_micros(50);

/// The buffer a connection starts with.
const INITIAL: usize = 64 << 10;

/// A connection whose buffer grew past this gives it back once it is empty again.
const KEEP: usize = 1 << 20;

/// How long a writer waits for the reader to make room in a full ring before it gives the
/// connection up: a reader is always receiving when a frame comes its way, so a ring that
/// stays full this long means the other side stopped reading.
const STALL: Duration = Duration::from_secs(30);

/// Why no frame came.
#[derive(Debug)]
pub(crate) enum RecvError {
    /// The other side closed its end or died.
    Closed,
    /// Nothing came before the deadline.
    TimedOut,
    /// The other side broke the framing (a message it never sends, a length over the
    /// message's bound), or the socket failed.
    Broken(String),
}

/// A framed connection.
pub(crate) struct Channel {
    /// The shared-memory rings the bytes go through, when the connection has them. First,
    /// so that it is dropped first: the other side learns that this side let the rings go
    /// before it sees the socket's end.
    rings: Option<Rings>,
    sock: UnixStream,
    /// Bytes read and not yet consumed: `buf[start..end]`.
    buf: Vec<u8>,
    start: usize,
    end: usize,
    /// The frame handed out last, consumed by the next receive.
    pending: usize,
    /// The size (header included) of the frame whose first bytes are in the buffer.
    want: usize,
    /// What this side accepts.
    accept: Accept,
    out: Vec<u8>,
    reactor: Option<tokio::io::unix::AsyncFd<OwnedFd>>,
    /// Whether the other side was seen to end (its end of the socket closed): nothing is
    /// written into the rings after that, where nobody would read it.
    ended: std::cell::Cell<bool>,
}

impl Channel {
    /// A connection over `sock` that receives what `accept` allows.
    pub(crate) fn new(sock: UnixStream, accept: Accept) -> Channel {
        Channel {
            sock,
            buf: vec![0; INITIAL],
            start: 0,
            end: 0,
            pending: 0,
            want: 0,
            accept,
            out: Vec::with_capacity(4 << 10),
            reactor: None,
            rings: None,
            ended: std::cell::Cell::new(false),
        }
    }

    /// A connection whose frames go through `rings`; `sock` only wakes a parked side and
    /// tells when the other side ends.
    pub(crate) fn with_rings(sock: UnixStream, accept: Accept, rings: Rings) -> Channel {
        Channel {
            rings: Some(rings),
            ..Channel::new(sock, accept)
        }
    }

    /// A buffer to build the next frame's body in, after [`Channel::begin`].
    pub(crate) fn begin(&mut self, tag: u8) -> &mut Vec<u8> {
        self.out.clear();
        self.out.extend_from_slice(&[0, 0, 0, 0, tag]);
        &mut self.out
    }

    /// Sends the frame built since [`Channel::begin`].
    pub(crate) fn finish(&mut self) -> io::Result<()> {
        let len = u32::try_from(self.out.len() - 4)
            .ok()
            .filter(|l| (*l as usize) <= MAX_FRAME)
            .ok_or_else(|| io::Error::other("a value is too large to cross to a worker"))?;
        self.out[..4].copy_from_slice(&len.to_le_bytes());
        if self.rings.is_some() {
            return self.write_rings();
        }
        let mut sent = 0;
        while sent < self.out.len() {
            match rustix::net::send(&self.sock, &self.out[sent..], SendFlags::NOSIGNAL) {
                Ok(n) => sent += n,
                Err(rustix::io::Errno::INTR) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }

    /// Writes the frame in `out` into the rings, waiting for room when they are full.
    fn write_rings(&mut self) -> io::Result<()> {
        if self.ended.get() || self.rings.as_ref().is_some_and(|r| r.peer_gone()) {
            return Err(io::ErrorKind::BrokenPipe.into());
        }
        let mut sent = 0;
        let mut waited = Duration::ZERO;
        while sent < self.out.len() {
            let rings = self.rings.as_mut().expect("ring mode");
            let (n, reader_waits) = rings
                .write(&self.out[sent..])
                .map_err(|c| io::Error::other(c.0))?;
            sent += n;
            if reader_waits {
                self.doorbell()?;
            }
            if n == 0 {
                waited += self.wait_for_room()?;
                if waited >= STALL {
                    return Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        "the other side stopped reading",
                    ));
                }
            }
        }
        Ok(())
    }

    /// Waits until the reader made room in the outgoing ring (spinning first), or a while;
    /// returns how long it parked.
    fn wait_for_room(&self) -> io::Result<Duration> {
        let spin_until = Instant::now() + SPIN;
        let rings = self.rings.as_ref().expect("ring mode");
        while Instant::now() < spin_until {
            if rings.has_room() {
                return Ok(Duration::ZERO);
            }
            std::hint::spin_loop();
        }
        let Some(_parked) = rings.park_writer() else {
            return Ok(Duration::ZERO);
        };
        let slice = Duration::from_secs(1);
        let woke = self.park_socket(Some(slice)).and(self.drain_doorbells());
        match woke {
            Ok(()) => Ok(slice),
            Err(RecvError::Closed) => Err(io::ErrorKind::BrokenPipe.into()),
            Err(e) => Err(io::Error::other(format!("{e:?}"))),
        }
    }

    fn doorbell(&self) -> io::Result<()> {
        crate::ring::ring_doorbell(&self.sock)
    }

    fn drain_doorbells(&self) -> Result<(), RecvError> {
        match crate::ring::drain_doorbells(&self.sock) {
            Ok(true) => Ok(()),
            Ok(false) => {
                self.ended.set(true);
                Err(RecvError::Closed)
            }
            Err(e) => Err(RecvError::Broken(e.to_string())),
        }
    }

    /// Sends one frame.
    pub(crate) fn send(&mut self, tag: u8, body: &[u8]) -> io::Result<()> {
        self.begin(tag).extend_from_slice(body);
        self.finish()
    }

    /// A complete frame in the buffer, if there is one. A header that announces a message
    /// this side does not accept, or more than its bound, breaks the connection before any
    /// of the body is held.
    fn frame(&mut self) -> Result<Option<(u8, usize, usize)>, RecvError> {
        let have = self.end - self.start;
        if have < 4 {
            return Ok(None);
        }
        let head = &self.buf[self.start..self.start + 4];
        let len = u32::from_le_bytes([head[0], head[1], head[2], head[3]]) as usize;
        let Some(body) = len.checked_sub(1) else {
            return Err(RecvError::Broken("a frame of 0 bytes".into()));
        };
        if have < 5 {
            return Ok(None);
        }
        let tag = self.buf[self.start + 4];
        match self.accept.max_body(tag) {
            None => {
                return Err(RecvError::Broken(format!(
                    "a message it never sends (tag {tag})"
                )));
            }
            Some(max) if body > max => {
                return Err(RecvError::Broken(format!(
                    "a frame of {body} bytes for message {tag}, over its bound of {max}"
                )));
            }
            Some(_) => {}
        }
        if have < 4 + len {
            self.want = 4 + len;
            return Ok(None);
        }
        let tag_at = self.start + 4;
        self.pending = 4 + len;
        Ok(Some((self.buf[tag_at], tag_at + 1, self.start + 4 + len)))
    }

    fn consume(&mut self) {
        self.start += std::mem::take(&mut self.pending);
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
            if self.buf.len() > KEEP {
                // A large frame's buffer is not kept by an idle connection.
                self.buf = vec![0; INITIAL];
            }
        }
    }

    /// Reads what the socket has without blocking; `Ok(false)` when it had nothing.
    fn fill(&mut self) -> Result<bool, RecvError> {
        if self.end == self.buf.len() {
            if self.start > 0 {
                self.buf.copy_within(self.start..self.end, 0);
                self.end -= self.start;
                self.start = 0;
            } else {
                // The buffer is full of one frame's first bytes, all of which arrived: it
                // doubles, never past the frame's size.
                let len = self.buf.len();
                self.buf.resize((len * 2).min(self.want.max(len + 1)), 0);
            }
        }
        if let Some(rings) = self.rings.as_mut() {
            let (n, writer_waits) = rings
                .read(&mut self.buf[self.end..])
                .map_err(|c| RecvError::Broken(c.0))?;
            self.end += n;
            if writer_waits {
                self.doorbell()
                    .map_err(|e| RecvError::Broken(e.to_string()))?;
            }
            return Ok(n > 0);
        }
        match rustix::net::recv(&self.sock, &mut self.buf[self.end..], RecvFlags::DONTWAIT) {
            Ok((0, _)) => Err(RecvError::Closed),
            Ok((n, _)) => {
                self.end += n;
                Ok(true)
            }
            Err(rustix::io::Errno::AGAIN | rustix::io::Errno::INTR) => Ok(false),
            Err(rustix::io::Errno::CONNRESET | rustix::io::Errno::PIPE) => Err(RecvError::Closed),
            Err(e) => Err(RecvError::Broken(e.to_string())),
        }
    }

    /// One step of a wait: a complete frame (its tag and body range), or how long to park
    /// (`Ok(Err(timeout))`, `None` for ever) once the spin is over and nothing came.
    #[allow(clippy::type_complexity)]
    fn step(
        &mut self,
        until: Option<Instant>,
        spin_until: Instant,
    ) -> Result<Result<(u8, usize, usize), Option<Duration>>, RecvError> {
        loop {
            if let Some(frame) = self.frame()? {
                return Ok(Ok(frame));
            }
            if self.fill()? {
                continue;
            }
            let now = Instant::now();
            if now < spin_until {
                std::hint::spin_loop();
                continue;
            }
            return match until {
                Some(u) if u <= now => Err(RecvError::TimedOut),
                Some(u) => Ok(Err(Some(u - now))),
                None => Ok(Err(None)),
            };
        }
    }

    /// Waits for the next frame until `until` (forever with `None`), spinning for `spin`
    /// first. Returns the tag and the body, valid until the next receive.
    pub(crate) fn recv(
        &mut self,
        until: Option<Instant>,
        spin: Duration,
    ) -> Result<(u8, &[u8]), RecvError> {
        self.consume();
        let spin_until = Instant::now() + spin;
        loop {
            match self.step(until, spin_until)? {
                Ok((tag, a, b)) => return Ok((tag, &self.buf[a..b])),
                Err(timeout) => self.park(timeout)?,
            }
        }
    }

    /// Blocks until something may have come, or `timeout` passes: in poll(2) on the socket,
    /// after saying so in the rings when the connection has them.
    fn park(&self, timeout: Option<Duration>) -> Result<(), RecvError> {
        let Some(rings) = self.rings.as_ref() else {
            return self.park_socket(timeout);
        };
        let Some(_parked) = rings.park_reader() else {
            return Ok(());
        };
        self.park_socket(timeout)?;
        self.drain_doorbells()
    }

    /// Blocks in poll(2) until the socket is readable or `timeout` passes.
    fn park_socket(&self, timeout: Option<Duration>) -> Result<(), RecvError> {
        crate::ring::wait_readable(&self.sock, timeout)
            .map_err(|e| RecvError::Broken(e.to_string()))
    }

    /// [`Channel::recv`] on the caller's task: after the spin it waits in the tokio reactor
    /// (outside a runtime, in poll(2)).
    pub(crate) async fn recv_async(
        &mut self,
        until: Option<Instant>,
        spin: Duration,
    ) -> Result<(u8, &[u8]), RecvError> {
        self.consume();
        let spin_until = Instant::now() + spin;
        loop {
            let timeout = match self.step(until, spin_until)? {
                Ok((tag, a, b)) => return Ok((tag, &self.buf[a..b])),
                Err(timeout) => timeout,
            };
            if tokio::runtime::Handle::try_current().is_err() {
                self.park(timeout)?;
                continue;
            }
            if self.reactor.is_none() {
                let fd = self
                    .sock
                    .as_fd()
                    .try_clone_to_owned()
                    .map_err(|e| RecvError::Broken(e.to_string()))?;
                // SAFETY: the AsyncFd owns `fd` (a duplicate of the socket) for its whole
                // life, so the number stays open and means the same socket.
                let registered = unsafe {
                    tokio::io::unix::AsyncFd::register_with_interest(
                        fd,
                        tokio::io::Interest::READABLE,
                    )
                }
                .map_err(|e| RecvError::Broken(e.to_string()))?;
                self.reactor = Some(registered);
            }
            // Cleared however this wait ends, cancellation included.
            let _parked = match self.rings.as_ref().map(|r| r.park_reader()) {
                Some(None) => continue,
                Some(parked) => parked,
                None => None,
            };
            let reactor = self.reactor.as_ref().expect("registered above");
            let ready = reactor.readable();
            let mut guard = match timeout {
                Some(t) => match tokio::time::timeout(t, ready).await {
                    Ok(r) => r.map_err(|e| RecvError::Broken(e.to_string()))?,
                    Err(_) => return Err(RecvError::TimedOut),
                },
                None => ready.await.map_err(|e| RecvError::Broken(e.to_string()))?,
            };
            // The next non-blocking read tells whether there really is something.
            guard.clear_ready();
            if self.rings.is_some() {
                self.drain_doorbells()?;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;
    use crate::wire::message::{CALL, LOG, OK};

    fn worker_side() -> (UnixStream, Channel) {
        let (a, b) = UnixStream::pair().unwrap();
        let accept = Accept::FromWorker {
            values: crate::wire::sizes::max_values(32 << 20),
        };
        (a, Channel::new(b, accept))
    }

    fn header(tag: u8, body: usize) -> Vec<u8> {
        let mut h = ((body + 1) as u32).to_le_bytes().to_vec();
        h.push(tag);
        h
    }

    fn recv_now(ch: &mut Channel) -> Result<(u8, Vec<u8>), RecvError> {
        let until = Some(Instant::now() + Duration::from_secs(10));
        ch.recv(until, Duration::ZERO).map(|(t, b)| (t, b.to_vec()))
    }

    #[test]
    fn an_announced_length_over_the_bound_is_refused_before_any_body() {
        let (mut peer, mut ch) = worker_side();
        peer.write_all(&header(LOG, 64 << 20)).unwrap();
        peer.write_all(&[b'x'; 1024]).unwrap();
        assert!(
            matches!(recv_now(&mut ch), Err(RecvError::Broken(m)) if m.contains("over its bound"))
        );
        assert_eq!(ch.buf.len(), INITIAL);
    }

    #[test]
    fn a_message_the_worker_never_sends_is_refused() {
        let (mut peer, mut ch) = worker_side();
        peer.write_all(&header(CALL, 3)).unwrap();
        assert!(matches!(recv_now(&mut ch), Err(RecvError::Broken(m)) if m.contains("tag 1")));
        // A zero length, with nothing after it.
        let (mut peer, mut ch) = worker_side();
        peer.write_all(&0u32.to_le_bytes()).unwrap();
        assert!(matches!(recv_now(&mut ch), Err(RecvError::Broken(_))));
    }

    #[test]
    fn the_buffer_holds_what_arrived_not_what_was_announced() {
        let (mut peer, mut ch) = worker_side();
        peer.write_all(&header(OK, 32 << 20)).unwrap();
        peer.write_all(&[0; 1024]).unwrap();
        drop(peer);
        assert!(matches!(recv_now(&mut ch), Err(RecvError::Closed)));
        assert_eq!(ch.buf.len(), INITIAL);
    }

    #[test]
    fn a_large_frame_arrives_whole_and_its_buffer_is_given_back() {
        let (mut peer, mut ch) = worker_side();
        let body: Vec<u8> = (0..3 << 20).map(|i| i as u8).collect();
        let writer = std::thread::spawn(move || {
            let mut frame = header(OK, body.len());
            frame.extend_from_slice(&body);
            frame.extend_from_slice(&header(OK, 1));
            frame.push(7);
            peer.write_all(&frame).unwrap();
            body
        });
        let (tag, got) = recv_now(&mut ch).unwrap();
        let body = writer.join().unwrap();
        assert_eq!((tag, got.len()), (OK, body.len()));
        assert!(got == body);
        assert!(ch.buf.len() <= 2 * (body.len() + 5), "{}", ch.buf.len());
        assert_eq!(recv_now(&mut ch).unwrap(), (OK, vec![7]));
        // Consumed: the connection no longer holds megabytes.
        ch.consume();
        assert_eq!(ch.buf.len(), INITIAL);
    }
}
