//! `[app.keyvalue]`: the buckets an app keeps its modules' state in, and where they live.
//! Buckets belong to the app (so a live upgrade, a rollback or another placement of a
//! module keeps its data); modules are granted buckets read-only or read-write.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;

/// Where an app's buckets are stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum KvBackend {
    /// One store file on this machine, opened exclusively by the process serving the app.
    #[default]
    Embedded,
    /// NATS JetStream key-value buckets, through the app's NATS connection: the same data
    /// for every host that serves the app.
    Nats,
}

impl fmt::Display for KvBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            KvBackend::Embedded => "embedded",
            KvBackend::Nats => "nats",
        })
    }
}

/// The limits of one bucket; `None` is unbounded (but for the value size, which always has
/// a bound: [`BucketSpec::DEFAULT_VALUE`]).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[non_exhaustive]
pub struct BucketSpec {
    /// Most bytes of keys and values the bucket may hold.
    pub quota: Option<u64>,
    /// Most keys it may hold.
    pub keys: Option<u64>,
    /// Largest value one key may hold.
    pub value: Option<u64>,
}

impl BucketSpec {
    /// The largest value when a bucket does not say: 1 MiB.
    pub const DEFAULT_VALUE: u64 = 1 << 20;

    /// A bucket without limits of its own.
    pub fn new() -> Self {
        Self::default()
    }

    /// Bounds the bytes of keys and values.
    pub fn quota(mut self, bytes: u64) -> Self {
        self.quota = Some(bytes);
        self
    }

    /// Bounds the number of keys.
    pub fn keys(mut self, keys: u64) -> Self {
        self.keys = Some(keys);
        self
    }

    /// Bounds the size of one value.
    pub fn value(mut self, bytes: u64) -> Self {
        self.value = Some(bytes);
        self
    }

    /// The largest value a key may hold.
    pub fn value_limit(&self) -> u64 {
        self.value.unwrap_or(Self::DEFAULT_VALUE)
    }
}

/// The app's key-value settings (`[app.keyvalue]` and `[app.keyvalue.buckets]`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct KeyValueSpec {
    /// Where the buckets are stored.
    pub backend: KvBackend,
    /// The store file of the embedded backend (relative to the manifest).
    pub path: Option<PathBuf>,
    /// Copies of each bucket the NATS backend keeps (1, 3 or 5); `None`: 1.
    pub replicas: Option<u32>,
    /// The buckets, by name.
    pub buckets: BTreeMap<String, BucketSpec>,
}

impl KeyValueSpec {
    /// The longest bucket name.
    pub const MAX_NAME: usize = 64;

    /// Embedded buckets in the store file at `path`.
    pub fn embedded(path: impl Into<PathBuf>) -> Self {
        KeyValueSpec {
            path: Some(path.into()),
            ..Self::default()
        }
    }

    /// Buckets in NATS JetStream, through the app's NATS connection.
    pub fn nats() -> Self {
        KeyValueSpec {
            backend: KvBackend::Nats,
            ..Self::default()
        }
    }

    /// Declares (or replaces) bucket `name`.
    pub fn bucket(mut self, name: impl Into<String>, bucket: BucketSpec) -> Self {
        self.buckets.insert(name.into(), bucket);
        self
    }

    /// Why `name` cannot name a bucket, if it cannot: 1 to 64 ASCII letters, digits and
    /// `-` (a name both backends can store as it is, and that an app's name can prefix
    /// without ambiguity).
    pub fn check_name(name: &str) -> Result<(), String> {
        if name.is_empty() || name.len() > Self::MAX_NAME {
            return Err(format!(
                "a bucket name is 1 to {} characters",
                Self::MAX_NAME
            ));
        }
        if let Some(c) = name
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || *c == '-'))
        {
            return Err(format!(
                "{c:?} cannot be in a bucket name (ASCII letters, digits and '-')"
            ));
        }
        Ok(())
    }
}

/// What a module may do with a bucket it is granted.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
pub enum BucketAccess {
    /// Read keys and values; every write is `access-denied`.
    #[serde(rename = "ro")]
    ReadOnly,
    /// Read and write.
    #[serde(rename = "rw")]
    ReadWrite,
}

impl fmt::Display for BucketAccess {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            BucketAccess::ReadOnly => "ro",
            BucketAccess::ReadWrite => "rw",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_names() {
        for ok in ["counters", "a", "Sessions-2", &"x".repeat(64)] {
            assert!(KeyValueSpec::check_name(ok).is_ok(), "{ok}");
        }
        for bad in ["", "a_b", "a.b", "a b", "ünï", &"x".repeat(65)] {
            assert!(KeyValueSpec::check_name(bad).is_err(), "{bad}");
        }
    }
}
