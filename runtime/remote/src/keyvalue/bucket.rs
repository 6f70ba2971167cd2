//! One bucket's operations on its stream: read a key's latest message, publish (with an
//! expected revision for a compare-and-swap), purge.

use async_nats::HeaderMap;
use async_nats::jetstream::{self, context::PublishErrorKind, stream};
use membrane_core::keyvalue::backend::{Entry, KvError, check_value};

use super::errors::{publish_error, unavailable};
use super::keys::encode;
use crate::spec::BucketSpec;

/// One bucket's stream.
pub(super) struct Bucket {
    pub(super) stream: stream::Stream,
    /// `$KV.<app>_<bucket>.`: a key's subject is this and the encoded key.
    pub(super) prefix: String,
    pub(super) spec: BucketSpec,
    /// Reads go to any replica (1 copy: the only one) or to the stream's leader (more
    /// copies: a replica may not have the latest write yet).
    pub(super) direct: bool,
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
    pub(super) async fn read(&self, key: &str) -> std::result::Result<Option<Entry>, KvError> {
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
    pub(super) async fn publish(
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

    pub(super) async fn delete(&self, key: &str) -> std::result::Result<(), KvError> {
        match self.stream.purge().filter(self.subject(key)).await {
            Ok(_) => Ok(()),
            Err(e) => Err(unavailable(e)),
        }
    }
}
