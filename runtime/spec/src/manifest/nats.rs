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
        let one_of = |env: Option<String>,
                      file: Option<String>,
                      what: &str,
                      lines: &mut Lines<'_>| match (env, file) {
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
        };
        spec.password = one_of(a.password_env, a.password_file, "password", lines);
        spec.nkey = one_of(a.nkey_env, a.nkey_file, "nkey", lines);
        spec.user = a.user;
        spec.tls_ca = a.tls_ca.map(|f| base.join(f));
    }
    (spec != NatsSpec::default()).then_some(spec)
}

#[cfg(test)]
mod tests {
    use std::path::{Path, PathBuf};

    use crate::error::ErrorKind;
    use crate::manifest::Manifest;
    use crate::spec::{Placement, Secret};

    fn parse(text: &str) -> crate::Result<Manifest> {
        Manifest::parse(text, Path::new("/app/membrane.toml"), Path::new("/app"))
    }

    const MODULE: &str = "[modules.render]\ncomponent = \"r.wasm\"\nplacement = \"remote\"\n";

    #[test]
    fn servers_name_and_credentials() {
        let m = parse(&format!(
            "[app]\nname = \"notes\"\nnats = \"nats://127.0.0.1:4222\"\n\
             [app.nats_auth]\nuser = \"svc\"\npassword_env = \"NOTES_NATS_PASSWORD\"\n\
             tls_ca = \"certs/ca.pem\"\n{MODULE}"
        ))
        .unwrap();
        assert_eq!(m.app.app_name(), Some("notes"));
        let n = m.app.nats_spec().unwrap();
        assert_eq!(n.servers, ["nats://127.0.0.1:4222"]);
        assert_eq!(n.user.as_deref(), Some("svc"));
        assert_eq!(n.password, Some(Secret::Env("NOTES_NATS_PASSWORD".into())));
        assert_eq!(n.tls_ca, Some(PathBuf::from("/app/certs/ca.pem")));
        assert_eq!(m.app.modules()["render"].placement, Placement::Remote);

        let m = parse(&format!(
            "[app]\nname = \"notes\"\nnats = [\"nats://a:4222\", \"nats://b:4222\"]\n\
             [app.nats_auth]\nnkey_file = \"notes.nk\"\n{MODULE}"
        ))
        .unwrap();
        let n = m.app.nats_spec().unwrap();
        assert_eq!(n.servers.len(), 2);
        assert_eq!(n.nkey, Some(Secret::File("/app/notes.nk".into())));
    }

    #[test]
    fn inline_or_doubled_credentials_are_refused() {
        // No inline password key exists: an unknown key.
        let e = parse(&format!(
            "[app]\nname = \"n\"\nnats = \"nats://h:1\"\n[app.nats_auth]\nuser = \"u\"\npassword = \"hunter2\"\n{MODULE}"
        ))
        .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Manifest);
        let e = parse(&format!(
            "[app]\nname = \"n\"\nnats = \"nats://h:1\"\n[app.nats_auth]\nnkey_env = \"A\"\nnkey_file = \"b\"\n{MODULE}"
        ))
        .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Manifest);
        assert_eq!(e.key(), Some("app.nats_auth.nkey_env"));
        assert_eq!(e.location().map(|l| l.line), Some(4));
    }
}
