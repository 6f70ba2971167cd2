//! What a store of buckets must do, whichever it is (the embedded file, NATS JetStream):
//! the operations `wasi:keyvalue` needs, with the same key rules, limits and errors on all.
//!
//! Writes are single operations that each backend makes atomic: `set`, `delete`, an
//! `increment` (the value is a number in ASCII decimal, on every backend, so a guest that
//! reads it back sees the same bytes everywhere) and a compare-and-swap on an entry's
//! revision. Every method returns a future: the embedded store answers reads at once and
//! writes when their group commit is on disk, NATS over the network.

use std::future::Future;
use std::pin::Pin;

use crate::spec::BucketSpec;

/// The longest key, in bytes, on every backend (keys are UTF-8 strings).
pub const MAX_KEY: usize = 1024;

/// The most keys one `list` returns.
pub const MAX_PAGE: usize = 1000;

/// A future a backend returns.
pub type Pending<'a, T> = Pin<Box<dyn Future<Output = Result<T, KvError>> + Send + 'a>>;

/// Why an operation failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KvError {
    /// The bucket does not exist in the store.
    NoSuchBucket(String),
    /// The write would pass one of the bucket's limits; nothing was written.
    Quota(String),
    /// The key or value breaks a rule every backend keeps (the message says which).
    Invalid(String),
    /// An increment of a value that is not a decimal integer, or past `i64`.
    NotANumber(String),
    /// The store cannot be reached or failed; the operation may be retried.
    Unavailable(String),
}

impl std::fmt::Display for KvError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            KvError::NoSuchBucket(b) => write!(f, "no bucket {b:?} in the store"),
            KvError::Quota(m) | KvError::Invalid(m) | KvError::NotANumber(m) => f.write_str(m),
            KvError::Unavailable(m) => write!(f, "the key-value store is unavailable: {m}"),
        }
    }
}

impl std::error::Error for KvError {}

/// A value and its revision: a number that changes with every write of the key, for
/// compare-and-swap.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The value's bytes.
    pub value: Vec<u8>,
    /// Its revision: different after every write of the key.
    pub revision: u64,
}

/// One write.
#[derive(Debug, Clone, PartialEq, Eq)]
#[allow(missing_docs)] // the fields are what their names say
pub enum Write {
    /// Stores `value` under `key`.
    Set { key: String, value: Vec<u8> },
    /// Removes `key` (absent: nothing happens).
    Delete { key: String },
    /// Adds `delta` to the key's number (absent: 0) and stores the sum.
    Increment { key: String, delta: i64 },
    /// Stores `value` if the key's revision is still `revision` (`None`: if it is absent).
    Swap {
        key: String,
        value: Vec<u8>,
        revision: Option<u64>,
    },
}

impl Write {
    /// The key written.
    pub fn key(&self) -> &str {
        match self {
            Write::Set { key, .. }
            | Write::Delete { key }
            | Write::Increment { key, .. }
            | Write::Swap { key, .. } => key,
        }
    }
}

/// What a write did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Written {
    /// Stored (or deleted).
    Done,
    /// The number an increment stored.
    Number(i64),
    /// A swap whose revision no longer matched: nothing was written; the entry as it is.
    Conflict(Option<Entry>),
}

/// How much of its limits a bucket uses.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    /// Bytes of keys and values.
    pub bytes: u64,
    /// Keys held.
    pub keys: u64,
}

/// A store of an app's buckets.
pub trait Backend: Send + Sync + 'static {
    /// The key's entry, if it has one.
    fn get<'a>(&'a self, bucket: &'a str, key: &'a str) -> Pending<'a, Option<Entry>>;

    /// Up to `limit` keys (at most [`MAX_PAGE`]) in order, after `after` when given; and
    /// whether more follow.
    fn list<'a>(
        &'a self,
        bucket: &'a str,
        after: Option<&'a str>,
        limit: usize,
    ) -> Pending<'a, (Vec<String>, bool)>;

    /// Makes one write, atomically, durable before the future ends.
    fn write<'a>(&'a self, bucket: &'a str, write: Write) -> Pending<'a, Written>;

    /// What the bucket uses of its limits.
    fn usage<'a>(&'a self, bucket: &'a str) -> Pending<'a, Usage>;
}

/// Runs a backend future to its end on this thread ([`crate::block::block_on`]: the
/// embedded store's complete from its writer thread, NATS's from the connection's runtime).
///
/// An answer that is ready at once (a read of the embedded store) costs one poll. One that
/// is not, on a worker thread of a multi-threaded tokio runtime (a guest's call on the
/// async path), is waited for in `block_in_place`: the worker's other tasks move to another
/// thread meanwhile, so a write waiting for its commit or for NATS does not stall the calls
/// and requests queued behind it.
pub fn wait<T>(f: Pending<'_, T>) -> Result<T, KvError> {
    wait_until(f, None)
}

/// [`wait`], giving up at `deadline` (a guest's call's): the guest then gets `Unavailable`,
/// and its call stops at its next deadline check. What was asked may still be done (a
/// write queued for its commit, a request on its way to NATS).
pub fn wait_until<T>(
    f: Pending<'_, T>,
    deadline: Option<std::time::Instant>,
) -> Result<T, KvError> {
    crate::block::block_on(f, deadline).unwrap_or_else(|| {
        Err(KvError::Unavailable(
            "the call's deadline passed while it waited for the store".into(),
        ))
    })
}

/// Checks a key against the rules every backend keeps.
pub fn check_key(key: &str) -> Result<(), KvError> {
    if key.len() > MAX_KEY {
        return Err(KvError::Invalid(format!(
            "a key of {} bytes is longer than {MAX_KEY}",
            key.len()
        )));
    }
    Ok(())
}

/// Checks a value against its bucket's limit.
pub fn check_value(bucket: &str, spec: &BucketSpec, value: &[u8]) -> Result<(), KvError> {
    let limit = spec.value_limit();
    if value.len() as u64 > limit {
        return Err(KvError::Quota(format!(
            "a value of {} is larger than bucket {bucket:?} takes ({}); raise [app.keyvalue.buckets.{bucket}] value",
            crate::units::format_size(value.len() as u64),
            crate::units::format_size(limit),
        )));
    }
    Ok(())
}

/// The number an increment stores: the current value read as ASCII decimal (absent: 0)
/// plus `delta`.
pub fn increment(current: Option<&[u8]>, delta: i64) -> Result<i64, KvError> {
    let now = match current {
        None => 0,
        Some(bytes) => std::str::from_utf8(bytes)
            .ok()
            .and_then(|s| s.trim().parse::<i64>().ok())
            .ok_or_else(|| {
                KvError::NotANumber(
                    "the value is not a decimal integer, so it cannot be incremented".into(),
                )
            })?,
    };
    now.checked_add(delta).ok_or_else(|| {
        KvError::NotANumber(format!(
            "{now} + {delta} is past the range of a 64-bit integer"
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn increments_read_ascii_decimal() {
        assert_eq!(increment(None, 5), Ok(5));
        assert_eq!(increment(Some(b"41"), 1), Ok(42));
        assert_eq!(increment(Some(b"-3"), -4), Ok(-7));
        assert!(matches!(
            increment(Some(b"forty"), 1),
            Err(KvError::NotANumber(_))
        ));
        assert!(matches!(
            increment(Some(i64::MAX.to_string().as_bytes()), 1),
            Err(KvError::NotANumber(_))
        ));
    }

    #[test]
    fn keys_and_values_have_bounds() {
        assert!(check_key("").is_ok());
        assert!(check_key("a b.c/ü").is_ok());
        assert!(check_key(&"k".repeat(MAX_KEY + 1)).is_err());
        let spec = BucketSpec::new().value(4);
        assert!(check_value("b", &spec, b"1234").is_ok());
        assert!(matches!(
            check_value("b", &spec, b"12345"),
            Err(KvError::Quota(_))
        ));
    }
}
