//! The server's connection slots: at most `max_connections` connections at once, and at
//! most `max_connections_per_ip` from one client address.
//!
//! A connection with no request in flight — one that has not sent its first request yet, or
//! one idle between requests — holds a slot without doing work, so it is the first to go
//! when a new connection needs room: silent sockets cannot keep a real client out for longer
//! than it takes to close one of them. Connections that never sent a request go first
//! (oldest first), then idle ones (idle longest first). A connection with a request in
//! flight is never chosen.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::Notify;
use tokio::time::Instant;

/// Where a connection stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Phase {
    /// Accepted at this instant; no request yet.
    Fresh(Instant),
    /// At least one request in flight.
    Busy,
    /// No request in flight since this instant.
    Idle(Instant),
}

impl Phase {
    /// How eagerly the connection is given up for a new one: lower goes first; `None` never.
    fn eviction_rank(self) -> Option<(u8, Instant)> {
        match self {
            Phase::Fresh(at) => Some((0, at)),
            Phase::Idle(since) => Some((1, since)),
            Phase::Busy => None,
        }
    }
}

/// Why the server could not take a connection right now.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// Every slot holds a connection with a request in flight: wait for one to free.
    Full,
    /// The client's address holds its cap of connections, all with requests in flight.
    PerIp,
}

/// The slots of one server.
pub(crate) struct Slots {
    max: usize,
    per_ip: Option<usize>,
    state: Mutex<State>,
    /// Woken when a slot frees or a connection goes idle (so a full server can make room).
    room: Notify,
}

#[derive(Default)]
struct State {
    next: u64,
    open: HashMap<u64, Entry>,
    by_ip: HashMap<IpAddr, usize>,
}

struct Entry {
    ip: IpAddr,
    phase: Phase,
    conn: Arc<Conn>,
}

/// What one connection and the code serving it share.
pub(crate) struct Conn {
    /// Requests in flight (until their response bodies end).
    active: AtomicUsize,
    /// Woken when the server took the connection's slot back.
    pub(crate) changed: Notify,
    /// Set when the server took the connection's slot back for another connection.
    evicted: std::sync::atomic::AtomicBool,
}

impl Conn {
    /// Whether the server took the connection's slot back.
    #[cfg(test)]
    pub(crate) fn evicted(&self) -> bool {
        self.evicted.load(Ordering::Acquire)
    }

    /// Requests in flight.
    pub(crate) fn active(&self) -> usize {
        self.active.load(Ordering::Acquire)
    }
}

/// One connection's slot, freed when dropped.
pub(crate) struct Slot {
    slots: Arc<Slots>,
    id: u64,
    pub(crate) conn: Arc<Conn>,
}

/// A request in flight on a connection, until dropped (with its response body).
pub(crate) struct Active {
    slot: Arc<Slot>,
}

impl Slots {
    pub(crate) fn new(max: usize, per_ip: Option<usize>) -> Arc<Slots> {
        Arc::new(Slots {
            max: max.max(1),
            per_ip,
            state: Mutex::new(State::default()),
            room: Notify::new(),
        })
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        // Nothing panics while holding the lock; should it, the counts are still whole.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether a new connection could be taken now (a slot is free, or one can be taken
    /// back). The accept loop asks this before it accepts, so that a server full of busy
    /// connections leaves new ones in the kernel's backlog instead of holding them.
    pub(crate) fn has_room(&self) -> bool {
        let s = self.state();
        s.open.len() < self.max || s.open.values().any(|e| e.phase != Phase::Busy)
    }

    /// Waits until a slot frees or a connection goes idle.
    pub(crate) async fn room(&self) {
        let notified = self.room.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        if self.has_room() {
            return;
        }
        notified.await;
    }

    /// Takes a slot for a connection from `ip`, closing a connection without a request in
    /// flight when the server or the address is at its cap; also says whether it closed one.
    pub(crate) fn admit(self: &Arc<Self>, ip: IpAddr) -> Result<(Slot, bool), Refusal> {
        let ip = ip.to_canonical();
        let mut s = self.state();
        let mut evicted = false;
        if let Some(cap) = self.per_ip
            && s.by_ip.get(&ip).copied().unwrap_or(0) >= cap
        {
            if !s.evict(|e| e.ip == ip) {
                return Err(Refusal::PerIp);
            }
            evicted = true;
        }
        if s.open.len() >= self.max {
            if !s.evict(|_| true) {
                return Err(Refusal::Full);
            }
            evicted = true;
        }
        let id = s.next;
        s.next += 1;
        let conn = Arc::new(Conn {
            active: AtomicUsize::new(0),
            changed: Notify::new(),
            evicted: Default::default(),
        });
        s.open.insert(
            id,
            Entry {
                ip,
                phase: Phase::Fresh(Instant::now()),
                conn: conn.clone(),
            },
        );
        *s.by_ip.entry(ip).or_insert(0) += 1;
        let slot = Slot {
            slots: self.clone(),
            id,
            conn,
        };
        Ok((slot, evicted))
    }

    /// Connections holding a slot.
    #[cfg(test)]
    fn open(&self) -> usize {
        self.state().open.len()
    }
}

impl State {
    /// Takes back the slot of the connection without a request in flight that matches and
    /// goes first; whether there was one.
    fn evict(&mut self, matches: impl Fn(&Entry) -> bool) -> bool {
        let victim = self
            .open
            .iter()
            .filter(|(_, e)| matches(e))
            .filter_map(|(id, e)| Some((e.phase.eviction_rank()?, *id)))
            .min()
            .map(|(_, id)| id);
        let Some(id) = victim else {
            return false;
        };
        if let Some(e) = self.remove(id) {
            e.conn.evicted.store(true, Ordering::Release);
            e.conn.changed.notify_one();
        }
        true
    }

    fn remove(&mut self, id: u64) -> Option<Entry> {
        let e = self.open.remove(&id)?;
        if let Some(n) = self.by_ip.get_mut(&e.ip) {
            *n -= 1;
            if *n == 0 {
                self.by_ip.remove(&e.ip);
            }
        }
        Some(e)
    }
}

impl Slot {
    /// The connection's phase (`None` once its slot was taken back).
    pub(crate) fn phase(&self) -> Option<Phase> {
        self.slots.state().open.get(&self.id).map(|e| e.phase)
    }

    /// Records the connection's phase. The connection's own task is not woken: its timers
    /// look at the phase when they fire (a wake-up per request would cost more than the
    /// timers save). A full server waiting for room is told when a connection goes idle.
    fn set_phase(&self, phase: Phase) {
        let mut s = self.slots.state();
        if let Some(e) = s.open.get_mut(&self.id) {
            e.phase = phase;
        }
        let full = s.open.len() >= self.slots.max;
        drop(s);
        if full && matches!(phase, Phase::Idle(_)) {
            self.slots.room.notify_waiters();
        }
    }

    /// Marks a request in flight until the returned guard drops.
    pub(crate) fn start(self: &Arc<Self>) -> Active {
        if self.conn.active.fetch_add(1, Ordering::AcqRel) == 0 {
            self.set_phase(Phase::Busy);
        }
        Active { slot: self.clone() }
    }
}

impl Drop for Active {
    fn drop(&mut self) {
        if self.slot.conn.active.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.slot.set_phase(Phase::Idle(Instant::now()));
        }
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.slots.state().remove(self.id);
        self.slots.room.notify_waiters();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[tokio::test]
    async fn a_full_server_closes_the_oldest_connection_without_a_request() {
        let slots = Slots::new(2, None);
        let a = Arc::new(slots.admit(ip("127.0.0.1")).unwrap().0);
        let b = Arc::new(slots.admit(ip("127.0.0.1")).unwrap().0);
        let busy = b.start();
        // a has sent nothing: it makes room.
        let c = Arc::new(slots.admit(ip("127.0.0.2")).unwrap().0);
        assert!(a.conn.evicted() && a.phase().is_none());
        assert_eq!(slots.open(), 2);
        // b is busy and c fresh: c goes, never b.
        let d = Arc::new(slots.admit(ip("127.0.0.3")).unwrap().0);
        assert!(c.conn.evicted() && !b.conn.evicted());
        let _d_busy = d.start();
        assert!(!slots.has_room());
        assert_eq!(
            slots.admit(ip("127.0.0.3")).map(|a| a.1).err(),
            Some(Refusal::Full)
        );
        // b goes idle: it has been idle longer than any other, so it makes room.
        drop(busy);
        assert!(matches!(b.phase(), Some(Phase::Idle(_))));
        assert!(slots.has_room());
        let _e = slots.admit(ip("127.0.0.4")).unwrap().0;
        assert!(b.conn.evicted() && !d.conn.evicted());
    }

    #[tokio::test]
    async fn busy_connections_are_never_taken_back() {
        let slots = Slots::new(1, None);
        let a = Arc::new(slots.admit(ip("10.0.0.1")).unwrap().0);
        let _busy = a.start();
        assert_eq!(
            slots.admit(ip("10.0.0.2")).map(|a| a.1).err(),
            Some(Refusal::Full)
        );
        assert!(!slots.has_room());
        drop(_busy);
        // Idle now: it makes room when a connection comes.
        assert!(slots.has_room() && !a.conn.evicted());
        let _b = slots.admit(ip("10.0.0.2")).unwrap().0;
        assert!(a.conn.evicted());
    }

    #[tokio::test]
    async fn one_address_cannot_take_more_than_its_cap() {
        let slots = Slots::new(10, Some(2));
        let a = Arc::new(slots.admit(ip("10.0.0.1")).unwrap().0);
        let b = Arc::new(slots.admit(ip("::ffff:10.0.0.1")).unwrap().0);
        let (_x, _y) = (a.start(), b.start());
        assert_eq!(
            slots.admit(ip("10.0.0.1")).map(|a| a.1).err(),
            Some(Refusal::PerIp)
        );
        // Another address is not affected.
        let _c = slots.admit(ip("10.0.0.2")).unwrap().0;
        drop(_x);
        // a is idle: the address's next connection replaces it.
        let _d = slots.admit(ip("10.0.0.1")).unwrap().0;
        assert!(a.conn.evicted() && !b.conn.evicted());
        drop(a);
        assert_eq!(slots.open(), 3);
    }
}
