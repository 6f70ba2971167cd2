//! The serving side of `remote` placement: a host answers other processes' calls of the
//! `remote` modules it serves ([`AppSpec::host`](crate::AppSpec::host)).
//!
//! Per module a host listens on the module's subject in the queue group of the same name
//! (NATS hands each call to one of the module's hosts) and on its own subject for the
//! module's resource sessions. Each message is answered on a task of its own, at most
//! `instances + queue` of the module at once; beyond that a host answers `Overloaded` at
//! once rather than queueing without bound. A request that does not parse, or whose
//! arguments do not decode, is answered with an error: bad input never takes a host down.
//!
//! What it guarantees and what not: the module runs here under this host's manifest entry,
//! and a caller whose entry (component, grants, limits) differs is refused, so a caller
//! never reaches code or rules other than its manifest says. It does not authenticate
//! callers: anyone who may publish on `membrane.<app>.>` can call the app's remote
//! modules. Restrict who may publish there with NATS permissions (SECURITY.md,
//! docs/guide/placement.md).

mod listen;
mod request;
mod served;
mod sessions;

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Semaphore, watch};
use tokio::task::JoinHandle;

use self::listen::{Gate, listen, round_trip, sweep};
use self::served::Served;
use super::protocol::{host_subject, subject};
use crate::app::App;
use crate::connect::Nats;
use crate::error::{Error, ErrorKind, Result};

/// How long the NATS server may take to confirm subscriptions (when serving starts) and
/// unsubscriptions (when it stops).
const CONFIRM_WAIT: Duration = Duration::from_secs(2);

/// Serving the `remote` modules of an app to other hosts over NATS; see
/// [`RemoteHost::start`]. Serves while it lives: [`RemoteHost::shutdown`] stops cleanly,
/// dropping it stops listening at once.
pub struct RemoteHost {
    nats: Arc<Nats>,
    gates: Vec<Arc<Gate>>,
    listeners: Vec<JoinHandle<()>>,
    sweeper: Option<JoinHandle<()>>,
    stop: watch::Sender<bool>,
    // Keeps the app, and so the modules served, alive as long as this.
    _app: App,
}

impl RemoteHost {
    /// Serves the `remote` modules `app` hosts (`AppSpec::host`)
    /// to the app's other hosts over NATS, until the returned [`RemoteHost`] is shut down or
    /// dropped. Spawns its tasks on the caller's tokio runtime.
    ///
    /// Each module is served exactly as a local one: its grants, its limits (its
    /// `instances` and `queue` bound the calls it answers at once; more are answered
    /// `Overloaded`), its supervisor, its metrics. A call whose caller's manifest entry of
    /// the module differs from this app's is refused (`ErrorKind::Link`). Resource sessions
    /// stay on this host until their caller closes them or they are unused for 5 minutes;
    /// each serves only the caller that opened it, which alone holds its key (others are
    /// refused `Denied` and audited), and one caller holds at most half of the module's
    /// `instances` in sessions.
    ///
    /// Anyone who may publish on the app's NATS subjects (`membrane.<app>.>`) can call the
    /// modules served: restrict publishing there with NATS permissions.
    ///
    /// Fails with `ErrorKind::Manifest` when the app hosts no module or has no NATS
    /// connection (`[app] name` and `nats`), and `Unavailable` when NATS refuses the
    /// subscriptions.
    pub async fn start(app: &App) -> Result<RemoteHost> {
        let hosted = &app.inner.hosted;
        if hosted.is_empty() {
            return Err(Error::manifest(
                "this app hosts no remote module; load it with AppSpec::host([...]) \
                 (membrane host <manifest> --modules NAME,...) naming `remote` modules",
            ));
        }
        let nats = app
            .inner
            .cx
            .extensions
            .get::<crate::connect::Nats>()
            .ok_or_else(|| {
                Error::manifest(
                    "this app has no NATS connection to serve its remote modules on; set [app] \
                 name and nats in the manifest",
                )
                .with_key("app.nats")
            })?;
        let (stop, _) = watch::channel(false);
        // Dropped on an error below: the listeners started so far stop with it.
        let mut host = RemoteHost {
            nats: nats.clone(),
            gates: Vec::new(),
            listeners: Vec::new(),
            sweeper: None,
            stop,
            _app: app.clone(),
        };
        for name in hosted {
            let served = Served::new(app.module_arc(name)?);
            let capacity = served.limits().0.clamp(1, u32::MAX as usize >> 1);
            let gate = Arc::new(Gate {
                served,
                nats: nats.clone(),
                permits: Arc::new(Semaphore::new(capacity)),
                capacity,
            });
            let queue = subject(&nats.app, name);
            let shared = nats
                .client
                .queue_subscribe(queue.clone(), queue.clone())
                .await
                .map_err(|e| subscribe_error(name, &queue, e))?;
            let own = host_subject(&nats.app, name, &nats.host_id);
            let pinned = nats
                .client
                .subscribe(own.clone())
                .await
                .map_err(|e| subscribe_error(name, &own, e))?;
            for sub in [shared, pinned] {
                let listener = listen(gate.clone(), sub, host.stop.subscribe());
                host.listeners.push(tokio::spawn(listener));
            }
            host.gates.push(gate);
        }
        // Callers told that this host serves now find its subscriptions in place.
        round_trip(&nats.client).await.map_err(|why| {
            Error::new(
                ErrorKind::Unavailable,
                format!("the NATS server did not confirm this host's subscriptions: {why}"),
            )
            .with_key("app.nats")
        })?;
        host.sweeper = Some(tokio::spawn(sweep(host.gates.clone())));
        tracing::info!(
            target: "membrane::remote",
            app = %nats.app,
            modules = ?hosted,
            host = %nats.host_id,
            "hosting remote modules"
        );
        Ok(host)
    }
}

fn subscribe_error(module: &str, subject: &str, e: async_nats::SubscribeError) -> Error {
    Error::new(
        ErrorKind::Unavailable,
        format!("cannot serve module `{module}`: NATS refused the subscription to {subject}"),
    )
    .with_module(module)
    .with_key("app.nats")
    .with_source(e)
}

impl RemoteHost {
    /// This host's id: in its answers and in its resource sessions' subject.
    pub fn host_id(&self) -> &str {
        &self.nats.host_id
    }

    /// The name of the app whose modules it serves (`[app] name`).
    pub fn app_name(&self) -> &str {
        &self.nats.app
    }

    /// The modules served.
    pub fn modules(&self) -> impl Iterator<Item = &str> {
        self.gates.iter().map(|g| &*g.served.name)
    }

    /// Serves until `shutdown` completes, then stops as [`RemoteHost::shutdown`] does: the
    /// shape of `membrane_serve::Server::run`, so that a program serving HTTP and NATS stops
    /// both on one signal.
    pub async fn run(self, shutdown: impl std::future::Future<Output = ()>) {
        shutdown.await;
        self.shutdown().await;
    }

    /// Stops serving: unsubscribes (new calls go to the module's other hosts, or fail
    /// with `Unavailable` when there is none), answers the calls NATS had delivered
    /// already, and waits for the calls in flight, at most the longest `timeout` of the
    /// modules served. Then ends the resource sessions this host held.
    pub async fn shutdown(mut self) {
        let _ = self.stop.send(true);
        // Bounded: a connection that is down never confirms (Drop aborts what is left).
        let _ = tokio::time::timeout(CONFIRM_WAIT, async {
            for listener in &mut self.listeners {
                let _ = listener.await;
            }
        })
        .await;
        let longest = self
            .gates
            .iter()
            .map(|g| g.served.limits().1)
            .max()
            .unwrap_or_default();
        let until = tokio::time::Instant::now() + longest + CONFIRM_WAIT;
        let mut unfinished = 0;
        for g in &self.gates {
            let all = u32::try_from(g.capacity).unwrap_or(u32::MAX);
            if tokio::time::timeout_at(until, g.permits.acquire_many(all))
                .await
                .is_err()
            {
                unfinished += g.capacity - g.permits.available_permits();
            }
        }
        let mut sessions = 0;
        for g in &self.gates {
            sessions += g.served.sessions.clear().len();
        }
        tracing::info!(
            target: "membrane::remote",
            app = %self.nats.app,
            host = %self.nats.host_id,
            unfinished,
            sessions,
            "stopped hosting remote modules"
        );
    }
}

impl Drop for RemoteHost {
    fn drop(&mut self) {
        for l in &self.listeners {
            l.abort();
        }
        if let Some(s) = &self.sweeper {
            s.abort();
        }
    }
}
