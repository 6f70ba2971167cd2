//! One connection's life: it must open its first request within `header_timeout` of being
//! accepted, whatever it sends first (nothing, part of a head, or only the HTTP/2 preface and
//! SETTINGS); with no request in flight it is closed after `idle_timeout`; the server may
//! take its slot back for a new connection while no request is in flight ([`super::slots`]);
//! at shutdown it finishes its requests in flight and closes.
//!
//! hyper's HTTP/1 timer covers a head that starts but does not finish, on every request of a
//! keep-alive connection; what it cannot see is the time before hyper-util has read enough
//! bytes to tell HTTP/1 from HTTP/2, and the life of an HTTP/2 connection without streams.
//! Both are counted here, from the service's side: a request is "in flight" from the moment
//! hyper hands its head to the service until its response body has been sent or dropped.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use hyper::body::{Body, Frame, SizeHint};
use tokio::sync::watch;
use tokio::time::Instant;

use super::slots::{Active, Phase, Slot};
use crate::metrics::Metrics;

/// The timers of every connection.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Timers {
    pub header: Duration,
    pub idle: Duration,
}

/// How long a connection that was asked to close gracefully (HTTP/2 GOAWAY) may take to
/// end before it is dropped, when no request of its own is in flight.
const GRACE: Duration = Duration::from_secs(1);

/// Serves one connection until it ends, is closed by a timer or eviction, or the server
/// shuts down (then its requests in flight finish; the server aborts it after its drain).
pub(crate) async fn drive<C, E>(
    conn: C,
    graceful: impl Fn(Pin<&mut C>),
    slot: Arc<Slot>,
    timers: Timers,
    mut shutdown: watch::Receiver<bool>,
    metrics: Arc<Metrics>,
) where
    C: Future<Output = Result<(), E>>,
    E: std::fmt::Display,
{
    tokio::pin!(conn);
    let accepted = Instant::now();
    // Asked to close gracefully with no request in flight, and until when it may take.
    let mut closing: Option<Instant> = None;
    // Asked to close gracefully while requests are in flight: no timer applies any more;
    // they finish under their own limits (and the server's drain time at shutdown).
    let mut draining = false;
    // When to look at the connection next. Requests do not wake this task: when the timer
    // fires, the phase says whether the connection may live on, and until when.
    let mut check = accepted + timers.header;
    loop {
        let timer = async {
            if draining {
                std::future::pending().await
            } else {
                tokio::time::sleep_until(closing.unwrap_or(check)).await
            }
        };
        tokio::select! {
            biased;
            ended = conn.as_mut() => {
                if let Err(e) = ended {
                    // The client's doing: a reset, a timeout, bad HTTP (answered 400).
                    tracing::debug!(target: "membrane::http", error = %e, "connection ended");
                }
                return;
            }
            _ = shutdown.wait_for(|stop| *stop), if !draining => {
                if slot.conn.active() == 0 {
                    return;
                }
                graceful(conn.as_mut());
                draining = true;
            }
            // The slot was taken back for another connection (counted by the accept loop).
            () = slot.conn.changed.notified(), if !draining => {
                if slot.conn.active() == 0 {
                    return;
                }
                // A request arrived just as the slot was taken back: let it finish.
                graceful(conn.as_mut());
                draining = true;
            }
            () = timer => {
                if closing.is_some() {
                    if slot.conn.active() == 0 {
                        metrics.connection_closed("grace-ran-out");
                        return;
                    }
                    // A request came in as the connection was closing: let it finish.
                    draining = true;
                    continue;
                }
                let now = Instant::now();
                match slot.phase() {
                    Some(Phase::Fresh(_)) => {
                        tracing::debug!(target: "membrane::http", "no request within header_timeout of the connection: closed");
                        metrics.connection_closed("first-request-timeout");
                        return;
                    }
                    Some(Phase::Idle(since)) if since + timers.idle <= now => {
                        metrics.connection_closed("idle");
                        graceful(conn.as_mut());
                        closing = Some(now + GRACE);
                    }
                    Some(Phase::Idle(since)) => check = since + timers.idle,
                    // Busy: no request may idle for longer than `idle` after this one ends.
                    Some(Phase::Busy) => check = now + timers.idle,
                    // Taken back: the wake-up is on its way.
                    None => check = now + timers.idle,
                }
            }
        }
    }
}

/// A response body that keeps its request counted as in flight until it ends or drops.
pub(crate) struct Tracked<B> {
    inner: B,
    active: Option<Active>,
}

impl<B> Tracked<B> {
    pub(crate) fn new(inner: B, active: Active) -> Self {
        Tracked {
            inner,
            active: Some(active),
        }
    }
}

impl<B: Body<Data = Bytes> + Unpin> Body for Tracked<B> {
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        if let Poll::Ready(None | Some(Err(_))) = polled {
            self.active = None;
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
