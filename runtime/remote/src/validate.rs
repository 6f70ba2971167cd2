//! The checks of an app with `remote` modules: a name usable in NATS subjects, servers to
//! reach, credentials that make sense together, and hosted modules that are remote.

use crate::error::{Error, Problems};
use crate::protocol::valid_token;
use crate::spec::{AppSpec, Placement};

/// Adds the problems of `spec`'s remote setup to `problems`.
pub(crate) fn check(spec: &AppSpec, problems: &mut Problems) {
    for name in &spec.hosted {
        match spec.modules.get(name) {
            None => problems.push(
                Error::not_found(format!(
                    "`{name}` is to be hosted here but the app has no module of that name; \
                     declared modules: {}",
                    spec.modules.keys().cloned().collect::<Vec<_>>().join(", ")
                ))
                .with_module(name.as_str()),
            ),
            Some(m) if m.placement != Placement::Remote => problems.push(
                Error::manifest(format!(
                    "module `{name}` is to be hosted here but its placement is \"{}\": callers \
                     would never send it calls over NATS; set [modules.{name}] placement = \"remote\"",
                    m.placement
                ))
                .with_module(name.as_str())
                .with_key(format!("modules.{name}.placement")),
            ),
            Some(_) => {}
        }
    }
    let remote: Vec<&str> = spec
        .modules
        .iter()
        .filter(|(_, m)| m.placement == Placement::Remote)
        .map(|(n, _)| n.as_str())
        .collect();
    if remote.is_empty() {
        return;
    }
    let which = remote.join(", ");
    match &spec.name {
        None => problems.push(
            Error::manifest(format!(
                "the app has remote modules ({which}) but no name; set [app] name = \"...\" \
                 (letters, digits, - and _): it is part of their NATS subjects"
            ))
            .with_key("app.name"),
        ),
        Some(n) if !valid_token(n) => problems.push(
            Error::manifest(format!(
                "app.name = {n:?} cannot be part of a NATS subject; use letters, digits, - and _"
            ))
            .with_key("app.name"),
        ),
        Some(_) => {}
    }
    for m in &remote {
        if !valid_token(m) {
            problems.push(
                Error::manifest(format!(
                    "module `{m}` is remote but its name cannot be part of a NATS subject; \
                     use letters, digits, - and _"
                ))
                .with_module(*m)
                .with_key(format!("modules.{m}")),
            );
        }
    }
    let Some(nats) = spec.nats.as_ref().filter(|n| !n.servers.is_empty()) else {
        problems.push(
            Error::manifest(format!(
                "the app has remote modules ({which}) but no NATS servers; set [app] nats = \
                 \"nats://HOST:PORT\" (or a list of a cluster's servers)"
            ))
            .with_key("app.nats"),
        );
        return;
    };
    for s in &nats.servers {
        if s.parse::<async_nats::ServerAddr>().is_err() || !(s.contains("://") || s.contains(':')) {
            problems.push(
                Error::manifest(format!(
                    "app.nats: {s:?} is not a NATS server URL; write nats://HOST:PORT or tls://HOST:PORT"
                ))
                .with_key("app.nats"),
            );
        }
    }
    let auth =
        |what: &str| Error::manifest(format!("app.nats_auth: {what}")).with_key("app.nats_auth");
    match (&nats.user, &nats.password) {
        (Some(_), None) => problems.push(auth(
            "a user needs a password: set password_env (an environment variable) or password_file",
        )),
        (None, Some(_)) => problems.push(auth("a password needs a user: set user")),
        _ => {}
    }
    if nats.password.is_some() && nats.nkey.is_some() {
        problems.push(auth(
            "set either user and password or an NKey (nkey_env / nkey_file), not both",
        ));
    }
}

#[cfg(test)]
mod tests {
    use crate::spec::{AppSpec, ModuleSpec, NatsSpec, Placement, Secret};

    fn remote() -> ModuleSpec {
        ModuleSpec::from_bytes(vec![0u8]).placement(Placement::Remote)
    }

    fn keys(spec: &AppSpec) -> Vec<String> {
        let mut problems = crate::error::Problems::default();
        super::check(spec, &mut problems);
        problems
            .iter_mut()
            .map(|p| p.key().unwrap_or("-").to_string())
            .collect()
    }

    #[test]
    fn a_remote_module_needs_a_name_and_servers() {
        let app = AppSpec::new().module("render", remote());
        assert_eq!(keys(&app), ["app.name", "app.nats"]);
        let app = app
            .name("notes")
            .nats(NatsSpec::new(["nats://127.0.0.1:4222"]));
        assert!(keys(&app).is_empty());
        let bad = AppSpec::new()
            .module("render", remote())
            .name("no.tes")
            .nats(NatsSpec::new(["not a url"]));
        assert_eq!(keys(&bad), ["app.name", "app.nats"]);
    }

    #[test]
    fn credentials_must_be_whole() {
        let base = || AppSpec::new().module("render", remote()).name("notes");
        let mut n = NatsSpec::new(["nats://h:4222"]);
        n.user = Some("svc".into());
        assert_eq!(keys(&base().nats(n)), ["app.nats_auth"]);
        let n = NatsSpec::new(["nats://h:4222"])
            .user_password("svc", Secret::Env("P".into()))
            .nkey(Secret::Env("K".into()));
        assert_eq!(keys(&base().nats(n)), ["app.nats_auth"]);
    }

    #[test]
    fn only_remote_modules_can_be_hosted() {
        let app = AppSpec::new()
            .module("render", remote())
            .module("local", ModuleSpec::from_bytes(vec![0u8]))
            .name("notes")
            .nats(NatsSpec::new(["nats://h:4222"]))
            .host(["render", "local", "ghost"]);
        assert_eq!(keys(&app), ["-", "modules.local.placement"]);
    }
}
