//! A host's resource sessions of one module: each is an instance pinned to one caller's
//! importer instance, named by an id the caller sends with every later call.
//!
//! The table is bounded ([`MAX_SESSIONS`]) and forgets sessions nobody used for
//! [`IDLE`]: a caller that went away without closing its sessions (killed, partitioned)
//! must not hold this host's instances forever. Calls of one session are serialized: a
//! session is one instance, and one importer instance calls it one call at a time anyway.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long a session may go unused before the host ends it.
pub(crate) const IDLE: Duration = Duration::from_secs(5 * 60);

/// Sessions of one module one host keeps at most; more are refused (`Overloaded`).
pub(crate) const MAX_SESSIONS: usize = 1024;

/// A session's state, locked while a call or drop runs in it.
pub(crate) type Shared<T> = Arc<tokio::sync::Mutex<T>>;

/// The sessions of one module, by id.
pub(crate) struct Sessions<T> {
    inner: Mutex<Inner<T>>,
    max: usize,
}

struct Inner<T> {
    /// The id of the next session. Ids are never reused while the host lives, so a
    /// caller's stale id never reaches another caller's session.
    next: u64,
    open: HashMap<u64, Entry<T>>,
}

struct Entry<T> {
    state: Shared<T>,
    last_use: Instant,
}

impl<T> Sessions<T> {
    /// An empty table of at most `max` sessions.
    pub(crate) fn new(max: usize) -> Sessions<T> {
        Sessions {
            inner: Mutex::new(Inner {
                next: 1,
                open: HashMap::new(),
            }),
            max,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner<T>> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether another session fits.
    pub(crate) fn has_room(&self) -> bool {
        self.lock().open.len() < self.max
    }

    /// Keeps `state` as a new session used at `now`; its id, or `state` back when the
    /// table is full.
    pub(crate) fn insert(&self, state: T, now: Instant) -> Result<u64, T> {
        let mut inner = self.lock();
        if inner.open.len() >= self.max {
            return Err(state);
        }
        let id = inner.next;
        inner.next += 1;
        inner.open.insert(
            id,
            Entry {
                state: Arc::new(tokio::sync::Mutex::new(state)),
                last_use: now,
            },
        );
        Ok(id)
    }

    /// Session `id`, marked used at `now`.
    pub(crate) fn get(&self, id: u64, now: Instant) -> Option<Shared<T>> {
        let mut inner = self.lock();
        let e = inner.open.get_mut(&id)?;
        e.last_use = now;
        Some(e.state.clone())
    }

    /// Marks session `id` used at `now` (when a long call in it ends).
    pub(crate) fn touch(&self, id: u64, now: Instant) {
        if let Some(e) = self.lock().open.get_mut(&id) {
            e.last_use = now;
        }
    }

    /// Forgets session `id`; its instance ends once no call runs in it.
    pub(crate) fn remove(&self, id: u64) -> Option<Shared<T>> {
        self.lock().open.remove(&id).map(|e| e.state)
    }

    /// Forgets the sessions unused for more than `idle` at `now` and not in a call;
    /// returns them, so that their instances end outside the table's lock.
    pub(crate) fn expire(&self, now: Instant, idle: Duration) -> Vec<Shared<T>> {
        let mut inner = self.lock();
        let stale: Vec<u64> = inner
            .open
            .iter()
            .filter(|(_, e)| {
                now.saturating_duration_since(e.last_use) > idle && e.state.try_lock().is_ok()
            })
            .map(|(id, _)| *id)
            .collect();
        stale
            .into_iter()
            .filter_map(|id| inner.open.remove(&id).map(|e| e.state))
            .collect()
    }

    /// Forgets every session; returns them, as [`Sessions::expire`] does.
    pub(crate) fn clear(&self) -> Vec<Shared<T>> {
        self.lock().open.drain().map(|(_, e)| e.state).collect()
    }

    /// How many sessions are open.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.lock().open.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_fresh_and_the_table_is_bounded() {
        let t = Sessions::new(2);
        let now = Instant::now();
        let a = t.insert("a", now).unwrap();
        let b = t.insert("b", now).unwrap();
        assert_ne!(a, b);
        assert!(!t.has_room());
        assert_eq!(t.insert("c", now), Err("c"));
        assert!(t.remove(a).is_some());
        assert!(t.remove(a).is_none());
        let c = t.insert("c", now).unwrap();
        // An id is never given out twice.
        assert!(c != a && c != b);
        assert!(t.get(a, now).is_none());
        assert_eq!(*t.get(c, now).unwrap().try_lock().unwrap(), "c");
        assert_eq!(t.clear().len(), 2);
        assert_eq!(t.len(), 0);
    }

    #[test]
    fn idle_sessions_expire_and_busy_or_used_ones_stay() {
        let t = Sessions::new(8);
        let start = Instant::now();
        let idle = t.insert(1, start).unwrap();
        let used = t.insert(2, start).unwrap();
        let busy = t.insert(3, start).unwrap();
        assert!(t.get(used, start + IDLE / 2).is_some());
        let held = t.get(busy, start).unwrap();
        let guard = held.try_lock().unwrap();
        // Nothing is idle for longer than IDLE yet.
        assert!(t.expire(start + IDLE, IDLE).is_empty());
        let gone = t.expire(start + IDLE + Duration::from_secs(1), IDLE);
        assert_eq!(gone.len(), 1);
        assert_eq!(*gone[0].try_lock().unwrap(), 1);
        assert!(t.get(idle, start + IDLE * 2).is_none());
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
