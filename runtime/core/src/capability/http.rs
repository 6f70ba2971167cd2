//! `grants.http`: the origins (`scheme://host[:port]`) a module may send outbound
//! `wasi:http` requests to. Scheme, host and port must all match; a name is resolved by the
//! host when it connects, never by the guest. Anything else fails inside the guest with
//! `HTTP-request-denied` and is audited (`membrane::audit`, `membrane_denials_total`).
//! Plain sockets stay governed by `grants.network`.

use std::any::Any;
use std::fmt;
use std::sync::Arc;

use http::uri::{Authority, Scheme};
use wasmtime_wasi_http::{RequestOptions, WasiBody, WasiHttpHooks};

use crate::error::{Error, Problems};
use crate::metrics::{Capability, ModuleMetrics};
use crate::unit::{ModuleCx, Unit, UnitDef};

pub const DEF: UnitDef = UnitDef { validate, prepare };

/// One granted origin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    https: bool,
    /// Lower case; an IPv6 address without brackets.
    host: String,
    port: u16,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let scheme = if self.https { "https" } else { "http" };
        if self.host.contains(':') {
            write!(f, "{scheme}://[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{scheme}://{}:{}", self.host, self.port)
        }
    }
}

/// Parses `scheme://host[:port]` (a trailing `/` is allowed, nothing else after the host).
pub fn parse_origin(text: &str) -> Result<Origin, String> {
    let uri: http::Uri = text
        .parse()
        .map_err(|e| format!("{text:?} is not a URL ({e}); write scheme://host[:port]"))?;
    let https = match uri.scheme_str() {
        Some("https") => true,
        Some("http") => false,
        Some(other) => {
            return Err(format!("{text:?}: scheme `{other}` is not http or https"));
        }
        None => {
            return Err(format!(
                "{text:?} has no scheme; write http://{text} or https://{text}"
            ));
        }
    };
    let authority = uri
        .authority()
        .ok_or_else(|| format!("{text:?} has no host"))?;
    if authority.as_str().contains('@') {
        return Err(format!(
            "{text:?} carries user information; grant the origin only"
        ));
    }
    if uri.path_and_query().is_some_and(|p| p.as_str() != "/") {
        return Err(format!(
            "{text:?} has a path; grants name origins (scheme://host[:port]), every path of a granted origin is allowed"
        ));
    }
    origin_of(https, authority).ok_or_else(|| format!("{text:?} has no host"))
}

fn origin_of(https: bool, authority: &Authority) -> Option<Origin> {
    let host = authority
        .host()
        .trim_start_matches('[')
        .trim_end_matches(']');
    if host.is_empty() {
        return None;
    }
    let host = match host.parse::<std::net::IpAddr>() {
        Ok(ip) => ip.to_canonical().to_string(),
        Err(_) => host.trim_end_matches('.').to_ascii_lowercase(),
    };
    Some(Origin {
        https,
        host,
        port: authority.port_u16().unwrap_or(if https { 443 } else { 80 }),
    })
}

fn validate(cx: &ModuleCx<'_>, problems: &mut Problems) {
    for (i, origin) in cx.spec.grants.http.iter().enumerate() {
        if let Err(msg) = parse_origin(origin) {
            problems.push(
                Error::manifest(format!("module `{}`: grants.http: {msg}", cx.name))
                    .with_key(cx.key(&format!("grants.http[{i}]"))),
            );
        }
    }
}

fn prepare(cx: &ModuleCx<'_>, _: &mut Problems) -> Option<Box<dyn Unit>> {
    let origins: Vec<Origin> = cx
        .spec
        .grants
        .http
        .iter()
        .filter_map(|o| parse_origin(o).ok())
        .collect();
    (!origins.is_empty()).then(|| {
        Box::new(HttpGrant {
            origins: Arc::new(origins),
        }) as Box<dyn Unit>
    })
}

/// The granted origins of one module.
#[derive(Debug)]
pub struct HttpGrant {
    origins: Arc<Vec<Origin>>,
}

impl Unit for HttpGrant {
    fn as_any(&self) -> &dyn Any {
        self
    }
}

/// The outbound policy of one instance: the `wasi:http` hooks of its Store.
pub struct OutboundHttp {
    origins: Option<Arc<Vec<Origin>>>,
    metrics: Arc<ModuleMetrics>,
}

impl OutboundHttp {
    /// The module's metrics, shared.
    pub fn metrics_arc(&self) -> &Arc<ModuleMetrics> {
        &self.metrics
    }

    pub fn new(grant: Option<&HttpGrant>, metrics: Arc<ModuleMetrics>) -> OutboundHttp {
        OutboundHttp {
            origins: grant.map(|g| g.origins.clone()),
            metrics,
        }
    }

    /// The module's metrics, where denials are counted.
    pub fn metrics(&self) -> &ModuleMetrics {
        &self.metrics
    }

    /// Whether a request to `uri` goes to a granted origin.
    fn allowed(&self, uri: &http::Uri) -> bool {
        let Some(origins) = &self.origins else {
            return false;
        };
        let https = match uri.scheme() {
            Some(s) if *s == Scheme::HTTPS => true,
            Some(s) if *s == Scheme::HTTP => false,
            _ => return false,
        };
        uri.authority()
            .and_then(|a| origin_of(https, a))
            .is_some_and(|o| origins.contains(&o))
    }
}

impl WasiHttpHooks for OutboundHttp {
    fn send_request(
        &mut self,
        request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
        fut: Box<dyn Future<Output = Result<(), wasmtime_wasi_http::Error>> + Send>,
    ) -> Box<
        dyn Future<
                Output = Result<
                    (
                        http::Response<WasiBody>,
                        Box<dyn Future<Output = Result<(), wasmtime_wasi_http::Error>> + Send>,
                    ),
                    wasmtime_wasi_http::Error,
                >,
            > + Send,
    > {
        _ = fut;
        if !self.allowed(request.uri()) {
            let uri = request.uri();
            let what = format!(
                "outbound HTTP request to {}://{} (not in grants.http)",
                uri.scheme_str().unwrap_or("?"),
                uri.authority().map_or("?", Authority::as_str)
            );
            self.metrics.denied(Capability::Http, &what);
            return Box::new(async { Err(wasmtime_wasi_http::Error::HttpRequestDenied) });
        }
        Box::new(async move {
            use http_body_util::BodyExt;
            let (res, io) = wasmtime_wasi_http::default_send_request(request, options).await?;
            Ok((
                res.map(BodyExt::boxed_unsync),
                Box::new(io) as Box<dyn Future<Output = _> + Send>,
            ))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins() {
        let o = parse_origin("https://API.example.com").unwrap();
        assert_eq!(o.to_string(), "https://api.example.com:443");
        assert_eq!(parse_origin("http://127.0.0.1:9000/").unwrap().port, 9000);
        assert_eq!(
            parse_origin("http://[::ffff:127.0.0.1]:80").unwrap().host,
            "127.0.0.1"
        );
        assert!(
            parse_origin("api.example.com")
                .unwrap_err()
                .contains("no scheme")
        );
        assert!(parse_origin("ftp://x").unwrap_err().contains("not http"));
        assert!(
            parse_origin("http://x/path")
                .unwrap_err()
                .contains("has a path")
        );
        assert!(parse_origin("http://u:p@x").unwrap_err().contains("user"));
    }

    #[test]
    fn scheme_host_and_port_must_match() {
        let grant = HttpGrant {
            origins: Arc::new(vec![
                parse_origin("http://127.0.0.1:9000").unwrap(),
                parse_origin("https://api.example.com").unwrap(),
            ]),
        };
        let metrics = crate::metrics::Metrics::new(true).module("m");
        let hooks = OutboundHttp::new(Some(&grant), metrics);
        let ok = |u: &str| hooks.allowed(&u.parse().unwrap());
        assert!(ok("http://127.0.0.1:9000/x?y"));
        assert!(ok("https://api.example.com/v1"));
        assert!(ok("https://API.EXAMPLE.COM:443/"));
        assert!(!ok("http://127.0.0.1:9001/"));
        assert!(!ok("https://127.0.0.1:9000/"));
        assert!(!ok("http://api.example.com/"));
        assert!(!ok("https://api.example.com.evil.net/"));
        assert!(!ok("/relative"));
    }
}
