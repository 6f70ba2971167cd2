//! What a request to a host asks for, read from its headers (`protocol.rs` lists them),
//! and the headers of the answer.
//!
//! Anyone who may publish on the app's subjects can send anything: a request that does not
//! read is answered with an `InvalidArgs` error, never a panic.

use std::time::{Duration, Instant};

use async_nats::HeaderMap;

use crate::error::{Error, ErrorKind, Result};
use crate::protocol::{
    CLOSE, DEADLINE, DROP, ERROR, FUNC, HASH, HOST, NEW_SESSION, SESSION, SESSION_KEY, SessionId,
    SessionKey, TRACEPARENT, parse_deadline,
};

/// The caller's span of a request (`traceparent`), if it sent a valid one.
pub(crate) fn trace(headers: Option<&HeaderMap>) -> Option<crate::telemetry::SpanContext> {
    let value = headers?.get(TRACEPARENT)?.as_str();
    crate::telemetry::SpanContext::from_traceparent(value)
}

/// Which resource session a call runs in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Pin {
    /// None: any instance of the module's pool.
    None,
    /// A new one, opened by this call.
    New,
    /// One this host opened before.
    Id(SessionRef),
}

/// A session a request names, and the key it offers for it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SessionRef {
    pub id: SessionId,
    /// The key sent with the request; `None` when there is none or it is not a key at all
    /// (refused alike: only the session's opener has its key).
    pub key: Option<SessionKey>,
}

impl PartialEq for SessionRef {
    /// Same session, and both keys absent or equal (tests; keys are checked by
    /// [`SessionKey::matches`]).
    fn eq(&self, other: &SessionRef) -> bool {
        self.id == other.id
            && match (&self.key, &other.key) {
                (None, None) => true,
                (Some(a), Some(b)) => a.matches(b),
                _ => false,
            }
    }
}

impl Eq for SessionRef {}

/// What a request asks for.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Ask<'a> {
    /// A call of an export.
    Call { func: &'a str, pin: Pin },
    /// Dropping a resource of a session (its destructor runs there).
    Drop { session: SessionRef, handle: u32 },
    /// Ending a session.
    Close { session: SessionRef },
}

/// A request's headers, read.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Request<'a> {
    pub ask: Ask<'a>,
    /// The caller's `module_hash` of the module.
    pub hash: Option<&'a str>,
    /// The time the caller gives the call; the module's own timeout when absent.
    pub left: Option<Duration>,
}

impl Request<'_> {
    /// The caller's deadline as an instant from `now`, if it gave one (a deadline too far
    /// away to represent is no deadline: the module's own timeout is nearer anyway).
    pub(crate) fn deadline(&self, now: Instant) -> Option<Instant> {
        self.left.and_then(|left| now.checked_add(left))
    }
}

fn invalid(what: impl Into<String>) -> Error {
    Error::new(ErrorKind::InvalidArgs, what.into())
}

/// Reads a request's headers.
pub(crate) fn read(headers: Option<&HeaderMap>) -> Result<Request<'_>> {
    let get = |name: &str| headers.and_then(|h| h.get(name)).map(|v| v.as_str());
    let session = |value: Option<&str>| -> Result<SessionRef> {
        let id = match value {
            Some(v) => SessionId::parse(v).ok_or_else(|| {
                invalid(format!(
                    "the {SESSION} header is not a session id of this host: {:?}",
                    clip(v)
                ))
            })?,
            None => return Err(invalid(format!("the request has no {SESSION} header"))),
        };
        let key = get(SESSION_KEY).and_then(SessionKey::parse);
        Ok(SessionRef { id, key })
    };
    let ask = if get(CLOSE).is_some() {
        Ask::Close {
            session: session(get(SESSION))?,
        }
    } else if let Some(handle) = get(DROP) {
        Ask::Drop {
            session: session(get(SESSION))?,
            handle: handle.parse().map_err(|_| {
                invalid(format!(
                    "the {DROP} header is not a resource handle: {:?}",
                    clip(handle)
                ))
            })?,
        }
    } else {
        let func = get(FUNC)
            .filter(|f| !f.is_empty())
            .ok_or_else(|| invalid(format!("the request names no function ({FUNC} header)")))?;
        let pin = match get(SESSION) {
            None => Pin::None,
            Some(NEW_SESSION) => Pin::New,
            v => Pin::Id(session(v)?),
        };
        Ask::Call { func, pin }
    };
    Ok(Request {
        ask,
        hash: get(HASH),
        left: get(DEADLINE).and_then(parse_deadline),
    })
}

/// At most 64 bytes of `text`, for quoting what a caller sent in a message.
fn clip(text: &str) -> &str {
    let mut end = text.len().min(64);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// The headers of an answer from host `host`: the session it opened, if it did, with its
/// key; whether the body is an error.
pub(crate) fn answer_headers(
    host: &str,
    opened: Option<(SessionId, SessionKey)>,
    error: bool,
) -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert(HOST, host);
    if let Some((id, key)) = opened {
        h.insert(SESSION, id.to_string());
        h.insert(SESSION_KEY, key.text());
    }
    if error {
        h.insert(ERROR, "1");
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, *v);
        }
        h
    }

    #[test]
    fn calls_sessions_drops_and_closes() {
        let h = headers(&[(FUNC, "a:b/c#f"), (DEADLINE, "1500"), (HASH, "ab")]);
        let r = read(Some(&h)).unwrap();
        assert_eq!(
            r,
            Request {
                ask: Ask::Call {
                    func: "a:b/c#f",
                    pin: Pin::None
                },
                hash: Some("ab"),
                left: Some(Duration::from_micros(1500)),
            }
        );
        let h = headers(&[(FUNC, "f"), (SESSION, NEW_SESSION)]);
        assert_eq!(
            read(Some(&h)).unwrap().ask,
            Ask::Call {
                func: "f",
                pin: Pin::New
            }
        );
        let keyed = SessionRef {
            id: SessionId(42),
            key: Some(SessionKey([7; 16])),
        };
        let (id, key) = (ID_42, keyed.key.unwrap().text());
        let h = headers(&[(FUNC, "f"), (SESSION, id), (SESSION_KEY, &key)]);
        assert_eq!(
            read(Some(&h)).unwrap().ask,
            Ask::Call {
                func: "f",
                pin: Pin::Id(keyed)
            }
        );
        let h = headers(&[(DROP, "7"), (SESSION, id), (SESSION_KEY, &key)]);
        assert_eq!(
            read(Some(&h)).unwrap().ask,
            Ask::Drop {
                session: keyed,
                handle: 7
            }
        );
        let h = headers(&[(CLOSE, "1"), (SESSION, id), (SESSION_KEY, &key)]);
        assert_eq!(read(Some(&h)).unwrap().ask, Ask::Close { session: keyed });
        // A missing or malformed key reads as none: the host refuses it as `Denied`.
        let keyless = SessionRef {
            id: SessionId(42),
            key: None,
        };
        for key in [None, Some(""), Some("1"), Some(&key[1..])] {
            let mut h = headers(&[(CLOSE, "1"), (SESSION, id)]);
            if let Some(k) = key {
                h.insert(SESSION_KEY, k);
            }
            let ask = read(Some(&h)).unwrap().ask;
            assert_eq!(ask, Ask::Close { session: keyless }, "{key:?}");
        }
    }

    const ID_42: &str = "0000000000000000000000000000002a";

    #[test]
    fn bad_headers_are_invalid_args() {
        let bad: &[&[(&str, &str)]] = &[
            &[],
            &[(FUNC, "")],
            &[(HASH, "x")],
            &[(FUNC, "f"), (SESSION, "nope")],
            &[(FUNC, "f"), (SESSION, "-1")],
            // Sequential ids of old hosts are no ids.
            &[(FUNC, "f"), (SESSION, "42")],
            &[(DROP, "7")],
            &[(DROP, "x"), (SESSION, ID_42)],
            &[(DROP, "4294967296"), (SESSION, ID_42)],
            &[(DROP, "1"), (SESSION, NEW_SESSION)],
            &[(CLOSE, "1")],
        ];
        for pairs in bad {
            let h = headers(pairs);
            let e = read(Some(&h)).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::InvalidArgs, "{pairs:?}: {e}");
        }
        assert_eq!(
            read(None).unwrap_err().kind(),
            ErrorKind::InvalidArgs,
            "no headers"
        );
    }

    #[test]
    fn deadlines_missing_bad_or_huge() {
        let now = Instant::now();
        let at = |deadline: Option<&str>| {
            let mut h = headers(&[(FUNC, "f")]);
            if let Some(d) = deadline {
                h.insert(DEADLINE, d);
            }
            read(Some(&h)).unwrap().deadline(now)
        };
        assert_eq!(at(None), None);
        assert_eq!(at(Some("soon")), None);
        assert_eq!(at(Some("0")), Some(now));
        assert_eq!(at(Some("2000000")), Some(now + Duration::from_secs(2)));
        // No panic; far enough that the module's timeout is nearer.
        let max = u64::MAX.to_string();
        assert!(at(Some(&max)).is_none_or(|d| d > now + Duration::from_secs(3600)));
    }

    #[test]
    fn quotes_are_clipped_on_a_char_boundary() {
        let long = "é".repeat(100);
        assert!(clip(&long).len() <= 64);
        assert_eq!(clip("abc"), "abc");
    }

    #[test]
    fn answers_name_the_host() {
        let h = answer_headers("h1", Some((SessionId(42), SessionKey([7; 16]))), true);
        assert_eq!(h.get(HOST).unwrap().as_str(), "h1");
        assert_eq!(h.get(SESSION).unwrap().as_str(), ID_42);
        assert_eq!(
            h.get(SESSION_KEY).unwrap().as_str(),
            "07070707070707070707070707070707"
        );
        assert_eq!(h.get(ERROR).unwrap().as_str(), "1");
        let h = answer_headers("h1", None, false);
        assert!(h.get(SESSION).is_none() && h.get(ERROR).is_none());
    }
}
