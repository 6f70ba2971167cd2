//! Each bucket's stream, with the manifest's limits, made or brought up to date at load.

use async_nats::jetstream::{self, stream};

use super::keys::bucket_name;
use crate::spec::BucketSpec;

/// Room left in each stored message beyond the value, for the headers a compare-and-swap
/// adds (the server's `max_message_size` counts them).
const HEADER_ROOM: u64 = 256;

/// The stream `bucket` of `app` is kept in, with the manifest's limits.
pub(super) fn stream_config(
    app: &str,
    bucket: &str,
    spec: &BucketSpec,
    replicas: usize,
) -> stream::Config {
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

/// The stream `config` names, created, or updated to `config`'s limits when they differ.
pub(super) async fn ensure_stream(
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

#[cfg(test)]
mod tests {
    use super::*;

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
