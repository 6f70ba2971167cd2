//! A host's resource sessions of one module: each is an instance pinned to one caller's
//! importer instance, named by an id and opened by a key that the caller sends with every
//! later call, drop and close.
//!
//! Ids and keys are 128 random bits each, drawn from the operating system's random source:
//! a party that can publish on the module's subjects can neither guess a session nor use
//! one whose id it learned (from a log line, an error message) without the key, which only
//! the opener received. A request with the wrong key changes nothing in the session, not
//! even its idle time.
//!
//! The table is bounded: [`MAX_SESSIONS`] in all, and half of what the host can hold per
//! caller ([`per_caller`]; a caller is the reply subject of the opening request without
//! its last token: one per NATS connection), since every session holds an instance of the
//! module's pool until it ends. It forgets sessions nobody used for [`IDLE`]: a caller that
//! went away without closing its sessions (killed, partitioned) must not hold this host's
//! instances forever.
//! Calls of one session are serialized: a session is one instance, and one importer
//! instance calls it one call at a time anyway.

use std::collections::HashMap;
use std::collections::hash_map::Entry as Slot;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::protocol::{SessionId, SessionKey};

/// How long a session may go unused before the host ends it.
pub(crate) const IDLE: Duration = Duration::from_secs(5 * 60);

/// Sessions of one module one host keeps at most; more are refused (`Overloaded`).
pub(crate) const MAX_SESSIONS: usize = 1024;

/// Sessions of one module one caller (NATS connection) may hold on one host whose module
/// has `instances`: half of what the host can hold (each session holds an instance), so
/// that one caller cannot take every instance from the others. It counts what a caller
/// tells of itself (its reply subject), so it bounds callers that want their answers;
/// [`MAX_SESSIONS`] and the module's pool bound all.
pub(crate) fn per_caller(instances: usize) -> usize {
    (instances.min(MAX_SESSIONS) / 2).max(1)
}

/// The longest caller name kept (the start of a reply subject); longer ones are cut.
const MAX_CALLER: usize = 256;

/// A session's state, locked while a call or drop runs in it.
pub(crate) type Shared<T> = Arc<tokio::sync::Mutex<T>>;

/// Why a request cannot use a session it names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// No such session here (never opened, closed, expired, or another host's).
    Gone,
    /// The session exists and the request carries no key (or no well-formed one).
    NoKey,
    /// The session exists and the request's key is not its key.
    WrongKey,
}

impl Refusal {
    /// Why, for the audit log.
    pub(crate) fn reason(self) -> &'static str {
        match self {
            Refusal::Gone => "no such session",
            Refusal::NoKey => "the request carries no session key",
            Refusal::WrongKey => "the request's session key is not the session's",
        }
    }
}

/// Why a session cannot be opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Full {
    /// The host holds [`MAX_SESSIONS`] of the module.
    Total,
    /// The caller holds its share ([`per_caller`]) of the module's sessions here.
    Caller,
    /// The operating system gave no random bytes for an id and key.
    NoRandom,
}

/// The sessions of one module, by id.
pub(crate) struct Sessions<T> {
    inner: Mutex<Inner<T>>,
    max: usize,
}

struct Inner<T> {
    open: HashMap<SessionId, Entry<T>>,
    /// Open sessions per caller; a caller with none has no entry.
    callers: HashMap<Arc<str>, usize>,
}

struct Entry<T> {
    state: Shared<T>,
    key: SessionKey,
    caller: Arc<str>,
    last_use: Instant,
}

impl<T> Inner<T> {
    /// Forgets session `id` and its count against its caller.
    fn take(&mut self, id: SessionId) -> Option<Shared<T>> {
        let e = self.open.remove(&id)?;
        if let Slot::Occupied(mut n) = self.callers.entry(e.caller) {
            *n.get_mut() -= 1;
            if *n.get() == 0 {
                n.remove();
            }
        }
        Some(e.state)
    }

    fn check(&self, id: SessionId, key: Option<&SessionKey>) -> Result<(), Refusal> {
        let e = self.open.get(&id).ok_or(Refusal::Gone)?;
        match key {
            None => Err(Refusal::NoKey),
            Some(k) if e.key.matches(k) => Ok(()),
            Some(_) => Err(Refusal::WrongKey),
        }
    }
}

/// The caller a reply subject stands for: the subject without its last token (a client's
/// requests share their inbox prefix), at most [`MAX_CALLER`] bytes of it.
pub(crate) fn caller_of(reply: &str) -> &str {
    let prefix = reply.rsplit_once('.').map_or(reply, |(p, _)| p);
    let mut end = prefix.len().min(MAX_CALLER);
    while !prefix.is_char_boundary(end) {
        end -= 1;
    }
    &prefix[..end]
}

/// 128 bits from the operating system's random source.
fn random() -> Option<[u8; 16]> {
    let mut b = [0u8; 16];
    getrandom::fill(&mut b).ok()?;
    Some(b)
}

impl<T> Sessions<T> {
    /// An empty table of at most `max` sessions.
    pub(crate) fn new(max: usize) -> Sessions<T> {
        Sessions {
            inner: Mutex::new(Inner {
                open: HashMap::new(),
                callers: HashMap::new(),
            }),
            max,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner<T>> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether another session of `caller`, who may hold `share` of them, fits.
    pub(crate) fn room(&self, caller: &str, share: usize) -> Result<(), Full> {
        self.room_in(&self.lock(), caller, share)
    }

    fn room_in(&self, inner: &Inner<T>, caller: &str, share: usize) -> Result<(), Full> {
        if inner.open.len() >= self.max {
            return Err(Full::Total);
        }
        if inner.callers.get(caller).copied().unwrap_or(0) >= share {
            return Err(Full::Caller);
        }
        Ok(())
    }

    /// Keeps `state` as a new session of `caller` (who may hold `share` of them) used at
    /// `now`: its fresh id and key, or `state` back when it does not fit.
    pub(crate) fn insert(
        &self,
        state: T,
        caller: &str,
        share: usize,
        now: Instant,
    ) -> Result<(SessionId, SessionKey), (T, Full)> {
        let mut inner = self.lock();
        if let Err(full) = self.room_in(&inner, caller, share) {
            return Err((state, full));
        }
        let (Some(id), Some(key)) = (random(), random()) else {
            return Err((state, Full::NoRandom));
        };
        let (id, key) = (SessionId(u128::from_be_bytes(id)), SessionKey(key));
        // Two equal draws of 128 bits do not happen; if they did, the older session must
        // not be handed to a second caller.
        if inner.open.contains_key(&id) {
            return Err((state, Full::NoRandom));
        }
        let caller: Arc<str> = caller_of_known(&inner, caller);
        *inner.callers.entry(caller.clone()).or_insert(0) += 1;
        inner.open.insert(
            id,
            Entry {
                state: Arc::new(tokio::sync::Mutex::new(state)),
                key,
                caller,
                last_use: now,
            },
        );
        Ok((id, key))
    }

    /// Session `id`, when `key` is its key, marked used at `now`.
    pub(crate) fn get(
        &self,
        id: SessionId,
        key: Option<&SessionKey>,
        now: Instant,
    ) -> Result<Shared<T>, Refusal> {
        let mut inner = self.lock();
        inner.check(id, key)?;
        let e = inner.open.get_mut(&id).ok_or(Refusal::Gone)?;
        e.last_use = now;
        Ok(e.state.clone())
    }

    /// Marks session `id` used at `now` (when a long call in it ends).
    pub(crate) fn touch(&self, id: SessionId, now: Instant) {
        if let Some(e) = self.lock().open.get_mut(&id) {
            e.last_use = now;
        }
    }

    /// Ends session `id` for a request that offers `key`; its instance ends once no call
    /// runs in it.
    pub(crate) fn close(
        &self,
        id: SessionId,
        key: Option<&SessionKey>,
    ) -> Result<Shared<T>, Refusal> {
        let mut inner = self.lock();
        inner.check(id, key)?;
        inner.take(id).ok_or(Refusal::Gone)
    }

    /// Forgets session `id` (its call failed: its instance may be broken).
    pub(crate) fn remove(&self, id: SessionId) -> Option<Shared<T>> {
        self.lock().take(id)
    }

    /// Forgets the sessions unused for more than `idle` at `now` and not in a call;
    /// returns them, so that their instances end outside the table's lock.
    pub(crate) fn expire(&self, now: Instant, idle: Duration) -> Vec<Shared<T>> {
        let mut inner = self.lock();
        let stale: Vec<SessionId> = inner
            .open
            .iter()
            .filter(|(_, e)| {
                now.saturating_duration_since(e.last_use) > idle && e.state.try_lock().is_ok()
            })
            .map(|(id, _)| *id)
            .collect();
        stale.into_iter().filter_map(|id| inner.take(id)).collect()
    }

    /// Forgets every session; returns them, as [`Sessions::expire`] does.
    pub(crate) fn clear(&self) -> Vec<Shared<T>> {
        let mut inner = self.lock();
        inner.callers.clear();
        inner.open.drain().map(|(_, e)| e.state).collect()
    }

    /// How many sessions are open.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.lock().open.len()
    }
}

/// The shared name of `caller`: the one its open sessions use already, or a new one.
fn caller_of_known<T>(inner: &Inner<T>, caller: &str) -> Arc<str> {
    inner
        .callers
        .get_key_value(caller)
        .map_or_else(|| caller.into(), |(k, _)| k.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn open<T: std::fmt::Debug>(
        t: &Sessions<T>,
        state: T,
        now: Instant,
    ) -> (SessionId, SessionKey) {
        t.insert(state, "_INBOX.a", 8, now).unwrap()
    }

    #[test]
    fn ids_and_keys_are_random_and_the_table_is_bounded() {
        let t = Sessions::new(2);
        let now = Instant::now();
        let (a, ka) = open(&t, "a", now);
        let (b, kb) = open(&t, "b", now);
        assert_ne!(a, b);
        assert!(!ka.matches(&kb));
        // Not counted up from anything: far apart in a 128-bit space.
        assert!(a.0.abs_diff(b.0) > 1 << 64, "{a} {b}");
        assert_eq!(t.room("_INBOX.c", 8), Err(Full::Total));
        assert_eq!(
            t.insert("c", "_INBOX.c", 8, now).unwrap_err(),
            ("c", Full::Total)
        );
        assert!(t.close(a, Some(&ka)).is_ok());
        assert_eq!(t.close(a, Some(&ka)).unwrap_err(), Refusal::Gone);
        let (c, kc) = open(&t, "c", now);
        assert!(c != a && c != b);
        assert_eq!(t.get(a, Some(&ka), now).unwrap_err(), Refusal::Gone);
        assert_eq!(*t.get(c, Some(&kc), now).unwrap().try_lock().unwrap(), "c");
        assert_eq!(t.clear().len(), 2);
        assert_eq!(t.len(), 0);
        assert_eq!(t.room("_INBOX.a", 8), Ok(()));
    }

    #[test]
    fn a_session_needs_its_own_key() {
        let t = Sessions::new(8);
        let start = Instant::now();
        let (a, ka) = open(&t, 1, start);
        let (b, kb) = open(&t, 2, start);
        for (key, why) in [(None, Refusal::NoKey), (Some(&kb), Refusal::WrongKey)] {
            assert_eq!(t.get(a, key, start).unwrap_err(), why);
            assert_eq!(t.close(a, key).unwrap_err(), why);
        }
        // A refused request does not keep the session alive either.
        assert_eq!(
            t.get(a, Some(&kb), start + IDLE).unwrap_err(),
            Refusal::WrongKey
        );
        assert!(t.get(b, Some(&kb), start + IDLE).is_ok());
        let gone = t.expire(start + IDLE + Duration::from_secs(1), IDLE);
        assert_eq!(gone.len(), 1);
        assert_eq!(*gone[0].try_lock().unwrap(), 1);
        assert_eq!(t.get(a, Some(&ka), start).unwrap_err(), Refusal::Gone);
        assert!(t.close(b, Some(&kb)).is_ok());
    }

    #[test]
    fn one_caller_cannot_take_every_session() {
        let t = Sessions::new(4);
        let now = Instant::now();
        let share = per_caller(4);
        assert_eq!(share, 2);
        // Requests of one connection share the reply subject's prefix.
        let ids: Vec<_> = ["_INBOX.x1.r1", "_INBOX.x1.r2"]
            .iter()
            .map(|r| t.insert((), caller_of(r), share, now).unwrap())
            .collect();
        let third = caller_of("_INBOX.x1.r3");
        assert_eq!(t.room(third, share), Err(Full::Caller));
        assert_eq!(t.insert((), third, share, now).unwrap_err().1, Full::Caller);
        // Another caller still has room, up to the total.
        t.insert((), caller_of("_INBOX.y.r1"), share, now).unwrap();
        t.insert((), caller_of("_INBOX.y.r2"), share, now).unwrap();
        assert_eq!(t.room(caller_of("_INBOX.z.r1"), share), Err(Full::Total));
        // A session that ends gives its caller's room back, however it ends.
        assert!(t.remove(ids[0].0).is_some());
        assert_eq!(t.room(caller_of("_INBOX.x1.r4"), share), Ok(()));
        t.insert((), caller_of("_INBOX.x1.r4"), share, now).unwrap();
        assert_eq!(t.expire(now + IDLE * 2, IDLE).len(), 4);
        assert_eq!(t.room(caller_of("_INBOX.x1.r5"), share), Ok(()));
    }

    #[test]
    fn a_callers_share_is_half_of_what_the_host_holds() {
        assert_eq!(per_caller(1), 1);
        assert_eq!(per_caller(2), 1);
        assert_eq!(per_caller(32), 16);
        assert_eq!(per_caller(usize::MAX), MAX_SESSIONS / 2);
    }

    #[test]
    fn callers_are_reply_prefixes_of_bounded_length() {
        assert_eq!(caller_of("_INBOX.abc.def"), "_INBOX.abc");
        assert_eq!(caller_of("plain"), "plain");
        let long = format!("{}.tail", "é".repeat(400));
        assert!(caller_of(&long).len() <= MAX_CALLER);
    }

    #[test]
    fn idle_sessions_expire_and_busy_or_used_ones_stay() {
        let t = Sessions::new(8);
        let start = Instant::now();
        let (idle, ki) = open(&t, 1, start);
        let (used, ku) = open(&t, 2, start);
        let (busy, kb) = open(&t, 3, start);
        assert!(t.get(used, Some(&ku), start + IDLE / 2).is_ok());
        let held = t.get(busy, Some(&kb), start).unwrap();
        let guard = held.try_lock().unwrap();
        // Nothing is idle for longer than IDLE yet.
        assert!(t.expire(start + IDLE, IDLE).is_empty());
        let gone = t.expire(start + IDLE + Duration::from_secs(1), IDLE);
        assert_eq!(gone.len(), 1);
        assert_eq!(*gone[0].try_lock().unwrap(), 1);
        assert!(t.get(idle, Some(&ki), start + IDLE * 2).is_err());
        // A session in a call is never taken from under it, however old its last use.
        let gone = t.expire(start + IDLE * 3, IDLE);
        assert_eq!(gone.len(), 1);
        assert_eq!(*gone[0].try_lock().unwrap(), 2);
        assert_eq!(t.len(), 1);
        // Once its call ends it counts from then.
        drop(guard);
        t.touch(busy, start + IDLE * 3);
        assert!(t.expire(start + IDLE * 4, IDLE).is_empty());
        assert_eq!(t.expire(start + IDLE * 5, IDLE).len(), 1);
        assert_eq!(t.len(), 0);
    }
}
