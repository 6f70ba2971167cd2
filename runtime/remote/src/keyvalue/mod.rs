//! `[app.keyvalue] backend = "nats"`: the app's buckets in NATS JetStream, shared by every
//! host of the app, on the app's NATS connection.
//!
//! Each bucket is a JetStream stream in the layout of a NATS KV bucket (`KV_<app>_<bucket>`,
//! subjects `$KV.<app>_<bucket>.<key>`, one message kept per key), created or brought to
//! the manifest's limits by Membrane when the app loads: the `nats kv` tool can read it.
//! The stream API is used directly rather than async-nats' KV layer: its bucket creation
//! asks for account fields nats-server 2.9 does not send (notes/state.md), and a delete
//! here purges the key's message instead of writing a marker, so a deleted key frees its
//! room in the bucket's limits at once.
//!
//! - Keys are encoded ([`keys::encode`]): JetStream subjects take only some characters, guests
//!   may use any string; the same 1 KiB bound holds as on the embedded store.
//! - A key's revision is the stream sequence of its message; a compare-and-swap publishes
//!   with `Nats-Expected-Last-Subject-Sequence` (0: the key must be absent), which the
//!   stream's leader checks, so increments are exact across hosts: each one reads, adds and
//!   swaps, and tries again on a conflict.
//! - Limits: `value` is checked here before sending (the server's own limit counts
//!   headers); `quota` is the stream's `max_bytes` (what JetStream stores: key, value,
//!   headers and some framing per entry) and `keys` its `max_msgs`, refused with
//!   `DiscardPolicy::New`, so a full bucket still takes overwrites that do not grow it.
//! - Every operation runs on the connection's runtime and fails `Unavailable` at once while
//!   the connection is down, or when it drops during the operation.

mod bucket;
mod errors;
mod keys;
mod stream;

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_nats::jetstream;
use futures_util::StreamExt;
use membrane_core::keyvalue::backend::{
    Backend, Entry, KvError, MAX_KEY, MAX_PAGE, Pending, Usage, Write, Written, check_key,
    increment,
};

use self::bucket::Bucket;
use self::errors::unavailable;
use self::keys::{bucket_name, decode};
use self::stream::{ensure_stream, stream_config};
use crate::connect::Nats;
use crate::error::{Error, ErrorKind, Result};
use crate::spec::KeyValueSpec;

/// How long an increment keeps retrying a swap that others win before it gives up.
const CONTENTION_BUDGET: Duration = Duration::from_secs(10);

/// How long one JetStream request may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

/// The app's buckets in JetStream.
pub(crate) struct NatsKv {
    nats: Arc<Nats>,
    js: jetstream::Context,
    buckets: BTreeMap<String, Arc<Bucket>>,
}

impl NatsKv {
    /// Creates (or brings to the manifest's limits) the streams of `kv`'s buckets for app
    /// `app`, on `nats`. A bucket that cannot be made fails the load, naming it.
    pub(crate) async fn open(nats: Arc<Nats>, app: &str, kv: &KeyValueSpec) -> Result<NatsKv> {
        let mut js = jetstream::new(nats.client.clone());
        js.set_timeout(REQUEST_TIMEOUT);
        let replicas = kv.replicas.unwrap_or(1) as usize;
        let mut buckets = BTreeMap::new();
        for (bucket, spec) in &kv.buckets {
            let config = stream_config(app, bucket, spec, replicas);
            let name = config.name.clone();
            let js2 = js.clone();
            let made = nats
                .handle()
                .spawn(async move { ensure_stream(&js2, config).await })
                .await
                .map_err(|e| Error::new(ErrorKind::HostPanic, e.to_string()))?;
            let stream = made.map_err(|why| {
                Error::new(
                    ErrorKind::Unavailable,
                    format!(
                        "bucket {bucket:?} ([app.keyvalue.buckets.{bucket}]): cannot create or \
                         update its JetStream stream {name}: {why}; is JetStream enabled on the \
                         NATS server (nats-server -js)?"
                    ),
                )
                .with_key(format!("app.keyvalue.buckets.{bucket}"))
            })?;
            buckets.insert(
                bucket.clone(),
                Arc::new(Bucket {
                    stream,
                    prefix: format!("$KV.{}.", bucket_name(app, bucket)),
                    spec: spec.clone(),
                    direct: replicas == 1,
                }),
            );
        }
        tracing::info!(target: "membrane::keyvalue", app, buckets = buckets.len(), replicas, "key-value buckets on NATS JetStream");
        Ok(NatsKv { nats, js, buckets })
    }

    fn bucket(&self, bucket: &str) -> std::result::Result<Arc<Bucket>, KvError> {
        self.buckets
            .get(bucket)
            .cloned()
            .ok_or_else(|| KvError::NoSuchBucket(bucket.to_string()))
    }

    /// Runs `op` on the connection's runtime; `Unavailable` at once while the connection
    /// is down, or as soon as it drops during `op`.
    fn run<T: Send + 'static>(
        &self,
        op: impl Future<Output = std::result::Result<T, KvError>> + Send + 'static,
    ) -> Pending<'static, T> {
        if !self.nats.connected() {
            return Box::pin(std::future::ready(Err(unavailable(
                "this host has lost its NATS connection (app.nats); it is reconnecting, try again shortly",
            ))));
        }
        let mut up = self.nats.up.clone();
        let task = self.nats.handle().spawn(async move {
            tokio::select! {
                r = op => r,
                _ = up.wait_for(|up| !*up) => Err(unavailable(
                    "the NATS connection dropped during the operation; it may or may not have been done",
                )),
            }
        });
        Box::pin(async move { task.await.unwrap_or_else(|e| Err(unavailable(e))) })
    }
}

impl Backend for NatsKv {
    fn get<'a>(&'a self, bucket: &'a str, key: &'a str) -> Pending<'a, Option<Entry>> {
        let b = match self.bucket(bucket).and_then(|b| check_key(key).map(|()| b)) {
            Ok(b) => b,
            Err(e) => return Box::pin(std::future::ready(Err(e))),
        };
        let key = key.to_string();
        self.run(async move { b.read(&key).await })
    }

    fn list<'a>(
        &'a self,
        bucket: &'a str,
        after: Option<&'a str>,
        limit: usize,
    ) -> Pending<'a, (Vec<String>, bool)> {
        let b = match self.bucket(bucket) {
            Ok(b) => b,
            Err(e) => return Box::pin(std::future::ready(Err(e))),
        };
        let after = after.map(str::to_string);
        let limit = limit.clamp(1, MAX_PAGE);
        self.run(async move {
            // The server lists a stream's subjects in no order: all of them, decoded and
            // sorted, give pages that follow each other (as on the embedded store).
            let filter = format!("{}>", b.prefix);
            let mut subjects = b
                .stream
                .info_with_subjects(&filter)
                .await
                .map_err(unavailable)?;
            let mut keys = Vec::new();
            while let Some(item) = subjects.next().await {
                let (subject, _) = item.map_err(unavailable)?;
                if let Some(key) = subject.strip_prefix(&b.prefix).and_then(decode)
                    && key.len() <= MAX_KEY
                    && after.as_deref().is_none_or(|a| key.as_str() > a)
                {
                    keys.push(key);
                }
            }
            keys.sort_unstable();
            let more = keys.len() > limit;
            keys.truncate(limit);
            Ok((keys, more))
        })
    }

    fn write<'a>(&'a self, bucket: &'a str, write: Write) -> Pending<'a, Written> {
        let b = match self
            .bucket(bucket)
            .and_then(|b| check_key(write.key()).map(|()| b))
        {
            Ok(b) => b,
            Err(e) => return Box::pin(std::future::ready(Err(e))),
        };
        let js = self.js.clone();
        let bucket = bucket.to_string();
        self.run(async move {
            match write {
                Write::Set { key, value } => {
                    b.publish(&js, &bucket, &key, value, None).await?;
                    Ok(Written::Done)
                }
                Write::Delete { key } => {
                    b.delete(&key).await?;
                    Ok(Written::Done)
                }
                Write::Swap {
                    key,
                    value,
                    revision,
                } => match b
                    .publish(&js, &bucket, &key, value, Some(revision.unwrap_or(0)))
                    .await?
                {
                    Some(_) => Ok(Written::Done),
                    None => Ok(Written::Conflict(b.read(&key).await?)),
                },
                Write::Increment { key, delta } => {
                    let until = Instant::now() + CONTENTION_BUDGET;
                    loop {
                        let current = b.read(&key).await?;
                        let n = increment(current.as_ref().map(|e| e.value.as_slice()), delta)?;
                        let revision = current.map_or(0, |e| e.revision);
                        let value = n.to_string().into_bytes();
                        if b.publish(&js, &bucket, &key, value, Some(revision))
                            .await?
                            .is_some()
                        {
                            return Ok(Written::Number(n));
                        }
                        tracing::debug!(target: "membrane::keyvalue", bucket, key, "increment lost a race; retrying");
                        if Instant::now() >= until {
                            return Err(unavailable(format!(
                                "the increment of {key:?} lost to other writers for {}s; try again",
                                CONTENTION_BUDGET.as_secs()
                            )));
                        }
                    }
                }
            }
        })
    }

    fn usage<'a>(&'a self, bucket: &'a str) -> Pending<'a, Usage> {
        let b = match self.bucket(bucket) {
            Ok(b) => b,
            Err(e) => return Box::pin(std::future::ready(Err(e))),
        };
        self.run(async move {
            // Asked afresh: the stream handle's info is as of when the bucket was opened.
            let mut stream = b.stream.clone();
            let info = stream.info().await.map_err(unavailable)?;
            Ok(Usage {
                bytes: info.state.bytes,
                keys: info.state.subjects_count,
            })
        })
    }
}

/// The buckets of an app loaded without a NATS connection (`Config::connect_nats` off, for
/// tools such as `membrane graph`): there to be looked at; every operation fails
/// `Unavailable`.
pub(crate) struct Unconnected;

impl Unconnected {
    fn refuse<T: Send + 'static>() -> Pending<'static, T> {
        Box::pin(std::future::ready(Err(unavailable(
            "this app was loaded without connecting to NATS (Config::connect_nats is off)",
        ))))
    }
}

impl Backend for Unconnected {
    fn get<'a>(&'a self, _: &'a str, _: &'a str) -> Pending<'a, Option<Entry>> {
        Self::refuse()
    }

    fn list<'a>(
        &'a self,
        _: &'a str,
        _: Option<&'a str>,
        _: usize,
    ) -> Pending<'a, (Vec<String>, bool)> {
        Self::refuse()
    }

    fn write<'a>(&'a self, _: &'a str, _: Write) -> Pending<'a, Written> {
        Self::refuse()
    }

    fn usage<'a>(&'a self, _: &'a str) -> Pending<'a, Usage> {
        Self::refuse()
    }
}
