//! `[app] name`, `[app] nats` and `[app.nats_auth]`: where an app's `remote` modules are
//! served and how to authenticate there. Credentials are never inline: a password or an
//! NKey seed is named by an environment variable or a file.

use std::path::Path;

use serde::Deserialize;
use toml::Spanned;

use super::Lines;
use crate::spec::{NatsSpec, Secret};

/// `nats = "nats://..."` or a list of servers.
#[derive(Deserialize)]
#[serde(untagged)]
pub(super) enum Servers {
    One(String),
    Many(Vec<String>),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct AuthSection {
    user: Option<String>,
    password_env: Option<String>,
    password_file: Option<String>,
    nkey_env: Option<String>,
    nkey_file: Option<String>,
    tls_ca: Option<String>,
}

/// The app's NATS settings; problems go to `lines`.
pub(super) fn nats_spec(
    servers: Option<Spanned<Servers>>,
    auth: Option<Spanned<AuthSection>>,
    base: &Path,
    lines: &mut Lines<'_>,
) -> Option<NatsSpec> {
    let mut spec = NatsSpec::default();
    if let Some(servers) = servers {
        lines.note("app.nats", &servers.span());
        spec.servers = match servers.into_inner() {
            Servers::One(s) => vec![s],
            Servers::Many(v) => v,
        };
    }
    if let Some(auth) = auth {
        let span = auth.span();
        lines.note("app.nats_auth", &span);
        let a = auth.into_inner();
        let one_of = |env: Option<String>, file: Option<String>, what: &str, lines: &mut Lines<'_>| {
            match (env, file) {
                (Some(_), Some(_)) => {
                    lines.bad(
                        format!("app.nats_auth.{what}_env"),
                        &span,
                        format!("set either {what}_env or {what}_file, not both"),
                    );
                    None
                }
                (Some(var), None) => Some(Secret::Env(var)),
                (None, Some(f)) => Some(Secret::File(base.join(f))),
                (None, None) => None,
            }
        };
        spec.password = one_of(a.password_env, a.password_file, "password", lines);
        spec.nkey = one_of(a.nkey_env, a.nkey_file, "nkey", lines);
        spec.user = a.user;
        spec.tls_ca = a.tls_ca.map(|f| base.join(f));
    }
    (spec != NatsSpec::default()).then_some(spec)
}
