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
//! - Keys are encoded ([`encode`]): JetStream subjects take only some characters, guests
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

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_nats::HeaderMap;

use async_nats::jetstream::{self, context::PublishErrorKind, stream};
use futures_util::StreamExt;
use membrane_core::keyvalue::backend::{
    Backend, Entry, KvError, MAX_KEY, MAX_PAGE, Pending, Usage, Write, Written, check_key,
    check_value, increment,
};

use crate::connect::Nats;
use crate::error::{Error, ErrorKind, Result};
use crate::spec::{BucketSpec, KeyValueSpec};

/// Room left in each stored message beyond the value, for the headers a compare-and-swap
/// adds (the server's `max_message_size` counts them).
const HEADER_ROOM: u64 = 256;

/// How long an increment keeps retrying a swap that others win before it gives up.
const CONTENTION_BUDGET: Duration = Duration::from_secs(10);

/// How long one JetStream request may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

/// JetStream's error code for a write the stream's limits refuse ("maximum bytes
/// exceeded", "maximum messages exceeded").
const STORE_FAILED: u64 = 10077;

/// JetStream's error code for a message larger than the stream's `max_message_size`.
const MESSAGE_TOO_LARGE: u64 = 10054;

/// One bucket's stream.
struct Bucket {
    stream: stream::Stream,
    /// `$KV.<app>_<bucket>.`: a key's subject is this and the encoded key.
    prefix: String,
    spec: BucketSpec,
    /// Reads go to any replica (1 copy: the only one) or to the stream's leader (more
    /// copies: a replica may not have the latest write yet).
    direct: bool,
}

/// The app's buckets in JetStream.
pub(crate) struct NatsKv {
    nats: Arc<Nats>,
    js: jetstream::Context,
    buckets: BTreeMap<String, Arc<Bucket>>,
}

/// The NATS KV bucket name of an app's bucket: `<app>_<bucket>` (bucket names have no
/// `_`, so the split is unambiguous).
pub(crate) fn bucket_name(app: &str, bucket: &str) -> String {
    format!("{app}_{bucket}")
}

/// A guest's key as one subject token: ASCII letters, digits, `-`, `_` and `/` stay, every
/// other byte (`.` and `=` too) becomes `=XX`; the empty key is `=`. Distinct keys give
/// distinct tokens, and a token never holds `.`, `*`, `>` or a space.
pub(crate) fn encode(key: &str) -> String {
    if key.is_empty() {
        return "=".into();
    }
    let mut out = String::with_capacity(key.len());
    for b in key.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'/') {
            out.push(b as char);
        } else {
            out.push_str(&format!("={b:02X}"));
        }
    }
    out
}

/// The key of a token [`encode`] made; `None` for a subject this backend did not write.
pub(crate) fn decode(token: &str) -> Option<String> {
    if token == "=" {
        return Some(String::new());
    }
    let bytes = token.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'=' {
            let hex = token.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

fn unavailable(e: impl std::fmt::Display) -> KvError {
    KvError::Unavailable(e.to_string())
}

/// The stream `bucket` of `app` is kept in, with the manifest's limits.
fn stream_config(app: &str, bucket: &str, spec: &BucketSpec, replicas: usize) -> stream::Config {
    let name = bucket_name(app, bucket);
    let limit = |v: Option<u64>| v.map_or(-1, |v| i64::try_from(v).unwrap_or(i64::MAX));
    // The largest message: the longest key's subject is not counted, the value and its
    // headers are.
    let message = spec.value_limit().saturating_add(HEADER_ROOM);
    stream::Config {
        name: format!("KV_{name}"),
        description: Some(format!(
            "Membrane app {app:?}, bucket {bucket:?} ([app.keyvalue.buckets.{bucket}])"
        )),
        subjects: vec![format!("$KV.{name}.>")],
        max_messages_per_subject: 1,
        max_bytes: limit(spec.quota),
        max_messages: limit(spec.keys),
        max_message_size: i32::try_from(message).unwrap_or(i32::MAX),
        storage: stream::StorageType::File,
        num_replicas: replicas,
        allow_rollup: true,
        deny_delete: true,
        deny_purge: false,
        allow_direct: replicas == 1,
        discard: stream::DiscardPolicy::New,
        ..Default::default()
    }
}

/// Whether an existing stream has the limits `want` sets.
fn same_limits(have: &stream::Config, want: &stream::Config) -> bool {
    have.subjects == want.subjects
        && have.max_messages_per_subject == want.max_messages_per_subject
        && have.max_bytes == want.max_bytes
        && have.max_messages == want.max_messages
        && have.max_message_size == want.max_message_size
        && have.num_replicas == want.num_replicas
        && have.allow_direct == want.allow_direct
        && have.discard == want.discard
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

/// The stream `config` names, created, or updated to `config`'s limits when they differ.
async fn ensure_stream(
    js: &jetstream::Context,
    config: stream::Config,
) -> std::result::Result<stream::Stream, String> {
    match js.get_stream(&config.name).await {
        Ok(mut stream) => {
            let have = stream
                .info()
                .await
                .map_err(|e| e.to_string())?
                .config
                .clone();
            if !same_limits(&have, &config) {
                tracing::info!(target: "membrane::keyvalue", stream = %config.name, "bringing the bucket's stream to the manifest's limits");
                js.update_stream(&config).await.map_err(|e| e.to_string())?;
                return js.get_stream(&config.name).await.map_err(|e| e.to_string());
            }
            Ok(stream)
        }
        Err(e)
            if matches!(e.kind(), jetstream::context::GetStreamErrorKind::JetStream(ref j)
                if j.error_code() == jetstream::ErrorCode::STREAM_NOT_FOUND) =>
        {
            js.create_stream(config).await.map_err(|e| e.to_string())
        }
        Err(e) => Err(e.to_string()),
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

/// The JetStream error behind `e`, if the server answered with one.
fn server_error<'a>(e: &'a (dyn std::error::Error + 'static)) -> Option<&'a jetstream::Error> {
    let mut cur = Some(e);
    while let Some(err) = cur {
        if let Some(j) = err.downcast_ref::<jetstream::Error>() {
            return Some(j);
        }
        cur = err.source();
    }
    None
}

/// A refused publish as the guest sees it: a full bucket or too large a value is a quota
/// error that says which limit (in the embedded store's words), anything else leaves the
/// store unavailable.
fn publish_error(bucket: &str, spec: &BucketSpec, e: &jetstream::context::PublishError) -> KvError {
    match e.kind() {
        PublishErrorKind::MaxPayloadExceeded => {
            return KvError::Quota(format!(
                "the value is larger than the NATS server carries in one message (its \
                 max_payload); raise max_payload on the server or lower \
                 [app.keyvalue.buckets.{bucket}] value"
            ));
        }
        // The stream was made at load: no stream answering now is the server's trouble (a
        // leader being elected, a stream deleted behind the app's back), not a missing bucket.
        PublishErrorKind::StreamNotFound => {
            return unavailable(format!(
                "no JetStream stream answered for bucket {bucket:?} (a leader election, or the \
                 stream was deleted); try again shortly"
            ));
        }
        _ => {}
    }
    match server_error(e) {
        Some(j) if j.error_code().0 == STORE_FAILED => {
            let text = j.to_string();
            match (spec.keys, spec.quota) {
                (Some(k), _) if text.contains("messages") => KvError::Quota(format!(
                    "bucket {bucket:?} holds its most keys ({k}); delete keys or raise [app.keyvalue.buckets.{bucket}] keys"
                )),
                (_, Some(q)) if text.contains("bytes") => KvError::Quota(format!(
                    "bucket {bucket:?} is full: JetStream holds its quota of {} (keys, values and \
                     each entry's headers); delete keys or raise [app.keyvalue.buckets.{bucket}] quota",
                    membrane_core::units::format_size(q)
                )),
                _ => KvError::Quota(format!(
                    "bucket {bucket:?} is full ({text}); delete keys, or raise [app.keyvalue.buckets.{bucket}] quota or keys"
                )),
            }
        }
        Some(j) if j.error_code().0 == MESSAGE_TOO_LARGE => KvError::Quota(format!(
            "the value is larger than bucket {bucket:?} takes ({j}); raise [app.keyvalue.buckets.{bucket}] value"
        )),
        _ => unavailable(e),
    }
}

impl Bucket {
    fn subject(&self, key: &str) -> String {
        let mut s = String::with_capacity(self.prefix.len() + key.len());
        s.push_str(&self.prefix);
        s.push_str(&encode(key));
        s
    }

    /// The key's latest message as an entry; `None` when it has none (or a marker another
    /// KV client left).
    async fn read(&self, key: &str) -> std::result::Result<Option<Entry>, KvError> {
        let subject = self.subject(key);
        let message = if self.direct {
            match self.stream.direct_get_last_for_subject(subject).await {
                Ok(m) => m,
                Err(e) if e.kind() == stream::DirectGetErrorKind::NotFound => return Ok(None),
                Err(e) => return Err(unavailable(e)),
            }
        } else {
            match self.stream.get_last_raw_message_by_subject(&subject).await {
                Ok(m) => m,
                Err(e) if e.kind() == stream::LastRawMessageErrorKind::NoMessageFound => {
                    return Ok(None);
                }
                Err(e) => return Err(unavailable(e)),
            }
        };
        let marker = message
            .headers
            .get("KV-Operation")
            .is_some_and(|op| op.as_str() != "PUT");
        Ok((!marker).then(|| Entry {
            value: message.payload.to_vec(),
            revision: message.sequence,
        }))
    }

    /// Publishes `value` under `key`; when `expect` is given, only if the key's revision
    /// is still that (0: absent). `Ok(None)`: the revision no longer matched.
    async fn publish(
        &self,
        js: &jetstream::Context,
        bucket: &str,
        key: &str,
        value: Vec<u8>,
        expect: Option<u64>,
    ) -> std::result::Result<Option<u64>, KvError> {
        check_value(bucket, &self.spec, &value)?;
        let subject = self.subject(key);
        let sent = match expect {
            None => js.publish(subject, value.into()).await,
            Some(revision) => {
                let mut headers = HeaderMap::new();
                headers.insert(
                    "Nats-Expected-Last-Subject-Sequence",
                    revision.to_string().as_str(),
                );
                js.publish_with_headers(subject, headers, value.into())
                    .await
            }
        };
        let ack = match sent {
            Ok(ack) => ack.await,
            Err(e) => Err(e),
        };
        match ack {
            Ok(ack) => Ok(Some(ack.sequence)),
            Err(e) if e.kind() == PublishErrorKind::WrongLastSequence => Ok(None),
            Err(e) => Err(publish_error(bucket, &self.spec, &e)),
        }
    }

    async fn delete(&self, key: &str) -> std::result::Result<(), KvError> {
        match self.stream.purge().filter(self.subject(key)).await {
            Ok(_) => Ok(()),
            Err(e) => Err(unavailable(e)),
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_key_has_one_token_and_comes_back() {
        for key in [
            "",
            "=",
            "a",
            "a b",
            ".a",
            "a.",
            "a..b",
            "*",
            ">",
            "ü",
            "дом",
            "=3D",
            "a/b_c-d",
            "tab\there",
            "\u{0}",
        ] {
            let token = encode(key);
            assert!(
                token
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_/=".contains(&b)),
                "{key:?} -> {token:?}"
            );
            assert!(!token.is_empty());
            assert_eq!(decode(&token).as_deref(), Some(key), "{key:?} -> {token:?}");
        }
        assert_ne!(encode(""), encode("="));
        assert_eq!(decode("=4"), None);
        assert_eq!(decode("=ZZ"), None);
        assert_eq!(decode("=FF"), None, "not UTF-8");
    }

    #[test]
    fn streams_carry_the_manifests_limits() {
        let spec = BucketSpec::new().quota(4096).keys(10).value(100);
        let c = stream_config("notes", "counters", &spec, 1);
        assert_eq!(c.name, "KV_notes_counters");
        assert_eq!(c.subjects, ["$KV.notes_counters.>"]);
        assert_eq!((c.max_bytes, c.max_messages), (4096, 10));
        assert_eq!(c.max_message_size, 100 + HEADER_ROOM as i32);
        assert!(c.allow_direct);
        let c = stream_config("notes", "x", &BucketSpec::new(), 3);
        assert_eq!((c.max_bytes, c.max_messages), (-1, -1));
        assert!(!c.allow_direct, "3 copies: reads through the leader");
        assert!(same_limits(&c, &c.clone()));
        assert!(!same_limits(&c, &stream_config("notes", "x", &spec, 3)));
    }
}
