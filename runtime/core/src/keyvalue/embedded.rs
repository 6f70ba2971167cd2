//! The embedded store: an app's buckets in one redb file on this machine
//! (`[app.keyvalue] path`), opened by one process at a time.
//!
//! Every acknowledged write is on disk (redb's `Durability::Immediate`: an fsync per
//! commit; `Durability::None` lost whole tables on a process crash, notes/state.md). One
//! writer thread takes every write waiting when it gets to them into one transaction, so
//! concurrent callers share one fsync (group commit) instead of paying one each. Readers
//! use redb's snapshots and never wait for the writer; a write is answered only once it is
//! committed, so a caller reads what it wrote.
//!
//! Layout: a table per bucket (`data:<bucket>`: key -> revision (8 bytes, little-endian) and
//! value), a table of each bucket's use (`usage`: bucket -> bytes and keys), and the last
//! revision handed out (`meta`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::mpsc;

use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
use tokio::sync::oneshot;

use super::backend::{
    Backend, Entry, KvError, MAX_PAGE, Pending, Usage, Write, Written, check_key, check_value,
    increment,
};
use crate::error::{Error, ErrorKind, Result};
use crate::spec::BucketSpec;

const USAGE: TableDefinition<&str, (u64, u64)> = TableDefinition::new("usage");
const META: TableDefinition<&str, u64> = TableDefinition::new("meta");

/// The most writes one commit takes.
const GROUP: usize = 1024;

fn data_table(name: &str) -> TableDefinition<'_, &'static str, &'static [u8]> {
    TableDefinition::new(name)
}

fn table_name(bucket: &str) -> String {
    format!("data:{bucket}")
}

/// A write waiting for the writer thread.
struct Job {
    bucket: String,
    write: Write,
    reply: oneshot::Sender<std::result::Result<Written, KvError>>,
}

/// The store of one app.
pub struct Embedded {
    db: Arc<Database>,
    buckets: Arc<BTreeMap<String, BucketSpec>>,
    jobs: Option<mpsc::Sender<Job>>,
    writer: Option<std::thread::JoinHandle<()>>,
    path: PathBuf,
}

fn unavailable(e: impl std::fmt::Display) -> KvError {
    KvError::Unavailable(e.to_string())
}

impl Embedded {
    /// Opens (creating if needed) the store at `path` with `buckets`; fails when another
    /// process has it open.
    pub fn open(path: &Path, buckets: &BTreeMap<String, BucketSpec>) -> Result<Embedded> {
        let fail =
            |what: String| Error::new(ErrorKind::Manifest, what).with_key("app.keyvalue.path");
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| {
                fail(format!(
                    "app.keyvalue.path: cannot create {}: {e}",
                    dir.display()
                ))
            })?;
        }
        let db = Database::create(path).map_err(|e| match e {
            redb::DatabaseError::DatabaseAlreadyOpen => fail(format!(
                "app.keyvalue.path: {} is in use by another process (the embedded store has one \
                 owner); stop it, or give this app another path",
                path.display()
            )),
            other => fail(format!(
                "app.keyvalue.path: cannot open the store {}: {other}",
                path.display()
            )),
        })?;
        // Every bucket's tables exist before the first read.
        let txn = db.begin_write().map_err(|e| fail(e.to_string()))?;
        {
            let mut usage = txn.open_table(USAGE).map_err(|e| fail(e.to_string()))?;
            txn.open_table(META).map_err(|e| fail(e.to_string()))?;
            for name in buckets.keys() {
                let t = table_name(name);
                txn.open_table(data_table(&t))
                    .map_err(|e| fail(e.to_string()))?;
                if usage
                    .get(name.as_str())
                    .map_err(|e| fail(e.to_string()))?
                    .is_none()
                {
                    usage
                        .insert(name.as_str(), (0, 0))
                        .map_err(|e| fail(e.to_string()))?;
                }
            }
        }
        txn.commit().map_err(|e| fail(e.to_string()))?;
        let db = Arc::new(db);
        let buckets = Arc::new(buckets.clone());
        let (jobs, rx) = mpsc::channel();
        let writer = {
            let (db, buckets) = (db.clone(), buckets.clone());
            std::thread::Builder::new()
                .name("membrane-kv-writer".into())
                .spawn(move || write_loop(&db, &buckets, &rx))
                .map_err(|e| fail(format!("cannot start the store's writer: {e}")))?
        };
        Ok(Embedded {
            db,
            buckets,
            jobs: Some(jobs),
            writer: Some(writer),
            path: path.to_path_buf(),
        })
    }

    /// The store file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn spec(&self, bucket: &str) -> std::result::Result<&BucketSpec, KvError> {
        self.buckets
            .get(bucket)
            .ok_or_else(|| KvError::NoSuchBucket(bucket.to_string()))
    }

    fn read_entry(&self, bucket: &str, key: &str) -> std::result::Result<Option<Entry>, KvError> {
        self.spec(bucket)?;
        check_key(key)?;
        let txn = self.db.begin_read().map_err(unavailable)?;
        let t = table_name(bucket);
        let table = txn.open_table(data_table(&t)).map_err(unavailable)?;
        let found = table.get(key).map_err(unavailable)?;
        Ok(found.map(|v| decode(v.value())))
    }

    fn read_keys(
        &self,
        bucket: &str,
        after: Option<&str>,
        limit: usize,
    ) -> std::result::Result<(Vec<String>, bool), KvError> {
        self.spec(bucket)?;
        let limit = limit.clamp(1, MAX_PAGE);
        let txn = self.db.begin_read().map_err(unavailable)?;
        let t = table_name(bucket);
        let table = txn.open_table(data_table(&t)).map_err(unavailable)?;
        let start = match after {
            Some(a) => std::ops::Bound::Excluded(a),
            None => std::ops::Bound::Unbounded,
        };
        let range = table
            .range((start, std::ops::Bound::<&str>::Unbounded))
            .map_err(unavailable)?;
        let mut keys = Vec::new();
        for item in range {
            let (k, _) = item.map_err(unavailable)?;
            if keys.len() == limit {
                return Ok((keys, true));
            }
            keys.push(k.value().to_string());
        }
        Ok((keys, false))
    }
}

impl Drop for Embedded {
    fn drop(&mut self) {
        // The writer ends with its queue; the file is released once it has.
        drop(self.jobs.take());
        if let Some(w) = self.writer.take() {
            let _ = w.join();
        }
    }
}

impl Backend for Embedded {
    fn get<'a>(&'a self, bucket: &'a str, key: &'a str) -> Pending<'a, Option<Entry>> {
        let r = self.read_entry(bucket, key);
        Box::pin(async move { r })
    }

    fn list<'a>(
        &'a self,
        bucket: &'a str,
        after: Option<&'a str>,
        limit: usize,
    ) -> Pending<'a, (Vec<String>, bool)> {
        let r = self.read_keys(bucket, after, limit);
        Box::pin(async move { r })
    }

    fn write<'a>(&'a self, bucket: &'a str, write: Write) -> Pending<'a, Written> {
        let (reply, answer) = oneshot::channel();
        let queued = (|| {
            self.spec(bucket)?;
            check_key(write.key())?;
            let jobs = self
                .jobs
                .as_ref()
                .ok_or_else(|| unavailable("the store is closing"))?;
            jobs.send(Job {
                bucket: bucket.to_string(),
                write,
                reply,
            })
            .map_err(|_| unavailable("the store's writer stopped"))
        })();
        Box::pin(async move {
            queued?;
            answer
                .await
                .map_err(|_| unavailable("the store's writer stopped"))?
        })
    }

    fn usage<'a>(&'a self, bucket: &'a str) -> Pending<'a, Usage> {
        let r = (|| {
            self.spec(bucket)?;
            let txn = self.db.begin_read().map_err(unavailable)?;
            let table = txn.open_table(USAGE).map_err(unavailable)?;
            let (bytes, keys) = table
                .get(bucket)
                .map_err(unavailable)?
                .map(|v| v.value())
                .unwrap_or((0, 0));
            Ok(Usage { bytes, keys })
        })();
        Box::pin(async move { r })
    }
}

fn decode(stored: &[u8]) -> Entry {
    let (rev, value) = stored.split_at(8.min(stored.len()));
    let mut r = [0u8; 8];
    r[..rev.len()].copy_from_slice(rev);
    Entry {
        value: value.to_vec(),
        revision: u64::from_le_bytes(r),
    }
}

fn encode(revision: u64, value: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(8 + value.len());
    v.extend_from_slice(&revision.to_le_bytes());
    v.extend_from_slice(value);
    v
}

/// The writer thread: takes every waiting write into one transaction, commits it (one
/// fsync), then answers each.
fn write_loop(db: &Database, buckets: &BTreeMap<String, BucketSpec>, jobs: &mpsc::Receiver<Job>) {
    while let Ok(first) = jobs.recv() {
        let mut group = vec![first];
        while group.len() < GROUP {
            match jobs.try_recv() {
                Ok(j) => group.push(j),
                Err(_) => break,
            }
        }
        let answers = commit(db, buckets, &group);
        for (job, answer) in group.into_iter().zip(answers) {
            let _ = job.reply.send(answer);
        }
    }
}

type Answer = std::result::Result<Written, KvError>;

fn commit(db: &Database, buckets: &BTreeMap<String, BucketSpec>, group: &[Job]) -> Vec<Answer> {
    let all_failed = |e: KvError| group.iter().map(|_| Err(e.clone())).collect();
    match commit_group(db, buckets, group) {
        Ok(answers) => answers,
        Err(e) => all_failed(e),
    }
}

/// One transaction for the whole group: each bucket's table, use and the revision counter
/// are read once and written once, so a write costs little beyond its own bytes.
fn commit_group(
    db: &Database,
    buckets: &BTreeMap<String, BucketSpec>,
    group: &[Job],
) -> std::result::Result<Vec<Answer>, KvError> {
    let txn = db.begin_write().map_err(unavailable)?;
    let mut answers: Vec<Option<Answer>> = group.iter().map(|_| None).collect();
    {
        let mut usage = txn.open_table(USAGE).map_err(unavailable)?;
        let mut meta = txn.open_table(META).map_err(unavailable)?;
        let mut revision = meta
            .get("revision")
            .map_err(unavailable)?
            .map_or(0, |r| r.value());
        // The group's jobs by bucket, each bucket's in the order they came.
        let mut by_bucket: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
        for (i, job) in group.iter().enumerate() {
            by_bucket.entry(job.bucket.as_str()).or_default().push(i);
        }
        for (bucket, jobs) in by_bucket {
            let Some(spec) = buckets.get(bucket) else {
                for i in jobs {
                    answers[i] = Some(Err(KvError::NoSuchBucket(bucket.to_string())));
                }
                continue;
            };
            let t = table_name(bucket);
            let mut data = txn.open_table(data_table(&t)).map_err(unavailable)?;
            let mut used = usage
                .get(bucket)
                .map_err(unavailable)?
                .map(|v| v.value())
                .unwrap_or((0, 0));
            for i in jobs {
                answers[i] = Some(apply(
                    bucket,
                    spec,
                    &group[i].write,
                    &mut data,
                    &mut used,
                    &mut revision,
                ));
            }
            usage.insert(bucket, used).map_err(unavailable)?;
        }
        meta.insert("revision", revision).map_err(unavailable)?;
    }
    txn.commit().map_err(unavailable)?;
    Ok(answers
        .into_iter()
        .map(|a| a.unwrap_or_else(|| Err(unavailable("a write was not applied"))))
        .collect())
}

/// One write inside the group's transaction: checked completely before anything is
/// written, so a refused write changes nothing. `used` is the bucket's (bytes, keys).
fn apply(
    bucket: &str,
    spec: &BucketSpec,
    write: &Write,
    data: &mut redb::Table<&str, &[u8]>,
    used: &mut (u64, u64),
    revision: &mut u64,
) -> Answer {
    let key = write.key();
    let current = data
        .get(key)
        .map_err(unavailable)?
        .map(|v| decode(v.value()));
    let new_value: Option<Vec<u8>> = match write {
        Write::Set { value, .. } => Some(value.clone()),
        Write::Delete { .. } => None,
        Write::Increment { delta, .. } => Some(
            increment(current.as_ref().map(|e| e.value.as_slice()), *delta)?
                .to_string()
                .into_bytes(),
        ),
        Write::Swap {
            value, revision, ..
        } => {
            if current.as_ref().map(|e| e.revision) != *revision {
                return Ok(Written::Conflict(current));
            }
            Some(value.clone())
        }
    };
    let (bytes, keys) = *used;
    let old_size = current
        .as_ref()
        .map_or(0, |e| (key.len() + e.value.len()) as u64);
    let after = match &new_value {
        None if current.is_none() => return Ok(Written::Done),
        None => (bytes.saturating_sub(old_size), keys.saturating_sub(1)),
        Some(v) => {
            check_value(bucket, spec, v)?;
            let after_bytes = bytes.saturating_sub(old_size) + (key.len() + v.len()) as u64;
            let after_keys = keys + u64::from(current.is_none());
            // A write that leaves the bucket smaller is let through even past a quota
            // that was lowered: it frees room.
            if let Some(q) = spec.quota
                && after_bytes > q
                && after_bytes > bytes
            {
                return Err(KvError::Quota(format!(
                    "bucket {bucket:?} is full: this write would make it {} of its quota of {}; delete keys or raise [app.keyvalue.buckets.{bucket}] quota",
                    crate::units::format_size(after_bytes),
                    crate::units::format_size(q)
                )));
            }
            if let Some(k) = spec.keys
                && after_keys > k
            {
                return Err(KvError::Quota(format!(
                    "bucket {bucket:?} holds its most keys ({k}); delete keys or raise [app.keyvalue.buckets.{bucket}] keys"
                )));
            }
            (after_bytes, after_keys)
        }
    };
    match &new_value {
        None => {
            data.remove(key).map_err(unavailable)?;
        }
        Some(v) => {
            *revision += 1;
            data.insert(key, encode(*revision, v).as_slice())
                .map_err(unavailable)?;
        }
    }
    *used = after;
    Ok(match (write, new_value) {
        (Write::Increment { .. }, Some(v)) => Written::Number(
            std::str::from_utf8(&v)
                .ok()
                .and_then(|s| s.parse().ok())
                .unwrap_or_default(),
        ),
        _ => Written::Done,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::BucketSpec;

    fn rt() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
    }

    fn buckets() -> BTreeMap<String, BucketSpec> {
        [
            ("b".to_string(), BucketSpec::new()),
            (
                "small".to_string(),
                BucketSpec::new().quota(40).keys(3).value(16),
            ),
        ]
        .into_iter()
        .collect()
    }

    fn set(key: &str, value: &str) -> Write {
        Write::Set {
            key: key.into(),
            value: value.as_bytes().to_vec(),
        }
    }

    #[test]
    fn reads_writes_counters_and_swaps() {
        let dir = tempfile::tempdir().unwrap();
        let s = Embedded::open(&dir.path().join("kv.redb"), &buckets()).unwrap();
        rt().block_on(async {
            assert_eq!(s.get("b", "k").await, Ok(None));
            for key in ["k", "", "with space", "dots.and/slashes", "ünïcødé"] {
                assert_eq!(s.write("b", set(key, "v")).await, Ok(Written::Done));
                assert_eq!(s.get("b", key).await.unwrap().unwrap().value, b"v");
            }
            let (keys, more) = s.list("b", None, 2).await.unwrap();
            assert_eq!(
                (keys.as_slice(), more),
                (&["".to_string(), "dots.and/slashes".into()][..], true)
            );
            let (keys, more) = s.list("b", Some("dots.and/slashes"), 10).await.unwrap();
            assert_eq!(keys, ["k", "with space", "ünïcødé"]);
            assert!(!more);
            let inc = |d| Write::Increment {
                key: "n".into(),
                delta: d,
            };
            assert_eq!(s.write("b", inc(5)).await, Ok(Written::Number(5)));
            assert_eq!(s.write("b", inc(-7)).await, Ok(Written::Number(-2)));
            assert_eq!(s.get("b", "n").await.unwrap().unwrap().value, b"-2");
            assert!(matches!(
                s.write(
                    "b",
                    Write::Increment {
                        key: "k".into(),
                        delta: 1
                    }
                )
                .await,
                Err(KvError::NotANumber(_))
            ));
            // Compare-and-swap on the revision.
            let e = s.get("b", "k").await.unwrap().unwrap();
            s.write("b", set("k", "other")).await.unwrap();
            let stale = Write::Swap {
                key: "k".into(),
                value: b"mine".to_vec(),
                revision: Some(e.revision),
            };
            let Ok(Written::Conflict(Some(now))) = s.write("b", stale).await else {
                panic!("a stale swap went through");
            };
            assert_eq!(now.value, b"other");
            let fresh = Write::Swap {
                key: "k".into(),
                value: b"mine".to_vec(),
                revision: Some(now.revision),
            };
            assert_eq!(s.write("b", fresh).await, Ok(Written::Done));
            let create = |v: &str| Write::Swap {
                key: "new".into(),
                value: v.as_bytes().to_vec(),
                revision: None,
            };
            assert_eq!(s.write("b", create("1")).await, Ok(Written::Done));
            assert!(matches!(
                s.write("b", create("2")).await,
                Ok(Written::Conflict(Some(_)))
            ));
            assert_eq!(
                s.write("b", Write::Delete { key: "k".into() }).await,
                Ok(Written::Done)
            );
            assert_eq!(s.get("b", "k").await, Ok(None));
            assert!(matches!(
                s.get("nope", "k").await,
                Err(KvError::NoSuchBucket(_))
            ));
        });
    }

    #[test]
    fn quotas_refuse_and_a_delete_frees_room() {
        let dir = tempfile::tempdir().unwrap();
        let s = Embedded::open(&dir.path().join("kv.redb"), &buckets()).unwrap();
        rt().block_on(async {
            assert!(matches!(
                s.write("small", set("big", &"x".repeat(17))).await,
                Err(KvError::Quota(m)) if m.contains("value")
            ));
            for k in ["a", "b", "c"] {
                s.write("small", set(k, "0123456789")).await.unwrap();
            }
            assert!(matches!(
                s.write("small", set("d", "1")).await,
                Err(KvError::Quota(m)) if m.contains("most keys")
            ));
            // Overwriting within the bytes quota is fine; past it is not.
            s.write("small", set("a", "0123456789abcdef"))
                .await
                .unwrap();
            assert!(matches!(
                s.write("small", set("b", "0123456789abcdef")).await,
                Err(KvError::Quota(m)) if m.contains("is full")
            ));
            assert_eq!(
                s.usage("small").await.unwrap(),
                Usage {
                    bytes: 17 + 11 + 11,
                    keys: 3
                }
            );
            s.write("small", Write::Delete { key: "c".into() })
                .await
                .unwrap();
            s.write("small", set("d", "1")).await.unwrap();
            assert_eq!(s.usage("small").await.unwrap().keys, 3);
        });
    }

    #[test]
    fn writes_survive_a_reopen_and_a_second_owner_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state").join("kv.redb");
        {
            let s = Embedded::open(&path, &buckets()).unwrap();
            rt().block_on(s.write("b", set("kept", "yes"))).unwrap();
            let e = Embedded::open(&path, &buckets()).err().expect("one owner");
            assert_eq!(e.key(), Some("app.keyvalue.path"));
            assert!(e.to_string().contains("in use"), "{e}");
        }
        let s = Embedded::open(&path, &buckets()).unwrap();
        assert_eq!(
            rt().block_on(s.get("b", "kept")).unwrap().unwrap().value,
            b"yes"
        );
    }

    #[test]
    fn concurrent_writers_share_commits_and_lose_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let s = Arc::new(Embedded::open(&dir.path().join("kv.redb"), &buckets()).unwrap());
        let threads: Vec<_> = (0..8)
            .map(|_| {
                let s = s.clone();
                std::thread::spawn(move || {
                    let rt = rt();
                    for _ in 0..25 {
                        rt.block_on(s.write(
                            "b",
                            Write::Increment {
                                key: "n".into(),
                                delta: 1,
                            },
                        ))
                        .unwrap();
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(
            rt().block_on(s.get("b", "n")).unwrap().unwrap().value,
            b"200"
        );
    }
}
