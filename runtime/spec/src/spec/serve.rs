//! How an app is served over HTTP (`membrane serve`): the listener, the routes from path
//! prefixes to modules, the protections of the server itself, and the admin listener.

use std::collections::BTreeMap;
use std::time::Duration;

/// The `[app.http]` section: where the app listens and which module answers which path.
///
/// | key | default | meaning |
/// |---|---|---|
/// | `listen` | none (required to serve) | `IP:PORT` to listen on; `membrane serve --listen` overrides it |
/// | `routes` | none | path prefix -> module; the longest matching prefix wins |
/// | `header_timeout` | 5 s | a client must send a request's head within this (slowloris) |
/// | `max_header_size` | 64 KiB | a request whose header fields are larger in all (each field's name and value plus 32 bytes, as HTTP/2 counts them) is answered 431 before any guest runs |
/// | `write_timeout` | 10 s | a response write that makes no progress for this long aborts the connection |
/// | `idle_timeout` | 60 s | a connection with no request in flight is closed after this (HTTP/1.1 keep-alive also waits at most `header_timeout` for the next head) |
/// | `max_connections` | 1024 | connections served at once; when all are taken, one that has no request in flight is closed to make room, else more wait in the kernel's backlog |
/// | `max_connections_per_ip` | none | connections from one client address at once; past it, one of that address's connections without a request in flight is closed to make room, else the new one is refused |
/// | `drain` | 30 s | on SIGTERM/SIGINT, how long requests in flight may take to finish |
/// | `tls_cert` | none (plain HTTP) | a PEM file of the server's certificate chain: the listener speaks TLS (HTTP/1.1 and HTTP/2 by ALPN) |
/// | `tls_key` | none | the PEM file of the certificate's private key (with `tls_cert`) |
/// | `tls_client_ca` | none | a PEM file of CA certificates: clients must present a certificate one of them signed (mutual TLS) |
///
/// Every connection must complete its first request head (HTTP/1.1) or open its first
/// stream (HTTP/2) within `header_timeout` of being accepted, whatever it sends before; an
/// HTTP/2 connection carries at most [`HttpSpec::MAX_STREAMS`] streams at once. With TLS the
/// handshake counts in that time too, and holds a connection slot like any connection.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct HttpSpec {
    /// The address to listen on, `IP:PORT`.
    pub listen: Option<String>,
    /// Path prefix (starting with `/`) -> module name.
    pub routes: BTreeMap<String, String>,
    /// How long a client may take to send a request's head.
    pub header_timeout: Duration,
    /// The largest request header section accepted, in bytes: the sum over its fields of
    /// name, value and 32 bytes (HTTP/2's measure, RFC 9113 6.5.2), for HTTP/1.1 and
    /// HTTP/2 alike. A larger one is answered 431.
    pub max_header_size: usize,
    /// How long one write of a response may wait for a slow client.
    pub write_timeout: Duration,
    /// How long a connection with no request in flight stays open.
    pub idle_timeout: Duration,
    /// Connections served at once.
    pub max_connections: usize,
    /// Connections from one client IP address at once (`None`: no cap of its own).
    pub max_connections_per_ip: Option<usize>,
    /// How long in-flight requests may take to finish at shutdown.
    pub drain: Duration,
    /// TLS on the listener, when set.
    pub tls: Option<TlsSpec>,
}

/// TLS on the `[app.http]` listener: `tls_cert`, `tls_key` and `tls_client_ca`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct TlsSpec {
    /// The PEM file of the certificate chain, the server's own certificate first.
    pub cert: std::path::PathBuf,
    /// The PEM file of the private key (PKCS#8, PKCS#1 or SEC1).
    pub key: std::path::PathBuf,
    /// The PEM file of the CAs whose client certificates are accepted; `None`: clients
    /// present none.
    pub client_ca: Option<std::path::PathBuf>,
}

impl TlsSpec {
    /// TLS with the certificate chain in `cert` and its key in `key` (PEM files).
    pub fn new(cert: impl Into<std::path::PathBuf>, key: impl Into<std::path::PathBuf>) -> Self {
        TlsSpec {
            cert: cert.into(),
            key: key.into(),
            client_ca: None,
        }
    }

    /// Requires client certificates signed by a CA of the PEM file `ca` (mutual TLS).
    pub fn client_ca(mut self, ca: impl Into<std::path::PathBuf>) -> Self {
        self.client_ca = Some(ca.into());
        self
    }
}

impl HttpSpec {
    /// Default `header_timeout`: 5 seconds.
    pub const DEFAULT_HEADER_TIMEOUT: Duration = Duration::from_secs(5);
    /// Default `max_header_size`: 64 KiB.
    pub const DEFAULT_MAX_HEADER_SIZE: usize = 64 << 10;
    /// The largest `max_header_size` accepted: 1 MiB.
    pub const MAX_HEADER_SIZE: usize = 1 << 20;
    /// Default `write_timeout`: 10 seconds.
    pub const DEFAULT_WRITE_TIMEOUT: Duration = Duration::from_secs(10);
    /// Default `idle_timeout`: 60 seconds.
    pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(60);
    /// Streams one HTTP/2 connection may have open at once.
    pub const MAX_STREAMS: u32 = 256;
    /// Default `max_connections`: 1024.
    pub const DEFAULT_MAX_CONNECTIONS: usize = 1024;
    /// Default `drain`: 30 seconds.
    pub const DEFAULT_DRAIN: Duration = Duration::from_secs(30);

    /// Routes requests whose path starts with `prefix` to `module`.
    pub fn route(mut self, prefix: impl Into<String>, module: impl Into<String>) -> Self {
        self.routes.insert(prefix.into(), module.into());
        self
    }

    /// Sets the address to listen on.
    pub fn listen(mut self, addr: impl Into<String>) -> Self {
        self.listen = Some(addr.into());
        self
    }

    /// Sets `max_header_size`, in bytes.
    pub fn max_header_size(mut self, bytes: usize) -> Self {
        self.max_header_size = bytes;
        self
    }

    /// Serves over TLS.
    pub fn tls(mut self, tls: TlsSpec) -> Self {
        self.tls = Some(tls);
        self
    }

    /// The module that answers `path`: the route with the longest prefix of it.
    pub fn route_for(&self, path: &str) -> Option<(&str, &str)> {
        self.routes
            .iter()
            .filter(|(prefix, _)| path.starts_with(prefix.as_str()))
            .max_by_key(|(prefix, _)| prefix.len())
            .map(|(p, m)| (p.as_str(), m.as_str()))
    }
}

impl Default for HttpSpec {
    fn default() -> Self {
        HttpSpec {
            listen: None,
            routes: BTreeMap::new(),
            header_timeout: Self::DEFAULT_HEADER_TIMEOUT,
            max_header_size: Self::DEFAULT_MAX_HEADER_SIZE,
            write_timeout: Self::DEFAULT_WRITE_TIMEOUT,
            idle_timeout: Self::DEFAULT_IDLE_TIMEOUT,
            max_connections: Self::DEFAULT_MAX_CONNECTIONS,
            max_connections_per_ip: None,
            drain: Self::DEFAULT_DRAIN,
            tls: None,
        }
    }
}

/// The `[app.admin]` section: a second listener, for operators only, with a page (`GET /`),
/// `GET /metrics` (Prometheus text format), `GET /status` (JSON) and the changes
/// `POST /reload` and `POST /rollback/<module>`.
///
/// | key | default | meaning |
/// |---|---|---|
/// | `listen` | none (no admin listener) | `IP:PORT`; `membrane serve --admin` overrides it |
/// | `token_file` | none | a file holding the bearer token that `/reload` and `/rollback` require (mode 600) |
/// | `token_env` | none | the environment variable holding that token, instead of a file |
/// | `hosts` | none | more names the listener answers to (its address, any IP literal of a loopback or unspecified listen address, and `localhost` always work) |
///
/// Without `token_file` or `token_env`, a token is made up when the listener starts (the
/// `membrane` command writes it to a private file that `membrane reload` reads); a listener
/// on an address that is not loopback must have one configured. A request whose `Host` names
/// anything else is refused (421) before any handler runs: a web page that rebinds its own
/// name to the listener's address cannot reach it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct AdminSpec {
    /// The address to listen on, `IP:PORT`.
    pub listen: Option<String>,
    /// Where the admin token is read from.
    pub token: Option<TokenSource>,
    /// Host names the listener answers to besides its own address and `localhost`.
    pub hosts: Vec<String>,
}

/// Where the admin listener's bearer token comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum TokenSource {
    /// A file holding the token (nothing else may read it: mode 600 or stricter).
    File(std::path::PathBuf),
    /// An environment variable holding the token.
    Env(String),
}

impl AdminSpec {
    /// Reads the admin token from `source` instead of making one up at start.
    pub fn token(mut self, source: TokenSource) -> Self {
        self.token = Some(source);
        self
    }

    /// Also answers requests whose `Host` is `name`.
    pub fn host(mut self, name: impl Into<String>) -> Self {
        self.hosts.push(name.into());
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn longest_prefix_wins() {
        let h = HttpSpec::default()
            .route("/", "web")
            .route("/api/", "api")
            .route("/api/v2/", "v2");
        assert_eq!(h.route_for("/"), Some(("/", "web")));
        assert_eq!(h.route_for("/index.html"), Some(("/", "web")));
        assert_eq!(h.route_for("/api/x"), Some(("/api/", "api")));
        assert_eq!(h.route_for("/api"), Some(("/", "web")));
        assert_eq!(h.route_for("/api/v2/y"), Some(("/api/v2/", "v2")));
        let h = HttpSpec::default().route("/api/", "api");
        assert_eq!(h.route_for("/other"), None);
    }
}
