//! A host's listening: a task per subscription, a task per request it answers (within the
//! module's bound), and the sweeper of idle resource sessions.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_nats::{Message, Subject, Subscriber};
use futures_util::{FutureExt, StreamExt};
use tokio::sync::{Semaphore, watch};

use super::CONFIRM_WAIT;
use super::request::{self, Ask};
use super::served::{Answer, Served};
use super::sessions::IDLE;
use crate::connect::Nats;
use crate::error::{Error, ErrorKind};
use crate::wire::message::put_error;

/// How often idle resource sessions are looked for.
const SWEEP_EVERY: Duration = Duration::from_secs(30);

/// One served module and how much of it may run at once.
pub(super) struct Gate {
    pub(super) served: Served,
    pub(super) nats: Arc<Nats>,
    /// A permit per request answered or waiting for an instance.
    pub(super) permits: Arc<Semaphore>,
    pub(super) capacity: usize,
}

/// Answers the messages of one subscription until told to stop; then unsubscribes and
/// answers what NATS delivered before the unsubscription.
pub(super) async fn listen(gate: Arc<Gate>, mut sub: Subscriber, mut stop: watch::Receiver<bool>) {
    loop {
        tokio::select! {
            biased;
            _ = stopped(&mut stop) => break,
            msg = sub.next() => match msg {
                Some(msg) => gate.dispatch(msg).await,
                None => return,
            },
        }
    }
    // Draining unsubscribes but still delivers what NATS routed here before the server
    // took the unsubscription in, then ends the stream: no call is lost in between.
    if sub.drain().await.is_err() {
        return;
    }
    while let Some(msg) = sub.next().await {
        gate.dispatch(msg).await;
    }
}

/// Waits until the NATS server has processed everything this client sent so far (its
/// subscriptions, its unsubscriptions): a message to a fresh inbox of its own comes back
/// only after them. `flush` only empties the client's buffer.
pub(super) async fn round_trip(client: &async_nats::Client) -> std::result::Result<(), String> {
    let inbox = client.new_inbox();
    let mut echo = client
        .subscribe(inbox.clone())
        .await
        .map_err(|e| e.to_string())?;
    client
        .publish(inbox, bytes::Bytes::new())
        .await
        .map_err(|e| e.to_string())?;
    client.flush().await.map_err(|e| e.to_string())?;
    match tokio::time::timeout(CONFIRM_WAIT, echo.next()).await {
        Ok(Some(_)) => Ok(()),
        Ok(None) => Err("the connection closed".into()),
        Err(_) => Err(format!("no answer in {CONFIRM_WAIT:?}")),
    }
}

/// Completes when the host is told to stop (or is gone).
async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|stop| *stop).await;
}

impl Gate {
    /// Starts answering `msg`, or answers `Overloaded` at once when the module has no room.
    async fn dispatch(self: &Arc<Self>, msg: Message) {
        let Some(reply) = msg.reply.clone() else {
            // Only the end of a session is published without waiting for an answer; one
            // without the session's key is refused all the same (audited, nobody to tell).
            if let Ok(request::Request {
                ask: Ask::Close { session },
                ..
            }) = request::read(msg.headers.as_ref())
            {
                let _ = self.served.close(session, None);
            }
            return;
        };
        let Ok(permit) = self.permits.clone().try_acquire_owned() else {
            let e = self.served.overloaded(self.capacity);
            self.send(reply, Err(e)).await;
            return;
        };
        let gate = self.clone();
        // The caller's span, when it sent one that parses: this host's span of the call is
        // its child (a header that does not parse starts a trace here).
        let parent = crate::telemetry::enabled()
            .then(|| request::trace(msg.headers.as_ref()))
            .flatten();
        tokio::spawn(async move {
            let answer =
                crate::telemetry::scope(parent, AssertUnwindSafe(gate.served.answer(&msg)))
                    .catch_unwind()
                    .await
                    .unwrap_or_else(|_| Err(gate.panicked()));
            drop(msg);
            // The room is free before the caller can hear of it: a caller that calls again
            // at once must not find the module still full.
            drop(permit);
            gate.send(reply, answer).await;
        });
    }

    async fn send(&self, reply: Subject, answer: Answer) {
        let host = &*self.nats.host_id;
        let (headers, body) = match answer {
            Ok((out, opened)) => (request::answer_headers(host, opened, false), out),
            Err(e) => {
                tracing::debug!(
                    target: "membrane::remote",
                    module = %self.served.name,
                    error = %crate::error::chain(&e),
                    "remote call failed"
                );
                let mut body = Vec::new();
                put_error(&mut body, &e);
                (request::answer_headers(host, None, true), body)
            }
        };
        if let Err(e) = self
            .nats
            .client
            .publish_with_headers(reply, headers, body.into())
            .await
        {
            tracing::debug!(target: "membrane::remote", module = %self.served.name, error = %e, "cannot send an answer");
        }
    }

    fn panicked(&self) -> Error {
        let m = &self.served.name;
        Error::new(
            ErrorKind::HostPanic,
            format!(
                "the host serving module `{m}` panicked while answering this call (a bug in \
                 Membrane; the host goes on serving)"
            ),
        )
        .with_module(&**m)
    }
}

/// Ends resource sessions unused for [`IDLE`], every [`SWEEP_EVERY`].
pub(super) async fn sweep(gates: Vec<Arc<Gate>>) {
    let mut tick = tokio::time::interval(SWEEP_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let now = Instant::now();
        for g in &gates {
            let ended = g.served.sessions.expire(now, IDLE);
            if !ended.is_empty() {
                tracing::info!(
                    target: "membrane::remote",
                    module = %g.served.name,
                    sessions = ended.len(),
                    "ended resource sessions unused for {}",
                    humantime::format_duration(IDLE)
                );
            }
        }
    }
}
