//! Which span a piece of work belongs to: W3C trace context ids, parsed from and written as
//! a `traceparent` value, and the span current on this thread.
//!
//! The current span is set around each poll of a call's future (as `tracing` enters its
//! spans), so it follows a call across the threads of an async runtime, and a linked call,
//! a worker's message or a NATS request made inside the call reads its parent from it.

use std::cell::Cell;
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};

/// A span's place in a trace.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SpanContext {
    /// The trace (never 0).
    pub trace_id: u128,
    /// The span (never 0).
    pub span_id: u64,
    /// Whether the trace is recorded (the `traceparent` flag `01`).
    pub sampled: bool,
    /// Whether the span lives in another process (it came in a header or a message).
    pub remote: bool,
}

impl SpanContext {
    /// A new span in this span's trace.
    pub fn child(&self) -> SpanContext {
        SpanContext {
            span_id: random_id(),
            remote: false,
            ..*self
        }
    }

    /// The first span of a new trace.
    pub fn root(sampled: bool) -> SpanContext {
        SpanContext {
            trace_id: (u128::from(random_id()) << 64) | u128::from(random_id()),
            span_id: random_id(),
            sampled,
            remote: false,
        }
    }

    /// A `traceparent` value (`00-<trace>-<span>-<flags>`): trace ids of 32 lower-case hex
    /// digits, span ids of 16, neither all zeros, version `00` exactly four fields, other
    /// versions (not `ff`) at least four. `None` for anything else.
    pub fn from_traceparent(value: &str) -> Option<SpanContext> {
        let mut parts = value.trim().split('-');
        let (version, trace, span, flags) =
            (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
        let hex = |s: &str, n: usize| {
            s.len() == n
                && s.bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        };
        if !hex(version, 2) || version == "ff" || (version == "00" && parts.next().is_some()) {
            return None;
        }
        if !hex(trace, 32) || !hex(span, 16) || !hex(flags, 2) {
            return None;
        }
        let trace_id = u128::from_str_radix(trace, 16).ok()?;
        let span_id = u64::from_str_radix(span, 16).ok()?;
        let flags = u8::from_str_radix(flags, 16).ok()?;
        (trace_id != 0 && span_id != 0).then_some(SpanContext {
            trace_id,
            span_id,
            sampled: flags & 1 == 1,
            remote: true,
        })
    }

    /// This span as a `traceparent` value.
    pub fn traceparent(&self) -> String {
        let bytes = self.traceparent_bytes();
        // Only ASCII hex digits and dashes were written.
        String::from_utf8_lossy(&bytes).into_owned()
    }

    /// This span as a `traceparent` value, written without the formatting machinery (every
    /// response carries one: `format!` of the two ids was 2% of a served request's CPU).
    pub fn traceparent_bytes(&self) -> [u8; 55] {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut out = *b"00-00000000000000000000000000000000-0000000000000000-00";
        for (i, slot) in out[3..35].iter_mut().enumerate() {
            *slot = HEX[((self.trace_id >> (124 - 4 * i)) & 0xf) as usize];
        }
        for (i, slot) in out[36..52].iter_mut().enumerate() {
            *slot = HEX[((self.span_id >> (60 - 4 * i)) & 0xf) as usize];
        }
        out[54] = if self.sampled { b'1' } else { b'0' };
        out
    }

    /// The trace id as 32 hex digits.
    pub fn trace_hex(&self) -> TraceHex {
        TraceHex(self.trace_id)
    }
}

/// A trace id written as 32 lower-case hex digits when displayed (formatted only if a log
/// line is written).
#[derive(Debug, Clone, Copy)]
pub struct TraceHex(pub u128);

impl std::fmt::Display for TraceHex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:032x}", self.0)
    }
}

/// A random non-zero id (the hash of a counter under a per-process random key).
pub fn random_id() -> u64 {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    thread_local! {
        static KEY: std::collections::hash_map::RandomState =
            std::collections::hash_map::RandomState::new();
    }
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    KEY.with(|k| {
        let mut h = k.build_hasher();
        h.write_u64(n);
        h.finish().max(1)
    })
}

thread_local! {
    static CURRENT: Cell<Option<SpanContext>> = const { Cell::new(None) };
}

/// The span current on this thread (the call or request being polled), if telemetry is
/// on and one is.
pub fn current() -> Option<SpanContext> {
    CURRENT.with(Cell::get)
}

/// Makes `span` current until the guard drops (then the previous one is again).
pub fn enter(span: Option<SpanContext>) -> Entered {
    Entered(CURRENT.with(|c| c.replace(span)))
}

/// The guard of [`enter`].
#[must_use]
pub struct Entered(Option<SpanContext>);

impl Drop for Entered {
    fn drop(&mut self) {
        CURRENT.with(|c| c.set(self.0));
    }
}

/// Polls a future with `span` current.
pub fn scope<F: std::future::Future>(span: Option<SpanContext>, fut: F) -> Scoped<F> {
    Scoped { span, fut }
}

/// The future of [`scope`].
pub struct Scoped<F> {
    span: Option<SpanContext>,
    fut: F,
}

impl<F: std::future::Future> std::future::Future for Scoped<F> {
    type Output = F::Output;

    fn poll(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<F::Output> {
        let _entered = enter(self.span);
        // SAFETY: `fut` is pinned as `self` is: it is never moved out, and `Scoped` has no
        // `Drop` or `Unpin` of its own that could move it.
        unsafe { self.map_unchecked_mut(|s| &mut s.fut) }.poll(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn traceparent_bytes_are_the_formatted_value() {
        let ids = [
            (1u128, 1u64, false),
            (u128::MAX, u64::MAX, true),
            (
                0x0123_4567_89ab_cdef_fedc_ba98_7654_3210,
                0x00f0_67aa_0ba9_02b7,
                true,
            ),
        ];
        let roots = (0..64).map(|_| {
            let r = SpanContext::root(true);
            (r.trace_id, r.span_id, r.span_id.is_multiple_of(2))
        });
        for (trace_id, span_id, sampled) in ids.into_iter().chain(roots) {
            let c = SpanContext {
                trace_id,
                span_id,
                sampled,
                remote: false,
            };
            let formatted = format!(
                "00-{trace_id:032x}-{span_id:016x}-{:02x}",
                u8::from(sampled)
            );
            assert_eq!(&c.traceparent_bytes()[..], formatted.as_bytes());
            assert_eq!(c.traceparent(), formatted);
        }
    }

    #[test]
    fn honours_a_valid_traceparent() {
        let t = SpanContext::from_traceparent(
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        )
        .unwrap();
        assert_eq!(t.trace_id, 0x4bf92f3577b34da6a3ce929d0e0e4736);
        assert_eq!(t.span_id, 0x00f067aa0ba902b7);
        assert!(t.sampled);
        assert_eq!(
            t.traceparent(),
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
        );
        let c = t.child();
        assert_eq!(c.trace_id, t.trace_id);
        assert_ne!(c.span_id, t.span_id);
        let unsampled = SpanContext::from_traceparent(
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00",
        )
        .unwrap();
        assert!(!unsampled.sampled);
    }

    #[test]
    fn refuses_what_is_not_one() {
        for bad in [
            "garbage",
            "",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
            "00-+bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        ] {
            assert_eq!(SpanContext::from_traceparent(bad), None, "{bad:?}");
        }
        assert!(
            SpanContext::from_traceparent(
                "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-future"
            )
            .is_some()
        );
    }

    #[test]
    fn the_current_span_is_restored() {
        let a = SpanContext::root(true);
        let b = a.child();
        assert_eq!(current(), None);
        {
            let _x = enter(Some(a));
            {
                let _y = enter(Some(b));
                assert_eq!(current(), Some(b));
            }
            assert_eq!(current(), Some(a));
        }
        assert_eq!(current(), None);
    }
}
