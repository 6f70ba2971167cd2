//! The HTTP this crate speaks: one HTTP/1.1 request per connection (hyper's client
//! connection over tokio, TLS by rustls with the ring provider), every wait bounded, every
//! body read against a byte limit. A registry is a stranger: it may stall, send more than it
//! announced, or redirect anywhere, and none of that may hang or exhaust the host.
//!
//! Plain HTTP is spoken only to this machine (`localhost`, `127.0.0.0/8`, `[::1]`) and to
//! hosts the user listed in `MEMBRANE_OCI_INSECURE`; anything else is HTTPS, checked against
//! the Mozilla roots (webpki-roots) and the certificates of `MEMBRANE_OCI_CA_FILE`.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::header::{CONTENT_LENGTH, HOST, LOCATION, USER_AGENT};
use http::{HeaderMap, HeaderValue, Method, Request, StatusCode, Uri};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::rustls::{self, pki_types::ServerName};

use crate::error::OciErrorKind;

/// How long a TCP connection (and the TLS handshake on it) may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a registry may take to start answering a request.
pub const RESPONSE_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a body may go without a byte arriving.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(30);
/// Redirects followed for one request.
const MAX_REDIRECTS: usize = 5;
/// The most response-head bytes hyper buffers.
const MAX_HEAD: usize = 64 << 10;

/// Where a request goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// `https` or `http`.
    pub https: bool,
    /// The host (an IPv6 address in brackets).
    pub host: String,
    /// The port.
    pub port: u16,
    /// Path and query, starting with `/`.
    pub path: String,
}

impl Target {
    /// `host[:port]` as the Host header and messages show it.
    pub fn authority(&self) -> String {
        let default = if self.https { 443 } else { 80 };
        if self.port == default {
            self.host.clone()
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }

    /// The whole URL, for messages.
    pub fn url(&self) -> String {
        let scheme = if self.https { "https" } else { "http" };
        format!("{scheme}://{}{}", self.authority(), self.path)
    }

    /// Whether `other` is on the same origin (scheme, host and port).
    pub fn same_origin(&self, other: &Target) -> bool {
        self.https == other.https && self.host == other.host && self.port == other.port
    }

    /// The same origin, another path.
    pub fn with_path(&self, path: String) -> Target {
        Target {
            path,
            ..self.clone()
        }
    }

    /// Reads an absolute `http(s)://` URL, or a path relative to this target's origin (as a
    /// `Location` header may give).
    pub fn join(&self, location: &str) -> Result<Target, OciErrorKind> {
        if location.starts_with('/') && !location.starts_with("//") {
            return Ok(self.with_path(location.to_string()));
        }
        let bad = || OciErrorKind::Protocol {
            detail: format!(
                "the registry sent a URL this client does not follow: {:?}",
                crate::error::clip(location)
            ),
        };
        let uri: Uri = location.parse().map_err(|_| bad())?;
        let https = match uri.scheme_str() {
            Some("https") => true,
            Some("http") => false,
            _ => return Err(bad()),
        };
        let authority = uri.authority().ok_or_else(bad)?;
        if authority.as_str().contains('@') {
            return Err(bad());
        }
        let host = authority.host().to_ascii_lowercase();
        let port = authority.port_u16().unwrap_or(if https { 443 } else { 80 });
        let path = uri
            .path_and_query()
            .map_or_else(|| "/".to_string(), |p| p.as_str().to_string());
        Ok(Target {
            https,
            host,
            port,
            path,
        })
    }
}

/// A response whose head has arrived; its body is read with [`read_limited`] or streamed.
pub struct Response {
    /// The status.
    pub status: StatusCode,
    /// The headers.
    pub headers: HeaderMap,
    /// The body, not read yet.
    pub body: Incoming,
    /// Where the answer came from (after redirects).
    pub from: Target,
}

/// The client: TLS settings and which hosts may be spoken to in plain HTTP.
pub struct Http {
    tls: Arc<rustls::ClientConfig>,
    insecure: Vec<String>,
}

impl Http {
    /// A client trusting `roots`, speaking plain HTTP to loopback hosts and to `insecure`.
    pub fn new(roots: rustls::RootCertStore, insecure: Vec<String>) -> Result<Http, String> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut tls = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| format!("cannot set up TLS: {e}"))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        tls.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Http {
            tls: Arc::new(tls),
            insecure,
        })
    }

    /// Whether plain HTTP may be spoken to `host` (`port` for entries with one).
    pub fn plain_allowed(&self, host: &str, port: u16) -> bool {
        membrane_core::spec::oci::is_loopback_host(host)
            || self.insecure.iter().any(|h| {
                h.eq_ignore_ascii_case(host) || h.eq_ignore_ascii_case(&format!("{host}:{port}"))
            })
    }

    /// Refuses plain HTTP to a host that is neither loopback nor listed.
    pub fn check_scheme(&self, target: &Target) -> Result<(), OciErrorKind> {
        if target.https || self.plain_allowed(&target.host, target.port) {
            Ok(())
        } else {
            Err(OciErrorKind::Insecure { url: target.url() })
        }
    }

    /// Sends one request and waits for the head of its answer, following redirects for
    /// GET and HEAD (the `Authorization` header goes only to the origin it was meant for).
    pub async fn send(
        &self,
        method: Method,
        target: &Target,
        headers: &HeaderMap,
        body: Bytes,
    ) -> Result<Response, OciErrorKind> {
        let mut target = target.clone();
        let mut headers = headers.clone();
        for _ in 0..=MAX_REDIRECTS {
            self.check_scheme(&target)?;
            let response = self
                .send_once(method.clone(), &target, &headers, body.clone())
                .await?;
            let redirect = matches!(response.status.as_u16(), 301 | 302 | 303 | 307 | 308)
                && (method == Method::GET || method == Method::HEAD);
            if !redirect {
                return Ok(response);
            }
            let Some(location) = response.headers.get(LOCATION).and_then(|v| v.to_str().ok())
            else {
                return Err(OciErrorKind::Protocol {
                    detail: format!(
                        "{} answered {} without a Location",
                        target.url(),
                        response.status
                    ),
                });
            };
            let next = target.join(location)?;
            if !next.same_origin(&target) {
                headers.remove(http::header::AUTHORIZATION);
            }
            target = next;
        }
        Err(OciErrorKind::Protocol {
            detail: format!(
                "more than {MAX_REDIRECTS} redirects, last to {}",
                target.url()
            ),
        })
    }

    async fn send_once(
        &self,
        method: Method,
        target: &Target,
        headers: &HeaderMap,
        body: Bytes,
    ) -> Result<Response, OciErrorKind> {
        let address = format!("{}:{}", target.host, target.port);
        let unreachable = |cause: String| OciErrorKind::Unreachable {
            address: target.authority(),
            cause,
        };
        let connect_host = target.host.trim_start_matches('[').trim_end_matches(']');
        let tcp = tokio::time::timeout(
            CONNECT_TIMEOUT,
            TcpStream::connect((connect_host, target.port)),
        )
        .await
        .map_err(|_| unreachable(format!("no connection within {CONNECT_TIMEOUT:?}")))?
        .map_err(|e| unreachable(e.to_string()))?;
        let _ = tcp.set_nodelay(true);
        let mut request = Request::builder()
            .method(method)
            .uri(target.path.as_str())
            .body(Full::new(body))
            .map_err(|e| OciErrorKind::Protocol {
                detail: format!("cannot make a request for {}: {e}", target.url()),
            })?;
        *request.headers_mut() = headers.clone();
        let h = request.headers_mut();
        h.insert(
            HOST,
            HeaderValue::from_str(&target.authority()).map_err(|_| OciErrorKind::Protocol {
                detail: format!("bad host {address}"),
            })?,
        );
        h.insert(USER_AGENT, HeaderValue::from_static(crate::USER_AGENT));
        let answer = if target.https {
            let name = ServerName::try_from(connect_host.to_string())
                .map_err(|e| unreachable(format!("bad server name: {e}")))?;
            let tls = tokio::time::timeout(
                CONNECT_TIMEOUT,
                TlsConnector::from(self.tls.clone()).connect(name, tcp),
            )
            .await
            .map_err(|_| unreachable(format!("no TLS handshake within {CONNECT_TIMEOUT:?}")))?
            .map_err(|e| unreachable(format!("TLS: {e}")))?;
            exchange(TokioIo::new(tls), request, &unreachable).await?
        } else {
            exchange(TokioIo::new(tcp), request, &unreachable).await?
        };
        let (parts, body) = answer.into_parts();
        Ok(Response {
            status: parts.status,
            headers: parts.headers,
            body,
            from: target.clone(),
        })
    }
}

/// Hands `request` to a fresh HTTP/1.1 connection over `io` and waits for the head of its
/// answer. The connection lives on a task of its own until the body is done or dropped.
async fn exchange<T>(
    io: T,
    request: Request<Full<Bytes>>,
    unreachable: &(dyn Fn(String) -> OciErrorKind + Sync),
) -> Result<http::Response<Incoming>, OciErrorKind>
where
    T: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let (mut send, conn) = hyper::client::conn::http1::Builder::new()
        .max_buf_size(MAX_HEAD)
        .handshake::<T, Full<Bytes>>(io)
        .await
        .map_err(|e| unreachable(e.to_string()))?;
    tokio::spawn(async move {
        // Ends with the body; an error here shows as the body's or the answer's error.
        let _ = conn.await;
    });
    tokio::time::timeout(RESPONSE_TIMEOUT, send.send_request(request))
        .await
        .map_err(|_| unreachable(format!("no answer within {RESPONSE_TIMEOUT:?}")))?
        .map_err(|e| unreachable(crate::error::cause_chain(&e)))
}

/// A body read whole, refused past `limit` bytes (whatever `Content-Length` announced).
/// `Err(None)`: the limit was passed; `Err(Some(kind))`: the transfer failed.
pub async fn read_limited(
    response: Response,
    limit: u64,
) -> Result<(Bytes, HeaderMap), Option<OciErrorKind>> {
    if content_length(&response.headers).is_some_and(|n| n > limit) {
        return Err(None);
    }
    let Response {
        headers, mut body, ..
    } = response;
    let mut out = Vec::new();
    while let Some(data) = next_data(&mut body).await.map_err(Some)? {
        if out.len() as u64 + data.len() as u64 > limit {
            return Err(None);
        }
        out.extend_from_slice(&data);
    }
    Ok((Bytes::from(out), headers))
}

/// The next chunk of data of `body` (`None` at its end), waiting at most [`IDLE_TIMEOUT`].
pub async fn next_data(body: &mut Incoming) -> Result<Option<Bytes>, OciErrorKind> {
    loop {
        let frame = tokio::time::timeout(IDLE_TIMEOUT, body.frame())
            .await
            .map_err(|_| OciErrorKind::Protocol {
                detail: format!("the transfer stalled for {IDLE_TIMEOUT:?}"),
            })?;
        match frame {
            None => return Ok(None),
            Some(Err(e)) => {
                return Err(OciErrorKind::Protocol {
                    detail: format!("the transfer broke off: {}", crate::error::cause_chain(&e)),
                });
            }
            Some(Ok(frame)) => {
                if let Ok(data) = frame.into_data() {
                    return Ok(Some(data));
                }
            }
        }
    }
}

/// The `Content-Length` of `headers`, when it is a number.
pub fn content_length(headers: &HeaderMap) -> Option<u64> {
    headers
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
}

/// A short, printable excerpt of an error body (a registry's JSON errors), for messages.
pub async fn error_excerpt(response: Response) -> String {
    match read_limited(response, 16 << 10).await {
        Ok((body, _)) => {
            let text = String::from_utf8_lossy(&body);
            crate::error::shown(text.trim())
        }
        Err(_) => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations_join_against_the_origin() {
        let t = Target {
            https: true,
            host: "r.example".into(),
            port: 443,
            path: "/v2/".into(),
        };
        let rel = t.join("/v2/x/blobs/uploads/1?s=2").unwrap();
        assert!(rel.same_origin(&t));
        assert_eq!(rel.path, "/v2/x/blobs/uploads/1?s=2");
        let abs = t.join("http://CDN.example:8080/b?sig=1").unwrap();
        assert!(!abs.https);
        assert_eq!(abs.authority(), "cdn.example:8080");
        assert_eq!(abs.path, "/b?sig=1");
        assert!(t.join("ftp://x/y").is_err());
        assert!(t.join("https://user:pw@x/y").is_err());
        assert!(t.join("//x/y").is_err());
    }
}
