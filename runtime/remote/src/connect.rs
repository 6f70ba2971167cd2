//! The app's connection to NATS: made when an app with `remote` modules loads, kept up
//! (reconnecting with back-off, across the servers of a cluster) for as long as it lives.
//!
//! The connection runs on a small tokio runtime of its own, so that it outlives whatever
//! runtime loaded the app and synchronous callers have something to drive their requests.

use std::sync::Arc;
use std::time::Duration;

use async_nats::connection::State;
use async_nats::{Client, ConnectErrorKind, ConnectOptions, Event};

use crate::error::{Error, ErrorKind, Result};
use crate::spec::{NatsSpec, Secret};

/// How long connecting to NATS may take when the app loads.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

/// The longest wait between two reconnection attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(2);

/// Commands (publishes, requests) queued for the connection at most; beyond it callers
/// wait, and during an outage calls fail before queueing ([`Nats::connected`]).
const CLIENT_CAPACITY: usize = 4096;

/// An app's NATS connection.
pub(crate) struct Nats {
    pub client: Client,
    /// The app's name, in every subject.
    pub app: Arc<str>,
    /// This process's id as a host: unique per connection, in session subjects and in
    /// the `Membrane-Host` header of its answers.
    pub host_id: Arc<str>,
    /// Whether the connection is up, as its events say: requests in flight watch it, since
    /// the client does not fail them when the connection drops.
    pub up: tokio::sync::watch::Receiver<bool>,
    runtime: Option<tokio::runtime::Runtime>,
}

/// Whether the app keeps buckets in NATS JetStream (`[app.keyvalue] backend = "nats"`).
pub(crate) fn keyvalue_on_nats(spec: &crate::spec::AppSpec) -> bool {
    spec.keyvalue.backend == crate::spec::KvBackend::Nats && !spec.keyvalue.buckets.is_empty()
}

/// The connection an app needs: one when it has `remote` modules (or hosts some) or keeps
/// its buckets in NATS, none
/// otherwise or when its declaration lacks what a connection needs (validation says so).
pub(crate) async fn for_app(spec: &crate::spec::AppSpec) -> Result<Option<Arc<Nats>>> {
    let remote = !spec.hosted.is_empty()
        || spec
            .modules
            .values()
            .any(|m| m.placement == crate::spec::Placement::Remote)
        || keyvalue_on_nats(spec);
    match (remote, &spec.name, &spec.nats) {
        (true, Some(name), Some(nats))
            if crate::protocol::valid_token(name) && !nats.servers.is_empty() =>
        {
            Ok(Some(Nats::connect(name, nats).await?))
        }
        _ => Ok(None),
    }
}

impl Nats {
    /// Connects to `spec`'s servers for app `app`; fails the load when no server can be
    /// reached or the credentials are refused.
    pub(crate) async fn connect(app: &str, spec: &NatsSpec) -> Result<Arc<Nats>> {
        let (up_tx, up) = tokio::sync::watch::channel(true);
        let options = options(app, spec, up_tx)?;
        let servers: Vec<async_nats::ServerAddr> = spec
            .servers
            .iter()
            .map(|s| {
                s.parse().map_err(|e| {
                    Error::manifest(format!("app.nats: {s:?} is not a NATS server URL ({e})"))
                        .with_key("app.nats")
                })
            })
            .collect::<Result<_>>()?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("membrane-nats")
            .enable_all()
            .build()
            .map_err(|e| Error::io("cannot start the NATS connection's thread", e))?;
        let connected = match runtime
            .spawn(async move { options.connect(servers).await })
            .await
        {
            Ok(Ok(client)) => Ok(client),
            Ok(Err(e)) => Err(connect_error(spec, e)),
            Err(e) => Err(Error::new(
                ErrorKind::HostPanic,
                format!("connecting to NATS: {e}"),
            )),
        };
        let client = match connected {
            Ok(client) => client,
            Err(e) => {
                // Dropping a runtime blocks, which panics on an async task: let it go.
                runtime.shutdown_background();
                return Err(e);
            }
        };
        let host_id = client.new_inbox();
        let host_id = host_id.rsplit('.').next().unwrap_or(&host_id).to_string();
        tracing::info!(target: "membrane::remote", app, servers = ?spec.servers, host = %host_id, "connected to NATS");
        Ok(Arc::new(Nats {
            client,
            app: app.into(),
            host_id: host_id.into(),
            up,
            runtime: Some(runtime),
        }))
    }

    /// Whether the connection is up now. Calls made while it is down fail at once with
    /// `Unavailable` instead of waiting for it.
    pub(crate) fn connected(&self) -> bool {
        self.client.connection_state() == State::Connected
    }

    /// The error of a call made while the connection is down.
    pub(crate) fn down(&self, module: &str) -> Error {
        Error::new(
            ErrorKind::Unavailable,
            format!(
                "module `{module}` is remote and this host has lost its NATS connection \
                 (app.nats); it is reconnecting, try again shortly"
            ),
        )
        .with_module(module)
    }

    /// The runtime that drives the connection (synchronous callers run requests on it).
    pub(crate) fn handle(&self) -> &tokio::runtime::Handle {
        self.runtime
            .as_ref()
            .expect("present until dropped")
            .handle()
    }
}

impl Drop for Nats {
    fn drop(&mut self) {
        if let Some(rt) = self.runtime.take() {
            // May be dropped on an async task: never block here.
            rt.shutdown_background();
        }
    }
}

/// The connection options of `spec`: credentials read now, TLS for `tls://`, reconnection
/// with back-off forever.
fn options(
    app: &str,
    spec: &NatsSpec,
    up: tokio::sync::watch::Sender<bool>,
) -> Result<ConnectOptions> {
    let secret = |s: &Secret, key: &str| {
        s.read().map_err(|why| {
            Error::manifest(format!(
                "the NATS credential of app.nats_auth.{key} cannot be read: {why}"
            ))
            .with_key(format!("app.nats_auth.{key}"))
        })
    };
    let key_of = |s: &Secret, name: &str| format!("{name}_{}", s.form());
    let mut o = ConnectOptions::new();
    if let (Some(user), Some(password)) = (&spec.user, &spec.password) {
        o = o.user_and_password(
            user.clone(),
            secret(password, &key_of(password, "password"))?,
        );
    }
    if let Some(seed) = &spec.nkey {
        o = o.nkey(secret(seed, &key_of(seed, "nkey"))?);
    }
    if let Some(ca) = &spec.tls_ca {
        // Read now, so that a wrong path is a manifest problem, not a failed handshake.
        std::fs::metadata(ca)
            .map_err(|e| e.to_string())
            .and_then(|m| {
                if m.is_file() {
                    Ok(())
                } else {
                    Err("not a file".into())
                }
            })
            .map_err(|why| {
                Error::manifest(format!(
                    "app.nats_auth.tls_ca: cannot read {}: {why}",
                    ca.display()
                ))
                .with_key("app.nats_auth.tls_ca")
            })?;
        o = o.add_root_certificates(ca.clone());
    }
    if spec.servers.iter().any(|s| s.starts_with("tls://")) {
        o = o.require_tls(true);
    }
    Ok(o.name(format!("membrane {app}"))
        .connection_timeout(CONNECT_TIMEOUT)
        .request_timeout(None)
        .client_capacity(CLIENT_CAPACITY)
        .max_reconnects(None)
        .reconnect_delay_callback(backoff)
        .event_callback(move |event| {
            let up = up.clone();
            async move {
            match event {
                Event::Connected => {
                    up.send_replace(true);
                    tracing::info!(target: "membrane::remote", "NATS connection up")
                }
                Event::Disconnected => {
                    up.send_replace(false);
                    tracing::warn!(target: "membrane::remote", "NATS connection lost; reconnecting")
                }
                other => tracing::debug!(target: "membrane::remote", event = %other, "NATS"),
            }
        }}))
}

/// The wait before reconnection attempt `attempts`: at once, then doubling from 10 ms up
/// to [`MAX_BACKOFF`].
fn backoff(attempts: usize) -> Duration {
    if attempts <= 1 {
        return Duration::ZERO;
    }
    let shift = (attempts - 2).min(16) as u32;
    (Duration::from_millis(10) * 2u32.pow(shift)).min(MAX_BACKOFF)
}

/// Whether a connection failed because TLS refused the server (async-nats reports a
/// certificate it refuses as an I/O error carrying the rustls error).
fn tls_refused(e: &async_nats::ConnectError) -> bool {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(e);
    while let Some(c) = cur {
        if c.is::<async_nats::rustls::Error>()
            || c.downcast_ref::<std::io::Error>()
                .and_then(|io| io.get_ref())
                .is_some_and(|inner| inner.is::<async_nats::rustls::Error>())
        {
            return true;
        }
        cur = c.source();
    }
    false
}

fn connect_error(spec: &NatsSpec, e: async_nats::ConnectError) -> Error {
    let servers = spec.servers.join(", ");
    match e.kind() {
        ConnectErrorKind::AuthorizationViolation | ConnectErrorKind::Authentication => Error::new(
            ErrorKind::Denied,
            format!(
                "NATS ({servers}) refused this app's credentials; set them in [app.nats_auth] \
                 (user + password_env/password_file, or nkey_env/nkey_file)"
            ),
        )
        .with_key("app.nats_auth")
        .with_source(e),
        kind if kind == ConnectErrorKind::Tls || tls_refused(&e) => Error::new(
            ErrorKind::Unavailable,
            format!(
                "the TLS connection to NATS ({servers}) failed; check the server's certificate \
                 and app.nats_auth.tls_ca"
            ),
        )
        .with_key("app.nats")
        .with_source(e),
        _ => Error::new(
            ErrorKind::Unavailable,
            format!(
                "cannot connect to NATS at {servers} (app.nats); start a server there \
                 (nats-server) or point app.nats at one"
            ),
        )
        .with_key("app.nats")
        .with_source(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_to_a_cap() {
        assert_eq!(backoff(0), Duration::ZERO);
        assert_eq!(backoff(1), Duration::ZERO);
        assert_eq!(backoff(2), Duration::from_millis(10));
        assert_eq!(backoff(3), Duration::from_millis(20));
        assert_eq!(backoff(100), MAX_BACKOFF);
    }
}
