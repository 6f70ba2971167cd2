//! What a refused or failed JetStream operation means to a guest.

use async_nats::jetstream::{self, context::PublishErrorKind};
use membrane_core::keyvalue::backend::KvError;

use crate::spec::BucketSpec;

/// JetStream's error code for a write the stream's limits refuse ("maximum bytes
/// exceeded", "maximum messages exceeded").
const STORE_FAILED: u64 = 10077;

/// JetStream's error code for a message larger than the stream's `max_message_size`.
const MESSAGE_TOO_LARGE: u64 = 10054;

pub(super) fn unavailable(e: impl std::fmt::Display) -> KvError {
    KvError::Unavailable(e.to_string())
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
pub(super) fn publish_error(
    bucket: &str,
    spec: &BucketSpec,
    e: &jetstream::context::PublishError,
) -> KvError {
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
