//! Network: outbound TCP connections to an allowlist of `host:port` destinations.
//!
//! - Without a grant, TCP, UDP and name lookup are all off: every socket call fails with a
//!   WASI error (access denied / not supported).
//! - With grants, TCP is on and every connect is checked against the list. The guest may not
//!   listen or accept; the only bind allowed is the wildcard bind the OS does for a connect.
//! - Addresses are compared after turning IPv4-mapped IPv6 addresses (`::ffff:a.b.c.d`) into
//!   their IPv4 form, so a denied IPv4 host cannot be reached through its mapped form.
//! - Name lookup is on only when at least one destination is a name. A granted name is
//!   resolved by the host when the guest connects, and the connection is allowed when the
//!   address is one of the name's addresses. The guest can then resolve other names too
//!   (a DNS query is visible to the resolver) but cannot connect to them.
//! - UDP is not granted in this version.

use std::any::Any;
use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::sync::Arc;

use wasmtime_wasi::WasiCtxBuilder;
use wasmtime_wasi::sockets::SocketAddrUse;

use crate::error::{Error, Problems, Result};
use crate::metrics::Capability;
use crate::unit::{InstanceCx, ModuleCx, Unit, UnitDef};

/// A parsed network destination's host.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum NetHost {
    Ip(IpAddr),
    Name(String),
}

pub const DEF: UnitDef = UnitDef { validate, prepare };

fn validate(cx: &ModuleCx<'_>, problems: &mut Problems) {
    for (i, dest) in cx.spec.grants.network.iter().enumerate() {
        if let Err(msg) = parse_destination(dest) {
            problems.push(
                Error::manifest(format!("module `{}`: grants.network: {msg}", cx.name))
                    .with_key(cx.key(&format!("grants.network[{i}]"))),
            );
        }
    }
}

fn prepare(cx: &ModuleCx<'_>, _: &mut Problems) -> Option<Box<dyn Unit>> {
    let mut rules = Vec::new();
    // Validated already; a destination that does not parse grants nothing.
    for rule in cx
        .spec
        .grants
        .network
        .iter()
        .filter_map(|d| parse_destination(d).ok())
    {
        if !rules.contains(&rule) {
            rules.push(rule);
        }
    }
    (!rules.is_empty()).then(|| {
        Box::new(Network {
            rules: Arc::new(rules),
        }) as Box<dyn Unit>
    })
}

/// Parses one `host:port` destination: an IPv4 address, a bracketed IPv6 address or a name.
pub fn parse_destination(text: &str) -> std::result::Result<(NetHost, u16), String> {
    let hint = "use host:port, like \"127.0.0.1:6379\", \"[::1]:80\" or \"db.internal:5432\"";
    if let Ok(addr) = text.parse::<SocketAddr>() {
        if addr.port() == 0 {
            return Err(format!("{text:?}: port 0 is not a destination; {hint}"));
        }
        return Ok((NetHost::Ip(addr.ip().to_canonical()), addr.port()));
    }
    let (host, port) = text
        .rsplit_once(':')
        .ok_or_else(|| format!("{text:?} has no port; {hint}"))?;
    let port: u16 = port
        .parse()
        .ok()
        .filter(|p| *p != 0)
        .ok_or_else(|| format!("{text:?}: {port:?} is not a port (1-65535); {hint}"))?;
    let valid_name = !host.is_empty()
        && host.len() <= 253
        && host.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        });
    if !valid_name {
        return Err(format!(
            "{text:?}: {host:?} is neither an IP address nor a host name; {hint}"
        ));
    }
    Ok((NetHost::Name(host.to_ascii_lowercase()), port))
}

#[derive(Debug)]
struct Network {
    rules: Arc<Vec<(NetHost, u16)>>,
}

/// Whether `addr` is a granted destination.
fn allowed(rules: &[(NetHost, u16)], addr: SocketAddr) -> bool {
    let ip = addr.ip().to_canonical();
    rules.iter().any(|(host, port)| {
        *port == addr.port()
            && match host {
                NetHost::Ip(granted) => *granted == ip,
                NetHost::Name(name) => resolve(name, *port).contains(&ip),
            }
    })
}

fn resolve(name: &str, port: u16) -> Vec<IpAddr> {
    (name, port)
        .to_socket_addrs()
        .map(|addrs| addrs.map(|a| a.ip().to_canonical()).collect())
        .unwrap_or_default()
}

impl Unit for Network {
    fn apply(&self, wasi: &mut WasiCtxBuilder, cx: &InstanceCx<'_>) -> Result<()> {
        wasi.allow_tcp(true);
        wasi.allow_udp(false);
        wasi.allow_ip_name_lookup(
            self.rules
                .iter()
                .any(|(h, _)| matches!(h, NetHost::Name(_))),
        );
        let rules = self.rules.clone();
        let metrics = cx.metrics.clone();
        wasi.socket_addr_check(move |addr, use_| {
            let ok = match use_ {
                SocketAddrUse::TcpConnect => allowed(&rules, addr),
                // The implicit bind before a connect uses the wildcard address and port 0.
                SocketAddrUse::TcpBind => addr.ip().is_unspecified() && addr.port() == 0,
                _ => false,
            };
            if !ok {
                let what = format!("{use_:?} to {addr} (not in grants.network)");
                metrics.denied(Capability::Network, &what);
            }
            Box::pin(async move { ok })
        });
        Ok(())
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn destinations() {
        assert_eq!(
            parse_destination("127.0.0.1:80").unwrap(),
            (NetHost::Ip("127.0.0.1".parse().unwrap()), 80)
        );
        assert_eq!(
            parse_destination("[::ffff:10.0.0.1]:80").unwrap().0,
            NetHost::Ip("10.0.0.1".parse().unwrap())
        );
        assert_eq!(
            parse_destination("DB.internal:5432").unwrap(),
            (NetHost::Name("db.internal".into()), 5432)
        );
        assert!(parse_destination("db").unwrap_err().contains("no port"));
        assert!(
            parse_destination("db:0")
                .unwrap_err()
                .contains("not a port")
        );
        assert!(
            parse_destination("db:http")
                .unwrap_err()
                .contains("not a port")
        );
        assert!(parse_destination("a b:80").unwrap_err().contains("neither"));
    }

    #[test]
    fn mapped_addresses_match_their_ipv4_form_only() {
        let rules = vec![(NetHost::Ip("127.0.0.1".parse().unwrap()), 80)];
        assert!(allowed(&rules, "[::ffff:127.0.0.1]:80".parse().unwrap()));
        assert!(!allowed(&rules, "[::ffff:127.0.0.2]:80".parse().unwrap()));
        assert!(!allowed(&rules, "127.0.0.1:81".parse().unwrap()));
        assert!(!allowed(&rules, "169.254.169.254:80".parse().unwrap()));
    }
}
