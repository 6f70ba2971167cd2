//! Who may use the admin listener.
//!
//! Two checks, before any handler runs:
//! - `Host` must name the listener: its own address, an IP literal where that cannot be a
//!   rebinding (the listener is on a loopback or unspecified address and the port matches),
//!   `localhost`, or a name of `[app.admin] hosts`. A page that rebinds its own name to
//!   127.0.0.1 makes the browser send that name, so it gets 421 whatever it asks. An `Origin`,
//!   when sent, must be this same host (403 otherwise).
//! - Changes (`POST /reload`, `POST /rollback/...`) need the admin token as
//!   `Authorization: Bearer <token>` (401 otherwise). The page gets the token inside its own
//!   HTML, which only a page of this origin can read.

use std::net::{IpAddr, SocketAddr};

use http::{HeaderValue, StatusCode, header};

use crate::error::{Error, Result};
use crate::service::{Response, text};
use crate::spec::{AdminSpec, TokenSource};

/// The shortest token accepted from a file or the environment.
const MIN_TOKEN: usize = 16;
/// The longest (it travels in a header).
const MAX_TOKEN: usize = 4096;

/// The admin listener's checks.
#[derive(Clone)]
pub(crate) struct Access {
    listen: SocketAddr,
    hosts: Vec<String>,
    token: String,
    /// Whether the token was made up at start (nobody configured one).
    generated: bool,
}

impl std::fmt::Debug for Access {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Access")
            .field("listen", &self.listen)
            .field("hosts", &self.hosts)
            .field("generated", &self.generated)
            .finish_non_exhaustive()
    }
}

impl Access {
    /// The checks of a listener bound to `listen`; `what` names the key or flag that gave the
    /// address. A listener that is not on loopback must have a configured token.
    pub(crate) fn new(spec: &AdminSpec, listen: SocketAddr, what: &str) -> Result<Access> {
        let (token, generated) = match &spec.token {
            Some(source) => (read_token(source)?, false),
            None if listen.ip().is_loopback() => (generate()?, true),
            None => {
                return Err(Error::manifest(format!(
                    "{what}: the admin listener on {listen} is reachable from other machines, so it needs a token: \
                     set token_file (a file of mode 600) or token_env under [app.admin], or listen on 127.0.0.1"
                ))
                .with_key("app.admin.token_file"));
            }
        };
        Ok(Access {
            listen,
            hosts: spec.hosts.iter().map(|h| h.to_ascii_lowercase()).collect(),
            token,
            generated,
        })
    }

    /// The token changes need.
    pub(crate) fn token(&self) -> &str {
        &self.token
    }

    /// Whether the token was made up at start.
    pub(crate) fn generated(&self) -> bool {
        self.generated
    }

    /// The refusal of a request whose `Host` or `Origin` does not name this listener.
    pub(crate) fn refuse_host<B>(&self, req: &http::Request<B>) -> Option<Response> {
        let host = req
            .headers()
            .get(header::HOST)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
            .or_else(|| req.uri().authority().map(|a| a.as_str().to_owned()));
        let Some(host) = host.filter(|h| self.names_me(h)) else {
            return Some(text(
                StatusCode::MISDIRECTED_REQUEST,
                "this admin listener answers only to its own address, localhost and [app.admin] hosts\n",
            ));
        };
        if let Some(origin) = req.headers().get(header::ORIGIN) {
            let same = origin
                .to_str()
                .ok()
                .and_then(|o| o.strip_prefix("http://"))
                .is_some_and(|o| o.eq_ignore_ascii_case(&host));
            if !same {
                return Some(text(
                    StatusCode::FORBIDDEN,
                    "requests from other origins are refused\n",
                ));
            }
        }
        None
    }

    /// The refusal of a change without the token.
    pub(crate) fn refuse_change<B>(&self, req: &http::Request<B>) -> Option<Response> {
        let presented = req
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "));
        if presented.is_some_and(|t| same_secret(t.trim().as_bytes(), self.token.as_bytes())) {
            return None;
        }
        let mut resp = text(
            StatusCode::UNAUTHORIZED,
            "changes need the admin token: send Authorization: Bearer <token> \
             (`membrane reload` does; see [app.admin] token_file)\n",
        );
        resp.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Bearer realm=\"membrane admin\""),
        );
        Some(resp)
    }

    /// Whether `host` (a Host header: name or IP, and maybe a port) names this listener.
    fn names_me(&self, host: &str) -> bool {
        let Ok(authority) = host.parse::<http::uri::Authority>() else {
            return false;
        };
        if authority.port_u16().unwrap_or(80) != self.listen.port() {
            return false;
        }
        let name = authority.host().to_ascii_lowercase();
        let literal = name
            .strip_prefix('[')
            .and_then(|n| n.strip_suffix(']'))
            .unwrap_or(&name)
            .parse::<IpAddr>();
        match literal {
            // No page can rebind an IP literal: a page sending it was served from it. Still,
            // only the listener's own address, or any when it listens on all of them or on
            // loopback (where 127.0.0.1 and ::1 are the same machine).
            Ok(ip) => {
                let own = self.listen.ip();
                ip.to_canonical() == own.to_canonical()
                    || own.is_unspecified()
                    || (own.is_loopback() && ip.is_loopback())
            }
            Err(_) => name == "localhost" || self.hosts.contains(&name),
        }
    }
}

/// Compares two secrets in time that does not depend on where they differ.
fn same_secret(a: &[u8], b: &[u8]) -> bool {
    use subtle::ConstantTimeEq as _;
    a.ct_eq(b).into()
}

/// 32 random bytes from the operating system, in hex.
fn generate() -> Result<String> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| {
        Error::new(
            crate::error::ErrorKind::Io,
            format!("cannot make an admin token: the system's random source failed ({e})"),
        )
    })?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

fn read_token(source: &TokenSource) -> Result<String> {
    let (token, key, from) = match source {
        TokenSource::Env(name) => {
            let value = std::env::var(name).map_err(|_| {
                Error::manifest(format!(
                    "app.admin.token_env: the environment variable {name} is not set (or not UTF-8); \
                     export it before starting, or use token_file"
                ))
                .with_key("app.admin.token_env")
            })?;
            (value, "app.admin.token_env", format!("${name}"))
        }
        TokenSource::File(path) => (
            read_private(path)?,
            "app.admin.token_file",
            path.display().to_string(),
        ),
        _ => {
            return Err(Error::manifest(
                "app.admin: this kind of token source is not supported here",
            ));
        }
    };
    let token = token.trim().to_string();
    if token.len() < MIN_TOKEN
        || token.len() > MAX_TOKEN
        || !token.bytes().all(|b| b.is_ascii_graphic())
    {
        return Err(Error::manifest(format!(
            "{key}: the token in {from} must be {MIN_TOKEN} to {MAX_TOKEN} printable characters without spaces; \
             make one with `openssl rand -hex 32`"
        ))
        .with_key(key));
    }
    Ok(token)
}

/// Reads a token file that only its owner can read.
fn read_private(path: &std::path::Path) -> Result<String> {
    use std::os::unix::fs::PermissionsExt;
    let key = "app.admin.token_file";
    let bad = |what: String| Error::manifest(format!("{key}: {what}")).with_key(key);
    let meta =
        std::fs::metadata(path).map_err(|e| bad(format!("cannot read {}: {e}", path.display())))?;
    if !meta.is_file() {
        return Err(bad(format!("{} is not a regular file", path.display())));
    }
    let mode = meta.permissions().mode();
    if mode & 0o077 != 0 {
        return Err(bad(format!(
            "{} can be read by other users (mode {:o}); run `chmod 600` on it",
            path.display(),
            mode & 0o777
        )));
    }
    if meta.len() > MAX_TOKEN as u64 + 64 {
        return Err(bad(format!("{} is too large for a token", path.display())));
    }
    std::fs::read_to_string(path).map_err(|e| bad(format!("cannot read {}: {e}", path.display())))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorKind;

    fn access(listen: &str, hosts: &[&str]) -> Access {
        let mut spec = AdminSpec::default();
        for h in hosts {
            spec = spec.host(*h);
        }
        Access::new(&spec, listen.parse().unwrap(), "test").unwrap()
    }

    #[test]
    fn only_names_of_the_listener_pass() {
        let a = access("127.0.0.1:9090", &["ops.internal"]);
        for ok in [
            "127.0.0.1:9090",
            "localhost:9090",
            "LOCALHOST:9090",
            "[::1]:9090",
            "127.0.0.2:9090",
            "ops.internal:9090",
        ] {
            assert!(a.names_me(ok), "{ok}");
        }
        for bad in [
            "evil.example:9090",
            "127.0.0.1",
            "127.0.0.1:9091",
            "localhost.evil.example:9090",
            "10.0.0.1:9090",
            "",
            "127.0.0.1:9090@evil",
            "ops.internal.:9090",
        ] {
            assert!(!a.names_me(bad), "{bad}");
        }
        let a = access("127.0.0.1:80", &[]);
        assert!(a.names_me("localhost") && a.names_me("127.0.0.1"));
    }

    #[test]
    fn a_listener_beyond_loopback_needs_a_configured_token() {
        let e =
            Access::new(&AdminSpec::default(), "0.0.0.0:9090".parse().unwrap(), "x").unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Manifest);
        assert_eq!(e.key(), Some("app.admin.token_file"));
        let a = access("127.0.0.1:1", &[]);
        assert!(a.generated() && a.token().len() == 64);
        assert_ne!(a.token(), access("127.0.0.1:1", &[]).token());
    }

    #[test]
    fn tokens_are_compared_whole() {
        assert!(same_secret(b"abc", b"abc"));
        assert!(!same_secret(b"abc", b"abd"));
        assert!(!same_secret(b"abc", b"abcd"));
        assert!(!same_secret(b"", b"a"));
    }

    #[test]
    fn token_files_must_be_private_and_sane() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t");
        std::fs::write(&path, "0123456789abcdef0123\n").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let e = read_token(&TokenSource::File(path.clone())).unwrap_err();
        assert!(e.to_string().contains("chmod 600"), "{e}");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert_eq!(
            read_token(&TokenSource::File(path.clone())).unwrap(),
            "0123456789abcdef0123"
        );
        std::fs::write(&path, "short").unwrap();
        let e = read_token(&TokenSource::File(path)).unwrap_err();
        assert_eq!(e.key(), Some("app.admin.token_file"));
    }
}
