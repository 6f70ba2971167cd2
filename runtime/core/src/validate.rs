//! The one validation pass: everything about an app's declaration that can be checked
//! without opening a file or compiling, for a manifest and a builder alike. Module names,
//! the entry, the stack, components, links (key shape, target), the restart policy, and
//! every capability and limit through its own pure check ([`crate::unit::UnitDef`]).
//! Every problem is reported at once, with the module and the manifest key to change, and
//! the file and line when the app came from a manifest.

use crate::capability::CAPABILITIES;
use crate::error::{Error, Problems, Result};
use crate::limits::LIMITS;
use crate::names::{HOST, validate_link_key, validate_module_name};
use crate::spec::{AppSpec, ComponentSource, HttpSpec, Locations, Placement};
use crate::unit::{ModuleCx, Policy};
use crate::units::format_size;

/// Checks an app's declaration for a runtime that serves the placements of `boundaries`,
/// without opening or compiling anything; every problem is reported in one error
/// ([`Error::problems`]).
pub fn validate_with(spec: &AppSpec, boundaries: &crate::boundary::Boundaries) -> Result<()> {
    let settings = Settings {
        boundaries: boundaries.clone(),
        ..Settings::default()
    };
    let mut problems = check(spec, &settings);
    locate(spec.locations.as_deref(), &mut problems);
    problems.into_result()
}

/// What the checks need to know of the runtime.
pub struct Settings {
    /// Whether the engine meters fuel.
    pub metered: bool,
    pub epoch_tick: std::time::Duration,
    /// The largest component file read (`[app] max_component_size`).
    pub max_component: u64,
    /// The placements served.
    pub boundaries: crate::boundary::Boundaries,
}

impl Default for Settings {
    fn default() -> Self {
        // A runtime that meters: `validate` alone cannot know, so it does not complain.
        Settings {
            metered: true,
            epoch_tick: std::time::Duration::from_millis(5),
            max_component: AppSpec::DEFAULT_MAX_COMPONENT_SIZE,
            boundaries: crate::boundary::Boundaries::isolated(),
        }
    }
}

/// The problems of an app's declaration, not yet located.
pub fn check(spec: &AppSpec, settings: &Settings) -> Problems {
    let mut problems = Problems::default();
    if spec.modules.is_empty() {
        problems.push(Error::manifest(
            "the app has no modules; declare at least one ([modules.NAME] with a `component`)",
        ));
    }
    if let Some(e) = &spec.entry
        && !spec.modules.contains_key(e)
    {
        let known: Vec<&str> = spec.modules.keys().map(String::as_str).collect();
        problems.push(
            Error::manifest(format!(
                "app.entry = {e:?} names no module; declared modules: {}",
                if known.is_empty() {
                    "none".to_string()
                } else {
                    known.join(", ")
                }
            ))
            .with_key("app.entry"),
        );
    }
    if let Some(stack) = spec.stack
        && !(AppSpec::MIN_STACK..=AppSpec::MAX_STACK).contains(&stack)
    {
        problems.push(
            Error::manifest(format!(
                "app.stack: {} is outside 64KiB..=1MiB",
                crate::units::format_size(stack)
            ))
            .with_key("app.stack"),
        );
    }
    check_serving(spec, &mut problems);
    crate::keyvalue::check(spec, &mut problems);
    if spec.keyvalue.backend == crate::spec::KvBackend::Nats
        && !spec.keyvalue.buckets.is_empty()
        && settings.boundaries.get(Placement::Remote).is_none()
    {
        problems.push(
            Error::manifest(
                "app.keyvalue: backend = \"nats\" is not built into this program: build \
                 membrane with the `remote` feature (NATS), or use the embedded backend",
            )
            .with_key("app.keyvalue.backend"),
        );
    }
    settings.boundaries.check_known(spec, &mut problems);
    for b in settings.boundaries.iter() {
        b.check_declaration(spec, &mut problems);
    }
    for (name, m) in &spec.modules {
        let key = |rest: &str| format!("modules.{name}.{rest}");
        if let Err(msg) = validate_module_name(name) {
            problems.push(
                Error::manifest(format!("[modules.{name}]: {msg}"))
                    .with_key(format!("modules.{name}")),
            );
            continue;
        }
        if let ComponentSource::File(p) = &m.source
            && p.as_os_str().is_empty()
        {
            problems.push(
                Error::manifest(format!(
                    "module `{name}`: component is empty: give the path of a .wasm component"
                ))
                .with_key(key("component")),
            );
        }
        for (import, provider) in &m.links {
            let k = key(&format!("links.{import}"));
            if let Err(msg) = validate_link_key(import) {
                problems
                    .push(Error::manifest(format!("module `{name}`: links: {msg}")).with_key(k));
            } else if provider != HOST && !spec.modules.contains_key(provider) {
                let known: Vec<&str> = spec.modules.keys().map(String::as_str).collect();
                problems.push(
                    Error::link(format!(
                        "module `{name}`: links: {import:?} = {provider:?} names no module; declared modules: {} (or \"host\")",
                        known.join(", ")
                    ))
                    .with_key(k),
                );
            }
        }
        if m.limits.instances == 0 {
            problems.push(
                Error::manifest(format!(
                    "module `{name}`: limits.instances must be at least 1"
                ))
                .with_key(key("limits.instances")),
            );
        }
        let max = crate::spec::Limits::MAX_CONCURRENCY;
        if !(1..=max).contains(&m.limits.concurrency) {
            problems.push(
                Error::manifest(format!(
                    "module `{name}`: limits.concurrency must be between 1 and {max} (calls at once in one instance of a WASI 0.3 module)"
                ))
                .with_key(key("limits.concurrency")),
            );
        }
        for (what, d) in [("within", m.restart.within), ("backoff", m.restart.backoff)] {
            if d.is_zero() {
                problems.push(
                    Error::manifest(format!(
                        "module `{name}`: restart.{what} must be longer than zero"
                    ))
                    .with_key(key(&format!("restart.{what}"))),
                );
            }
        }
        let ratio = m.upgrade.rollback_ratio;
        if !(ratio > 0.0 && ratio <= 1.0) {
            problems.push(
                Error::manifest(format!(
                    "module `{name}`: upgrade.rollback_ratio is {ratio}; it must be above 0 and at most 1 (1 rolls back only when every call fails)"
                ))
                .with_key(key("upgrade.rollback_ratio")),
            );
        }
        let cx = ModuleCx {
            name,
            spec: m,
            metered: settings.metered,
            epoch_tick: settings.epoch_tick,
            max_component: settings.max_component,
            keyvalue: None,
        };
        Policy::validate(&[LIMITS, CAPABILITIES], &cx, &mut problems);
    }
    // Every problem about a module names it.
    for p in problems.iter_mut() {
        if let Some(module) = p
            .key()
            .and_then(|k| k.strip_prefix("modules."))
            .map(|rest| rest.split(['.', '[']).next().unwrap_or(rest).to_string())
        {
            p.set_module(&module);
        }
    }
    problems
}

/// `[app.http]` and `[app.admin]`: addresses, routes, the server's own limits. (That a routed
/// module exports the HTTP handler is checked when it has been compiled.)
fn check_serving(spec: &AppSpec, problems: &mut Problems) {
    let address = |key: &str, addr: &str, problems: &mut Problems| {
        if addr.parse::<std::net::SocketAddr>().is_err() {
            problems.push(
                Error::manifest(format!(
                    "{key}: {addr:?} is not an address to listen on; write IP:PORT, such as 127.0.0.1:8080"
                ))
                .with_key(key),
            );
        }
    };
    if let Some(a) = &spec.admin.listen {
        address("app.admin.listen", a, problems);
        if let Ok(at) = a.parse::<std::net::SocketAddr>()
            && !at.ip().is_loopback()
            && spec.admin.token.is_none()
        {
            problems.push(
                Error::manifest(format!(
                    "app.admin.listen: {at} is reachable from other machines, so the admin listener needs a token: \
                     set token_file (a file of mode 600) or token_env under [app.admin], or listen on 127.0.0.1"
                ))
                .with_key("app.admin.token_file"),
            );
        }
    }
    if let Some(crate::spec::TokenSource::Env(name)) = &spec.admin.token
        && (name.is_empty() || name.contains('='))
    {
        problems.push(
            Error::manifest(format!(
                "app.admin.token_env: {name:?} is not the name of an environment variable"
            ))
            .with_key("app.admin.token_env"),
        );
    }
    let Some(http) = &spec.http else {
        return;
    };
    if let Some(a) = &http.listen {
        address("app.http.listen", a, problems);
    }
    for (prefix, module) in &http.routes {
        let key = format!("app.http.routes.{prefix}");
        if !prefix.starts_with('/') {
            problems.push(
                Error::manifest(format!(
                    "{key}: the prefix {prefix:?} must start with `/` (a path prefix, such as \"/api/\")"
                ))
                .with_key(key.clone()),
            );
        }
        if !spec.modules.contains_key(module) {
            let known: Vec<&str> = spec.modules.keys().map(String::as_str).collect();
            problems.push(
                Error::manifest(format!(
                    "{key}: {module:?} names no module; declared modules: {}",
                    known.join(", ")
                ))
                .with_key(key),
            );
        }
    }
    for (k, d) in [
        ("header_timeout", http.header_timeout),
        ("write_timeout", http.write_timeout),
        ("idle_timeout", http.idle_timeout),
    ] {
        if d.is_zero() {
            problems.push(
                Error::manifest(format!("app.http.{k} must be longer than zero"))
                    .with_key(format!("app.http.{k}")),
            );
        }
    }
    if !(1024..=HttpSpec::MAX_HEADER_SIZE).contains(&http.max_header_size) {
        problems.push(
            Error::manifest(format!(
                "app.http.max_header_size must be between 1KiB and {} (it is {})",
                format_size(HttpSpec::MAX_HEADER_SIZE as u64),
                format_size(http.max_header_size as u64)
            ))
            .with_key("app.http.max_header_size"),
        );
    }
    if http.max_connections == 0 {
        problems.push(
            Error::manifest("app.http.max_connections must be at least 1")
                .with_key("app.http.max_connections"),
        );
    }
    if http.max_connections_per_ip == Some(0) {
        problems.push(
            Error::manifest(
                "app.http.max_connections_per_ip must be at least 1 (leave it out for no cap per address)",
            )
            .with_key("app.http.max_connections_per_ip"),
        );
    }
}

/// Adds the manifest file and line to every problem that names a key.
pub fn locate(locations: Option<&Locations>, problems: &mut Problems) {
    let Some(locations) = locations else {
        return;
    };
    for p in problems.iter_mut() {
        if let Some(at) = p.key().and_then(|k| locations.find(k)) {
            p.set_location(at);
        }
    }
}
