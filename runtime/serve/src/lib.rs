//! `membrane serve`: an app as an HTTP service.
//!
//! Requests are routed by the longest matching path prefix (`[app.http] routes`) to a
//! module that exports `wasi:http/incoming-handler@0.2.x` (checked when the app loads) and
//! run on one of its instances under its limits ([`crate::incoming`]). The server itself
//! protects the modules: malformed HTTP is answered 400 by hyper and never reaches a guest;
//! a client must send a request's head within `header_timeout` (slowloris); a response
//! write that makes no progress for `write_timeout` aborts the connection; at most
//! `max_connections` connections are served at once; HTTP/1.1 keep-alive and HTTP/2 (with
//! prior knowledge) are spoken on one port. At shutdown the listener closes first (new
//! connections are refused), requests in flight get `drain` to finish, then the rest are
//! aborted.
//!
//! An optional second listener serves the admin endpoints ([`admin`]) and, at `/`, a page
//! for the operator (`page`).

mod access;
pub mod admin;
mod conn;
mod control;
mod io;
pub(crate) mod page;
mod service;
mod slots;
mod tls;
mod trace;

// The core's modules, under the names this crate's files use for them.
use membrane_core::{
    app, error, incoming, metrics, module, names, route, sanitize, spec, status, supervisor,
    upgrade,
};

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;

use crate::app::App;
use crate::error::{Error, ErrorKind, Result};
use crate::spec::HttpSpec;

/// hyper's default limit of an HTTP/1.1 connection's read buffer (8 KiB + 400 KiB), kept
/// unless `max_header_size` needs more.
const HYPER_H1_BUFFER: usize = 8192 + 4096 * 100;

/// What `membrane serve` takes from its command line, overriding the manifest.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct ServeOptions {
    /// Overrides `[app.http] listen`.
    pub listen: Option<String>,
    /// Overrides `[app.admin] listen`.
    pub admin: Option<String>,
}

impl ServeOptions {
    /// No overrides.
    pub fn new() -> Self {
        Self::default()
    }

    /// Listens on `addr` instead of `[app.http] listen`.
    pub fn listen(mut self, addr: impl Into<String>) -> Self {
        self.listen = Some(addr.into());
        self
    }

    /// Serves the admin endpoints on `addr` instead of `[app.admin] listen`.
    pub fn admin(mut self, addr: impl Into<String>) -> Self {
        self.admin = Some(addr.into());
        self
    }
}

/// An app bound to its listeners, ready to serve (see [`Server::run`]).
pub struct Server {
    app: App,
    http: HttpSpec,
    listener: TcpListener,
    admin: Option<(TcpListener, access::Access)>,
    tls: Option<TlsReloader>,
}

/// Reads the listener's TLS certificate and key again (see [`Server::tls`]): new
/// handshakes use them, connections already open keep theirs.
#[derive(Clone)]
pub struct TlsReloader(Arc<tls::Tls>);

impl TlsReloader {
    /// Reads `[app.http] tls_cert`, `tls_key` and `tls_client_ca` again. On an error (a file
    /// that does not parse, a key that does not belong to the certificate) the running
    /// certificate stays and the error names the key.
    pub fn reload(&self) -> Result<()> {
        self.0.reload()
    }
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field("listen", &self.local_addr())
            .field("admin", &self.admin_addr())
            .finish()
    }
}

/// Parses and binds one listener address; `what` names the key or flag in errors.
async fn bind(addr: &str, what: &str) -> Result<TcpListener> {
    let parsed: SocketAddr = addr.parse().map_err(|_| {
        Error::new(
            ErrorKind::InvalidArgs,
            format!("{what}: {addr:?} is not an address to listen on; write IP:PORT, such as 127.0.0.1:8080"),
        )
        .with_key(what)
    })?;
    TcpListener::bind(parsed).await.map_err(|e| {
        let hint = if e.kind() == std::io::ErrorKind::AddrInUse {
            let flag = if what.contains("admin") {
                "--admin"
            } else {
                "--listen"
            };
            format!(
                "; another process holds it: stop that one, or choose another address with \
                 {flag} IP:PORT or the manifest's {what}"
            )
        } else {
            String::new()
        };
        Error::new(
            ErrorKind::Io,
            format!("{what}: cannot listen on {parsed}{hint}"),
        )
        .with_key(what)
        .with_source(e)
    })
}

impl Server {
    /// Binds the app's listeners: `[app.http] listen` (or `options.listen`) and, when set,
    /// the admin listener. The app must have an `[app.http]` section with routes.
    pub async fn bind(app: &App, options: ServeOptions) -> Result<Server> {
        let http = app.http_spec().cloned().ok_or_else(|| {
            Error::manifest(
                "the app has no [app.http] section: add one with `listen` and `routes` (path prefix -> module) to serve it",
            )
            .with_key("app.http")
        })?;
        if http.routes.is_empty() {
            return Err(Error::manifest(
                "[app.http] has no routes: add routes = { \"/\" = \"MODULE\" } naming the module that answers",
            )
            .with_key("app.http.routes"));
        }
        let (listen, what) = match (&options.listen, &http.listen) {
            (Some(a), _) => (a.clone(), "--listen"),
            (None, Some(a)) => (a.clone(), "app.http.listen"),
            (None, None) => {
                return Err(Error::manifest(
                    "no address to listen on: set listen under [app.http] or pass --listen IP:PORT",
                )
                .with_key("app.http.listen"));
            }
        };
        // Before binding: a bad certificate is a load error, not a listener that fails
        // every handshake.
        let tls = match &http.tls {
            Some(spec) => Some(TlsReloader(Arc::new(tls::Tls::load(spec)?))),
            None => None,
        };
        let listener = bind(&listen, what).await?;
        let admin = match (&options.admin, &app.admin_spec().listen) {
            (Some(a), _) => Some((a, "--admin")),
            (None, Some(a)) => Some((a, "app.admin.listen")),
            (None, None) => None,
        };
        let admin = match admin {
            Some((addr, what)) => {
                let l = bind(addr, what).await?;
                let at = l
                    .local_addr()
                    .map_err(|e| Error::io("the admin listener has no address", e))?;
                let access = access::Access::new(app.admin_spec(), at, what)?;
                Some((l, access))
            }
            None => None,
        };
        Ok(Server {
            app: app.clone(),
            http,
            listener,
            admin,
            tls,
        })
    }

    /// The listener's TLS, to read its files again (on SIGHUP, say), when it speaks TLS.
    pub fn tls(&self) -> Option<TlsReloader> {
        self.tls.clone()
    }

    /// The address requests are served on.
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.listener.local_addr().ok()
    }

    /// The address of the admin endpoints, if they are served.
    pub fn admin_addr(&self) -> Option<SocketAddr> {
        self.admin.as_ref().and_then(|(l, _)| l.local_addr().ok())
    }

    /// The bearer token the admin listener's changes (`POST /reload`, `POST /rollback`)
    /// need, if it is served: the configured one, or one made up at [`Server::bind`].
    pub fn admin_token(&self) -> Option<&str> {
        self.admin.as_ref().map(|(_, a)| a.token())
    }

    /// Whether the admin token was made up at [`Server::bind`] (none was configured), so
    /// that whoever runs the server must hand it to its operators.
    pub fn admin_token_generated(&self) -> bool {
        self.admin.as_ref().is_some_and(|(_, a)| a.generated())
    }

    /// Serves until `shutdown` completes, then stops accepting, lets the requests in flight
    /// finish for up to `[app.http] drain`, and returns. Returns how many connections were
    /// still open when the drain time ran out (and were aborted).
    pub async fn run(self, shutdown: impl Future<Output = ()>) -> Result<usize> {
        let Server {
            app,
            http,
            listener,
            admin,
            tls,
        } = self;
        let drain = http.drain;
        let mut builder = auto::Builder::new(TokioExecutor::new());
        // hyper refuses heads past its read buffer's limit (400 KiB by default) as it reads
        // them, which bounds what a connection buffers; a larger `max_header_size` raises
        // it. The service checks every request's header fields against the limit itself.
        builder
            .http1()
            .timer(TokioTimer::new())
            .header_read_timeout(http.header_timeout)
            .max_buf_size(HYPER_H1_BUFFER.max(http.max_header_size + 8192))
            .keep_alive(true);
        builder
            .http2()
            .timer(TokioTimer::new())
            .max_header_list_size(u32::try_from(http.max_header_size).unwrap_or(u32::MAX))
            .max_concurrent_streams(Some(HttpSpec::MAX_STREAMS));
        let timers = conn::Timers {
            header: http.header_timeout,
            idle: http.idle_timeout,
        };
        let slots = slots::Slots::new(http.max_connections, http.max_connections_per_ip);
        let router = Arc::new(service::Router::new(app, http)?);
        let metrics = router.app.metrics().clone();
        let admin_task =
            admin.map(|(l, access)| tokio::spawn(serve_admin(l, router.app.clone(), access)));
        let (stop, stopping) = tokio::sync::watch::channel(false);
        let mut connections = tokio::task::JoinSet::new();
        tokio::pin!(shutdown);
        loop {
            // A server whose every connection has a request in flight leaves new ones in
            // the kernel's backlog; otherwise one without a request makes room.
            tokio::select! {
                biased;
                () = &mut shutdown => break,
                () = slots.room() => {}
            }
            let (stream, peer) = tokio::select! {
                biased;
                () = &mut shutdown => break,
                accepted = listener.accept() => match accepted {
                    Ok(s) => s,
                    Err(e) => {
                        // Out of descriptors, say: back off a little instead of spinning.
                        tracing::warn!(target: "membrane::http", error = %e, "accept failed");
                        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                        continue;
                    }
                },
            };
            let slot = loop {
                match slots.admit(peer.ip()) {
                    Ok((slot, evicted)) => {
                        if evicted {
                            metrics.connection_closed("evicted");
                        }
                        break Admitted::Yes(Arc::new(slot));
                    }
                    Err(slots::Refusal::PerIp) => {
                        tracing::debug!(target: "membrane::http", peer = %peer.ip(), "refused: the address has max_connections_per_ip connections, all busy");
                        metrics.connection_closed("per-ip");
                        break Admitted::No;
                    }
                    // The connection that would have made room took a request meanwhile.
                    Err(slots::Refusal::Full) => tokio::select! {
                        biased;
                        () = &mut shutdown => break Admitted::Stop,
                        () = slots.room() => {}
                    },
                }
            };
            let slot = match slot {
                Admitted::Yes(slot) => slot,
                Admitted::No => continue,
                Admitted::Stop => break,
            };
            let _ = stream.set_nodelay(true);
            let io = io::TimedIo::new(stream, router.http.write_timeout);
            let r = router.clone();
            let counted = slot.clone();
            let service = service_fn(move |req| {
                let r = r.clone();
                let active = counted.start();
                // Boxed: hyper keeps the request's future in the connection's state and
                // moves it; the pointer moves instead of the whole request's state.
                Box::pin(async move {
                    let resp = r.handle(req).await;
                    Ok::<_, Infallible>(resp.map(|body| conn::Tracked::new(body, active)))
                })
            });
            // Finished connections are reaped as new ones come, so the set stays as large
            // as the connections open.
            while connections.try_join_next().is_some() {}
            let (stopping, metrics) = (stopping.clone(), metrics.clone());
            let Some(tls) = &tls else {
                let conn = builder
                    .serve_connection(TokioIo::new(io), service)
                    .into_owned();
                connections.spawn(conn::drive(
                    conn,
                    |c| c.graceful_shutdown(),
                    slot,
                    timers,
                    stopping,
                    metrics,
                ));
                continue;
            };
            // The handshake runs on the connection's task, within the connection's time to
            // open its first request, holding its slot.
            let (acceptor, builder) = (tls.0.acceptor(), builder.clone());
            connections.spawn(async move {
                let started = tokio::time::Instant::now();
                let stream = match tokio::time::timeout(timers.header, acceptor.accept(io)).await {
                    Ok(Ok(stream)) => stream,
                    Ok(Err(e)) => {
                        tracing::debug!(target: "membrane::http", error = %e, "TLS handshake failed");
                        metrics.connection_closed("tls-handshake");
                        return;
                    }
                    Err(_) => {
                        metrics.connection_closed("first-request-timeout");
                        return;
                    }
                };
                let conn = builder.serve_connection(TokioIo::new(stream), service).into_owned();
                let left = conn::Timers {
                    header: timers.header.saturating_sub(started.elapsed()),
                    idle: timers.idle,
                };
                conn::drive(
                    conn,
                    |c| c.graceful_shutdown(),
                    slot,
                    left,
                    stopping,
                    metrics,
                )
                .await;
            });
        }
        // New connections are refused from here on.
        drop(listener);
        tracing::info!(target: "membrane::http", "shutting down: draining requests in flight");
        let _ = stop.send(true);
        while connections.try_join_next().is_some() {}
        let open = connections.len();
        let drained = async { while connections.join_next().await.is_some() {} };
        let aborted = tokio::select! {
            () = drained => 0,
            () = tokio::time::sleep(drain) => {
                // Dropping a connection's future closes its socket and stops the guest still
                // answering on it.
                while connections.try_join_next().is_some() {}
                let left = connections.len();
                tracing::warn!(
                    target: "membrane::http",
                    "the drain time ({drain:?}, app.http.drain) ran out; aborting {left} of {open} connections"
                );
                connections.abort_all();
                while connections.join_next().await.is_some() {}
                left
            }
        };
        if let Some(t) = admin_task {
            t.abort();
        }
        Ok(aborted)
    }
}

/// What became of an accepted connection.
enum Admitted {
    Yes(Arc<slots::Slot>),
    /// Refused (closed at once).
    No,
    /// The server is shutting down.
    Stop,
}

/// Serves the admin endpoints until aborted.
async fn serve_admin(listener: TcpListener, app: App, access: access::Access) {
    let access = Arc::new(access);
    let builder = {
        let mut b = hyper::server::conn::http1::Builder::new();
        b.timer(TokioTimer::new())
            .header_read_timeout(std::time::Duration::from_secs(5));
        b
    };
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            continue;
        };
        let app = app.clone();
        let access = access.clone();
        let service = service_fn(move |req| {
            let app = app.clone();
            let access = access.clone();
            async move { Ok::<_, Infallible>(admin::handle(&app, &access, req).await) }
        });
        let conn = builder.serve_connection(TokioIo::new(stream), service);
        tokio::spawn(async move {
            let _ = conn.await;
        });
    }
}
