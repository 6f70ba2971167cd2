//! The connection a worker's thread serves: its calls arrive on it, and what the guest
//! asks of the host during a call (linked calls, log events, key-value operations) goes
//! back on it.

use std::cell::RefCell;

use super::channel::{Channel, SPIN};
use crate::wire::message::{KV, KV_OK};

thread_local! {
    /// The connection this thread serves, for the guest's linked calls.
    pub(crate) static CONNECTION: RefCell<Option<Channel>> = const { RefCell::new(None) };
}

/// Sends a frame on this thread's connection when it serves one and is not in the middle
/// of a frame; `false` otherwise. Log events of a call go this way, so the host logs them
/// before the call's answer.
pub(crate) fn send_on_connection(tag: u8, body: &[u8]) -> bool {
    CONNECTION.with(|c| match c.try_borrow_mut() {
        Ok(mut c) => c.as_mut().is_some_and(|ch| ch.send(tag, body).is_ok()),
        Err(_) => false,
    })
}

/// Sends a `wasi:keyvalue` request (`write` fills its body) on this thread's connection
/// and reads the host's answer with `read` (`keyvalue.rs`).
pub(crate) fn exchange_on_connection<T>(
    write: impl FnOnce(&mut Vec<u8>),
    read: impl FnOnce(&[u8]) -> std::result::Result<T, String>,
) -> std::result::Result<T, String> {
    CONNECTION.with(|c| {
        let mut c = c.borrow_mut();
        let ch = c.as_mut().ok_or("a key-value operation outside a call")?;
        write(ch.begin(KV));
        ch.finish()
            .map_err(|e| format!("the host connection failed: {e}"))?;
        match ch.recv(None, SPIN) {
            Ok((KV_OK, body)) => read(body),
            Ok((tag, _)) => Err(format!(
                "unexpected message {tag} during a key-value operation"
            )),
            Err(e) => Err(format!("the host connection ended: {e:?}")),
        }
    })
}
