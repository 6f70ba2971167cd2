//! A `process` module's `wasi:keyvalue` operations on their way to the host, which holds
//! the app's store: the worker sends each operation as a [`KV`](super::message::KV) frame
//! and waits for the [`KV_OK`](super::message::KV_OK) answer; the host checks it against
//! the module's grants before it touches the store (a worker is hostile).
//!
//! Request: an op byte, the bucket (u32 LE length + UTF-8), then per op:
//!
//! | op | fields |
//! |---|---|
//! | [`GET`] | key |
//! | [`LIST`] | a flag byte and (when 1) the key to list after, the page's limit (u32 LE) |
//! | [`SET`] | key, value (u32 LE length + bytes) |
//! | [`DELETE`] | key |
//! | [`INCREMENT`] | key, delta (i64 LE) |
//! | [`SWAP`] | key, value, a flag byte and (when 1) the revision (u64 LE) |
//!
//! Answer: 0 and the result, or 1, the error's kind (a byte) and its message. Results: an
//! entry (a flag byte, then its value and revision), keys (a count, each key, a byte for
//! "more"), or what a write did (0 done, 1 and the number, 2 and the entry of a conflict).

use crate::error::Result;
use crate::keyvalue::backend::{Entry, KvError, Write, Written};

use super::message::malformed;

/// Read a key.
pub const GET: u8 = 1;
/// List keys.
pub const LIST: u8 = 2;
/// Set a key.
pub const SET: u8 = 3;
/// Delete a key.
pub const DELETE: u8 = 4;
/// Increment a key's number.
pub const INCREMENT: u8 = 5;
/// Compare-and-swap a key.
pub const SWAP: u8 = 6;

/// One operation of a guest on a bucket.
#[derive(Debug, Clone, PartialEq, Eq)]
#[allow(missing_docs)] // the fields are what their names say
pub enum Request {
    Get {
        bucket: String,
        key: String,
    },
    List {
        bucket: String,
        after: Option<String>,
        limit: u32,
    },
    Write {
        bucket: String,
        write: Write,
    },
}

impl Request {
    /// The bucket it operates on.
    pub fn bucket(&self) -> &str {
        match self {
            Request::Get { bucket, .. }
            | Request::List { bucket, .. }
            | Request::Write { bucket, .. } => bucket,
        }
    }

    /// Whether it writes.
    pub fn writes(&self) -> bool {
        matches!(self, Request::Write { .. })
    }
}

/// What an operation answered.
#[derive(Debug, Clone, PartialEq, Eq)]
#[allow(missing_docs)]
pub enum Answer {
    Entry(Option<Entry>),
    Keys(Vec<String>, bool),
    Written(Written),
}

fn put_bytes(out: &mut Vec<u8>, b: &[u8]) {
    out.extend_from_slice(&u32::try_from(b.len()).unwrap_or(u32::MAX).to_le_bytes());
    out.extend_from_slice(b);
}

fn put_entry(out: &mut Vec<u8>, e: &Option<Entry>) {
    match e {
        None => out.push(0),
        Some(e) => {
            out.push(1);
            put_bytes(out, &e.value);
            out.extend_from_slice(&e.revision.to_le_bytes());
        }
    }
}

/// Writes `r` as a request body.
pub fn put_request(out: &mut Vec<u8>, r: &Request) {
    let (op, bucket) = match r {
        Request::Get { bucket, .. } => (GET, bucket),
        Request::List { bucket, .. } => (LIST, bucket),
        Request::Write { bucket, write } => (
            match write {
                Write::Set { .. } => SET,
                Write::Delete { .. } => DELETE,
                Write::Increment { .. } => INCREMENT,
                Write::Swap { .. } => SWAP,
            },
            bucket,
        ),
    };
    out.push(op);
    put_bytes(out, bucket.as_bytes());
    match r {
        Request::Get { key, .. } => put_bytes(out, key.as_bytes()),
        Request::List { after, limit, .. } => {
            match after {
                None => out.push(0),
                Some(a) => {
                    out.push(1);
                    put_bytes(out, a.as_bytes());
                }
            }
            out.extend_from_slice(&limit.to_le_bytes());
        }
        Request::Write { write, .. } => {
            put_bytes(out, write.key().as_bytes());
            match write {
                Write::Set { value, .. } => put_bytes(out, value),
                Write::Delete { .. } => {}
                Write::Increment { delta, .. } => out.extend_from_slice(&delta.to_le_bytes()),
                Write::Swap {
                    value, revision, ..
                } => {
                    put_bytes(out, value);
                    match revision {
                        None => out.push(0),
                        Some(r) => {
                            out.push(1);
                            out.extend_from_slice(&r.to_le_bytes());
                        }
                    }
                }
            }
        }
    }
}

/// Reads a body field by field; every read checks what is left.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        if self.0.len() < n {
            return Err(malformed("a key-value message is cut short"));
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }

    fn byte(&mut self) -> Result<u8> {
        Ok(self.take(1)?[0])
    }

    fn u32(&mut self) -> Result<u32> {
        Ok(u32::from_le_bytes(self.take(4)?.try_into().unwrap()))
    }

    fn u64(&mut self) -> Result<u64> {
        Ok(u64::from_le_bytes(self.take(8)?.try_into().unwrap()))
    }

    fn bytes(&mut self) -> Result<&'a [u8]> {
        let n = self.u32()? as usize;
        self.take(n)
    }

    fn string(&mut self) -> Result<String> {
        std::str::from_utf8(self.bytes()?)
            .map(str::to_string)
            .map_err(|_| malformed("a key-value message holds a string that is not UTF-8"))
    }

    fn flag(&mut self) -> Result<bool> {
        match self.byte()? {
            0 => Ok(false),
            1 => Ok(true),
            b => Err(malformed(&format!("a key-value message has flag {b}"))),
        }
    }

    fn entry(&mut self) -> Result<Option<Entry>> {
        if !self.flag()? {
            return Ok(None);
        }
        let value = self.bytes()?.to_vec();
        Ok(Some(Entry {
            value,
            revision: self.u64()?,
        }))
    }

    fn end(&self) -> Result<()> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(malformed("a key-value message has bytes after its end"))
        }
    }
}

/// Reads a request body (from a worker: every field checked, nothing trusted).
pub fn read_request(body: &[u8]) -> Result<Request> {
    let mut r = Reader(body);
    let op = r.byte()?;
    let bucket = r.string()?;
    let request = match op {
        GET => Request::Get {
            bucket,
            key: r.string()?,
        },
        LIST => {
            let after = if r.flag()? { Some(r.string()?) } else { None };
            Request::List {
                bucket,
                after,
                limit: r.u32()?,
            }
        }
        SET | DELETE | INCREMENT | SWAP => {
            let key = r.string()?;
            let write = match op {
                SET => Write::Set {
                    key,
                    value: r.bytes()?.to_vec(),
                },
                DELETE => Write::Delete { key },
                INCREMENT => Write::Increment {
                    key,
                    delta: r.u64()? as i64,
                },
                _ => {
                    let value = r.bytes()?.to_vec();
                    let revision = if r.flag()? { Some(r.u64()?) } else { None };
                    Write::Swap {
                        key,
                        value,
                        revision,
                    }
                }
            };
            Request::Write { bucket, write }
        }
        other => return Err(malformed(&format!("no key-value operation {other}"))),
    };
    r.end()?;
    Ok(request)
}

fn error_kind(e: &KvError) -> (u8, &str) {
    match e {
        KvError::NoSuchBucket(m) => (1, m),
        KvError::Quota(m) => (2, m),
        KvError::Invalid(m) => (3, m),
        KvError::NotANumber(m) => (4, m),
        KvError::Unavailable(m) => (5, m),
    }
}

/// Writes an answer body.
pub fn put_answer(out: &mut Vec<u8>, a: &std::result::Result<Answer, KvError>) {
    match a {
        Err(e) => {
            out.push(1);
            let (kind, message) = error_kind(e);
            out.push(kind);
            put_bytes(out, message.as_bytes());
        }
        Ok(a) => {
            out.push(0);
            match a {
                Answer::Entry(e) => {
                    out.push(0);
                    put_entry(out, e);
                }
                Answer::Keys(keys, more) => {
                    out.push(1);
                    out.extend_from_slice(&(keys.len() as u32).to_le_bytes());
                    for k in keys {
                        put_bytes(out, k.as_bytes());
                    }
                    out.push(u8::from(*more));
                }
                Answer::Written(w) => {
                    out.push(2);
                    match w {
                        Written::Done => out.push(0),
                        Written::Number(n) => {
                            out.push(1);
                            out.extend_from_slice(&n.to_le_bytes());
                        }
                        Written::Conflict(e) => {
                            out.push(2);
                            put_entry(out, e);
                        }
                    }
                }
            }
        }
    }
}

/// Reads an answer body (from the host, which the worker trusts; still checked, so that
/// a broken answer is an error and not a panic).
pub fn read_answer(body: &[u8]) -> Result<std::result::Result<Answer, KvError>> {
    let mut r = Reader(body);
    let answer = if r.flag()? {
        let kind = r.byte()?;
        let message = r.string()?;
        Err(match kind {
            1 => KvError::NoSuchBucket(message),
            2 => KvError::Quota(message),
            3 => KvError::Invalid(message),
            4 => KvError::NotANumber(message),
            _ => KvError::Unavailable(message),
        })
    } else {
        Ok(match r.byte()? {
            0 => Answer::Entry(r.entry()?),
            1 => {
                let n = r.u32()? as usize;
                let mut keys = Vec::with_capacity(n.min(crate::keyvalue::backend::MAX_PAGE));
                for _ in 0..n {
                    keys.push(r.string()?);
                }
                Answer::Keys(keys, r.flag()?)
            }
            2 => Answer::Written(match r.byte()? {
                0 => Written::Done,
                1 => Written::Number(r.u64()? as i64),
                _ => Written::Conflict(r.entry()?),
            }),
            other => return Err(malformed(&format!("no key-value answer {other}"))),
        })
    };
    r.end()?;
    Ok(answer)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_and_answers_cross_unchanged() {
        let requests = [
            Request::Get {
                bucket: "b".into(),
                key: "ключ".into(),
            },
            Request::List {
                bucket: "b".into(),
                after: Some("k".into()),
                limit: 1000,
            },
            Request::List {
                bucket: "b".into(),
                after: None,
                limit: 1,
            },
            Request::Write {
                bucket: "b".into(),
                write: Write::Set {
                    key: "".into(),
                    value: vec![0, 1, 2],
                },
            },
            Request::Write {
                bucket: "b".into(),
                write: Write::Delete { key: "k".into() },
            },
            Request::Write {
                bucket: "b".into(),
                write: Write::Increment {
                    key: "n".into(),
                    delta: -5,
                },
            },
            Request::Write {
                bucket: "b".into(),
                write: Write::Swap {
                    key: "k".into(),
                    value: b"v".to_vec(),
                    revision: Some(7),
                },
            },
        ];
        for req in requests {
            let mut out = Vec::new();
            put_request(&mut out, &req);
            assert_eq!(read_request(&out).unwrap(), req);
            // Every shorter body is refused, none panics.
            for n in 0..out.len() {
                assert!(read_request(&out[..n]).is_err(), "{req:?} cut at {n}");
            }
            out.push(0);
            assert!(read_request(&out).is_err(), "a byte too many");
        }
        let entry = Some(Entry {
            value: b"v".to_vec(),
            revision: 3,
        });
        let answers = [
            Ok(Answer::Entry(entry.clone())),
            Ok(Answer::Entry(None)),
            Ok(Answer::Keys(vec!["a".into(), "".into()], true)),
            Ok(Answer::Written(Written::Done)),
            Ok(Answer::Written(Written::Number(-3))),
            Ok(Answer::Written(Written::Conflict(entry))),
            Err(KvError::Quota("full".into())),
            Err(KvError::Unavailable("down".into())),
        ];
        for a in answers {
            let mut out = Vec::new();
            put_answer(&mut out, &a);
            assert_eq!(read_answer(&out).unwrap(), a);
        }
    }

    #[test]
    fn hostile_requests_are_refused() {
        // An unknown op, a length past the body, a string that is not UTF-8.
        assert!(read_request(&[9, 0, 0, 0, 0]).is_err());
        assert!(read_request(&[GET, 0xff, 0xff, 0xff, 0xff, b'b']).is_err());
        assert!(read_request(&[GET, 1, 0, 0, 0, 0xff, 0, 0, 0, 0]).is_err());
        assert!(read_request(&[]).is_err());
    }
}
