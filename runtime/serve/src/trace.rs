//! W3C trace context: an incoming `traceparent` header is honoured (its trace id becomes
//! the request span's, its span id the parent's); without one, the request starts a trace.

use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};

/// The trace a request belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TraceContext {
    /// 32 lower-case hex digits.
    pub trace_id: String,
    /// The caller's span (16 hex digits), when the request carried a `traceparent`.
    pub parent_id: Option<String>,
    /// This request's span id (16 hex digits).
    pub span_id: String,
    /// The trace flags (`01`: sampled).
    pub flags: String,
}

impl TraceContext {
    /// The context of a request with this `traceparent` header value (if any and valid).
    pub(crate) fn from_header(value: Option<&str>) -> TraceContext {
        match value.and_then(parse) {
            Some((trace_id, parent, flags)) => TraceContext {
                trace_id,
                parent_id: Some(parent),
                span_id: format!("{:016x}", random_nonzero()),
                flags,
            },
            None => TraceContext {
                trace_id: format!("{:016x}{:016x}", random_nonzero(), random_nonzero()),
                parent_id: None,
                span_id: format!("{:016x}", random_nonzero()),
                flags: "01".into(),
            },
        }
    }

    /// The `traceparent` value naming this request's span, for the response.
    pub(crate) fn header(&self) -> String {
        format!("00-{}-{}-{}", self.trace_id, self.span_id, self.flags)
    }
}

/// `00-<trace-id>-<parent-id>-<flags>`; all-zero ids are invalid, as are upper-case hex
/// digits and unknown versions of a different shape.
fn parse(value: &str) -> Option<(String, String, String)> {
    let mut parts = value.trim().split('-');
    let (version, trace, parent, flags) =
        (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    let hex = |s: &str, n: usize| {
        s.len() == n
            && s.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    };
    let zero = |s: &str| s.bytes().all(|b| b == b'0');
    if !hex(version, 2) || version == "ff" || (version == "00" && parts.next().is_some()) {
        return None;
    }
    if !hex(trace, 32) || zero(trace) || !hex(parent, 16) || zero(parent) || !hex(flags, 2) {
        return None;
    }
    Some((trace.into(), parent.into(), flags.into()))
}

fn random_nonzero() -> u64 {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    h.finish().max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn honours_a_valid_traceparent() {
        let t = TraceContext::from_header(Some(
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        ));
        assert_eq!(t.trace_id, "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(t.parent_id.as_deref(), Some("00f067aa0ba902b7"));
        assert_ne!(t.span_id, "00f067aa0ba902b7");
        assert!(
            t.header()
                .starts_with("00-4bf92f3577b34da6a3ce929d0e0e4736-")
        );
    }

    #[test]
    fn starts_a_trace_otherwise() {
        for bad in [
            None,
            Some("garbage"),
            Some("00-00000000000000000000000000000000-00f067aa0ba902b7-01"),
            Some("00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01"),
            Some("ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"),
        ] {
            let t = TraceContext::from_header(bad);
            assert_eq!(t.parent_id, None, "{bad:?}");
            assert_eq!(t.trace_id.len(), 32);
        }
    }
}
