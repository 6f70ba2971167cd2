//! The buckets of a `process` module: the store is the host's, so a worker's guest reaches
//! it through the host over the worker's connection (`wire/keyvalue.rs`). The worker has
//! no path to the store's file and no network; it runs the same `wasi:keyvalue` capability
//! as an in-process module, with [`ThroughHost`] as its store.
//!
//! The host does not trust the worker: [`HostBuckets`] checks every request against the
//! module's grants as the host knows them (not as the worker says), and a request for a
//! bucket the module was not granted, or a write to a read-only one, is something an
//! honest worker never sends (its own capability refuses first): the denial is counted and
//! audited, and the worker is killed as crashed.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use membrane_core::keyvalue::backend::{
    Backend, Entry, KvError, Pending, Usage, Write, Written, wait_until,
};

use crate::metrics::{Capability, ModuleMetrics};
use crate::spec::BucketAccess;
use crate::wire::keyvalue::{Answer, Request, put_answer, put_request, read_answer, read_request};

/// The host's side: the app's store and what the module may do with it.
pub(crate) struct HostBuckets {
    store: Arc<dyn Backend>,
    grants: BTreeMap<String, BucketAccess>,
    metrics: Arc<ModuleMetrics>,
}

impl HostBuckets {
    /// The buckets of a module granted `grants`, in `store`.
    pub(crate) fn new(
        store: Arc<dyn Backend>,
        grants: BTreeMap<String, BucketAccess>,
        metrics: Arc<ModuleMetrics>,
    ) -> HostBuckets {
        HostBuckets {
            store,
            grants,
            metrics,
        }
    }

    /// The worker's request in `body`, checked against the module's grants; `Err` says why
    /// the worker broke the protocol or its grants (it is then killed).
    pub(crate) fn request(&self, body: &[u8]) -> Result<Request, String> {
        let req =
            read_request(body).map_err(|e| format!("sent a malformed key-value request ({e})"))?;
        let allowed = match self.grants.get(req.bucket()) {
            Some(BucketAccess::ReadWrite) => true,
            Some(BucketAccess::ReadOnly) => !req.writes(),
            None => false,
        };
        if !allowed {
            let what = if req.writes() {
                format!("write to bucket {:?} (a worker asked)", req.bucket())
            } else {
                format!("open bucket {:?} (a worker asked)", req.bucket())
            };
            self.metrics.denied(Capability::KeyValue, &what);
            return Err(format!(
                "asked for what its grants do not allow ({what}); an honest worker's own check refuses that first"
            ));
        }
        Ok(req)
    }

    /// Runs a checked request on the store.
    pub(crate) fn run(&self, req: Request) -> Pending<'_, Answer> {
        Box::pin(async move {
            match req {
                Request::Get { bucket, key } => {
                    self.store.get(&bucket, &key).await.map(Answer::Entry)
                }
                Request::List {
                    bucket,
                    after,
                    limit,
                } => self
                    .store
                    .list(&bucket, after.as_deref(), limit as usize)
                    .await
                    .map(|(keys, more)| Answer::Keys(keys, more)),
                Request::Write { bucket, write } => {
                    self.store.write(&bucket, write).await.map(Answer::Written)
                }
            }
        })
    }

    /// [`HostBuckets::run`], blocking the thread until the call's `deadline` at most,
    /// answer encoded into `out`.
    pub(crate) fn answer_blocking(&self, req: Request, deadline: Instant, out: &mut Vec<u8>) {
        put_answer(out, &wait_until(self.run(req), Some(deadline)));
    }
}

/// The worker's side: a store whose every operation is a request to the host on this
/// thread's connection.
pub(crate) struct ThroughHost;

impl ThroughHost {
    fn ask(req: &Request) -> Result<Answer, KvError> {
        super::connection::exchange_on_connection(
            |body| put_request(body, req),
            |answer| read_answer(answer).map_err(|e| e.to_string()),
        )
        .map_err(KvError::Unavailable)?
    }
}

fn unexpected<T>() -> Result<T, KvError> {
    Err(KvError::Unavailable(
        "the host answered a key-value request with another kind of answer".into(),
    ))
}

impl Backend for ThroughHost {
    fn get<'a>(&'a self, bucket: &'a str, key: &'a str) -> Pending<'a, Option<Entry>> {
        let r = Self::ask(&Request::Get {
            bucket: bucket.into(),
            key: key.into(),
        })
        .and_then(|a| match a {
            Answer::Entry(e) => Ok(e),
            _ => unexpected(),
        });
        Box::pin(std::future::ready(r))
    }

    fn list<'a>(
        &'a self,
        bucket: &'a str,
        after: Option<&'a str>,
        limit: usize,
    ) -> Pending<'a, (Vec<String>, bool)> {
        let r = Self::ask(&Request::List {
            bucket: bucket.into(),
            after: after.map(Into::into),
            limit: u32::try_from(limit).unwrap_or(u32::MAX),
        })
        .and_then(|a| match a {
            Answer::Keys(keys, more) => Ok((keys, more)),
            _ => unexpected(),
        });
        Box::pin(std::future::ready(r))
    }

    fn write<'a>(&'a self, bucket: &'a str, write: Write) -> Pending<'a, Written> {
        let r = Self::ask(&Request::Write {
            bucket: bucket.into(),
            write,
        })
        .and_then(|a| match a {
            Answer::Written(w) => Ok(w),
            _ => unexpected(),
        });
        Box::pin(std::future::ready(r))
    }

    fn usage<'a>(&'a self, _bucket: &'a str) -> Pending<'a, Usage> {
        // The host reports use (/status); a guest has no call that asks.
        Box::pin(std::future::ready(Err(KvError::Unavailable(
            "a worker does not report bucket use; the host does".into(),
        ))))
    }
}
