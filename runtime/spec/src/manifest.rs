//! `membrane.toml`: strict parsing into an [`AppSpec`].
//!
//! Parsing checks the syntax, the keys and the form of each value (sizes, durations,
//! numbers); unknown keys are errors, because they are usually typos of a grant and a typo
//! in a security policy must not pass silently. Whether the values make sense together
//! (paths, destinations, link targets, the entry) is decided by the one validation pass
//! when the app loads (`membrane::validate`); the manifest records where each key
//! is, so that every problem found then names the file and the line. Paths are relative to
//! the directory holding the manifest. A component is a file path or an `oci://`
//! reference ([`OciRef`]); a `membrane.lock` beside the manifest pins the references
//! ([`Lock`]).

use std::collections::BTreeMap;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Deserialize;
use toml::Spanned;

use crate::error::{Error, Location, Problems, Result};
use crate::spec::{
    AdminSpec, AppSpec, BucketAccess, ConfigValue, DirGrant, DirMode, Grants, HttpSpec, Lifecycle,
    Limits, Locations, ModuleSpec, OciRef, OutputRoute, Placement, RestartPolicy, TlsSpec,
    TokenSource, UpgradePolicy,
};
use crate::units::{parse_duration, parse_size};

mod keys;
mod keyvalue;
mod lock;
mod nats;
mod telemetry;

pub use lock::{LOCK_FILE, Lock, LockEntry};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ManifestFile {
    #[serde(default)]
    app: AppSection,
    #[serde(default)]
    modules: BTreeMap<String, Spanned<ModuleSection>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct AppSection {
    entry: Option<Spanned<String>>,
    name: Option<Spanned<String>>,
    nats: Option<Spanned<nats::Servers>>,
    nats_auth: Option<Spanned<nats::AuthSection>>,
    stack: Option<Spanned<String>>,
    max_component_size: Option<Spanned<String>>,
    http: Option<Spanned<HttpSection>>,
    admin: Option<AdminSection>,
    keyvalue: Option<keyvalue::KeyValueSection>,
    telemetry: Option<Spanned<telemetry::TelemetrySection>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct HttpSection {
    listen: Option<Spanned<String>>,
    #[serde(default)]
    routes: BTreeMap<String, Spanned<String>>,
    header_timeout: Option<Spanned<String>>,
    max_header_size: Option<Spanned<String>>,
    write_timeout: Option<Spanned<String>>,
    idle_timeout: Option<Spanned<String>>,
    max_connections: Option<Spanned<u32>>,
    max_connections_per_ip: Option<Spanned<u32>>,
    drain: Option<Spanned<String>>,
    tls_cert: Option<Spanned<String>>,
    tls_key: Option<Spanned<String>>,
    tls_client_ca: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AdminSection {
    listen: Spanned<String>,
    token_file: Option<Spanned<String>>,
    token_env: Option<Spanned<String>>,
    #[serde(default)]
    hosts: Vec<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ModuleSection {
    component: Spanned<String>,
    build: Option<String>,
    sources: Option<Spanned<Vec<String>>>,
    #[serde(default)]
    grants: GrantsSection,
    #[serde(default)]
    limits: LimitsSection,
    #[serde(default)]
    links: BTreeMap<String, Spanned<String>>,
    lifecycle: Option<Spanned<Lifecycle>>,
    restart: Option<RestartSection>,
    upgrade: Option<UpgradeSection>,
    placement: Option<Spanned<Placement>>,
    allow_weaker_sandbox: Option<Spanned<bool>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UpgradeSection {
    drain: Option<Spanned<String>>,
    probation: Option<Spanned<String>>,
    rollback_ratio: Option<Spanned<f64>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RestartSection {
    max: Option<Spanned<u32>>,
    within: Option<Spanned<String>>,
    backoff: Option<Spanned<String>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct GrantsSection {
    #[serde(default)]
    dirs: Vec<Spanned<DirSection>>,
    #[serde(default)]
    env: BTreeMap<String, Spanned<String>>,
    stdout: Option<Spanned<OutputRoute>>,
    stderr: Option<Spanned<OutputRoute>>,
    #[serde(default)]
    network: Vec<Spanned<String>>,
    #[serde(default)]
    http: Vec<Spanned<String>>,
    #[serde(default)]
    config: BTreeMap<String, Spanned<ConfigSection>>,
    #[serde(default)]
    keyvalue: BTreeMap<String, Spanned<BucketAccess>>,
}

/// A `grants.config` value: the value itself, or where a secret is read from.
#[derive(Deserialize)]
#[serde(untagged)]
enum ConfigSection {
    Value(String),
    From(ConfigFrom),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ConfigFrom {
    env: Option<String>,
    file: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DirSection {
    host: String,
    guest: String,
    #[serde(default)]
    mode: DirMode,
    quota: Option<String>,
    quota_files: Option<u64>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct LimitsSection {
    memory: Option<Spanned<String>>,
    timeout: Option<Spanned<String>>,
    instances: Option<Spanned<u32>>,
    queue: Option<Spanned<u32>>,
    fuel: Option<Spanned<u64>>,
    hostcall: Option<Spanned<String>>,
    output: Option<Spanned<String>>,
    files: Option<Spanned<u32>>,
    body: Option<Spanned<String>>,
    concurrency: Option<Spanned<u32>>,
}

/// A parsed manifest: the app and where it came from.
#[derive(Debug, Clone)]
pub struct Manifest {
    /// The file it was read from.
    pub path: PathBuf,
    /// The app it declares, with paths already resolved against the manifest's directory.
    pub app: AppSpec,
}

/// Records the lines of keys while a manifest is converted.
struct Lines<'a> {
    text: &'a str,
    file: &'a Path,
    map: BTreeMap<String, usize>,
    problems: Problems,
}

impl Lines<'_> {
    fn line(&self, span: &Range<usize>) -> usize {
        line_of(self.text, span.start)
    }

    fn note(&mut self, key: impl Into<String>, span: &Range<usize>) {
        let line = self.line(span);
        self.map.insert(key.into(), line);
    }

    /// A value whose form is wrong: the key, the line and what was wrong.
    fn bad(&mut self, key: String, span: &Range<usize>, message: String) {
        let location = Location {
            file: self.file.to_path_buf(),
            line: self.line(span),
        };
        self.problems.push(
            Error::manifest(format!("{key}: {message}"))
                .with_key(key)
                .at(Some(location)),
        );
    }

    fn size(&mut self, key: String, v: &Spanned<String>) -> Option<u64> {
        self.note(key.clone(), &v.span());
        parse_size(v.get_ref())
            .map_err(|msg| self.bad(key, &v.span(), msg))
            .ok()
    }

    fn duration(&mut self, key: String, v: &Spanned<String>) -> Option<std::time::Duration> {
        self.note(key.clone(), &v.span());
        parse_duration(v.get_ref())
            .map_err(|msg| self.bad(key, &v.span(), msg))
            .ok()
    }
}

impl Manifest {
    /// The largest manifest file read.
    pub const MAX_SIZE: u64 = 16 << 20;

    /// Reads and parses a manifest file (a directory stands for the `membrane.toml` in it).
    /// It must be a regular file of at most [`Manifest::MAX_SIZE`] bytes (a FIFO or a
    /// device is refused before it is read). When a `membrane.lock` lies beside it, every
    /// `oci://` component is pinned to the digests locked there ([`Lock::apply`]).
    pub fn from_file(path: impl AsRef<Path>) -> Result<Manifest> {
        let mut manifest = Self::from_file_unlocked(path)?;
        let lock_path = Lock::beside(&manifest.path);
        let has_oci = manifest
            .app
            .modules
            .values()
            .any(|m| matches!(m.source, crate::spec::ComponentSource::Oci(_)));
        if has_oci && let Some(lock) = Lock::read(&lock_path)? {
            lock.apply(&mut manifest.app, &lock_path)?;
        }
        Ok(manifest)
    }

    /// [`Manifest::from_file`] without applying `membrane.lock`: every `oci://` tag is
    /// resolved afresh when the app loads (what `membrane lock` does).
    pub fn from_file_unlocked(path: impl AsRef<Path>) -> Result<Manifest> {
        use crate::walk::{Refused, read_regular};
        // A directory stands for the membrane.toml in it.
        let dir_manifest;
        let path = match path.as_ref() {
            p if p.is_dir() => {
                dir_manifest = p.join("membrane.toml");
                dir_manifest.as_path()
            }
            p => p,
        };
        let shown = path.display();
        let bytes = match read_regular(path, Self::MAX_SIZE) {
            Ok((bytes, _)) => bytes,
            Err(Refused::Io(e)) => {
                let kind = if e.kind() == std::io::ErrorKind::NotFound {
                    crate::error::ErrorKind::NotFound
                } else {
                    crate::error::ErrorKind::Io
                };
                return Err(
                    Error::new(kind, format!("cannot read manifest {shown}")).with_source(e)
                );
            }
            Err(Refused::NotRegular(what)) => {
                return Err(Error::manifest(format!(
                    "the manifest {shown} is {what}, not a regular file"
                )));
            }
            Err(Refused::TooLarge(size)) => {
                return Err(Error::manifest(format!(
                    "the manifest {shown} is {}, more than a manifest may be ({})",
                    crate::units::format_size(size),
                    crate::units::format_size(Self::MAX_SIZE)
                )));
            }
        };
        let text = String::from_utf8(bytes).map_err(|e| {
            Error::manifest(format!("the manifest {shown} is not UTF-8 text")).with_source(e)
        })?;
        let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
        let base = if base.as_os_str().is_empty() {
            PathBuf::from(".")
        } else {
            base
        };
        Self::parse(&text, path, &base)
    }

    /// Parses manifest text; `path` names the file in messages, `base` resolves relative
    /// paths. Checks syntax, keys and the form of values; the rest is checked when the app
    /// loads.
    pub fn parse(text: &str, path: &Path, base: &Path) -> Result<Manifest> {
        let file: ManifestFile = keys::from_str(text).map_err(|found| {
            let mut problems = Problems::default();
            for p in found {
                let e = match p.span {
                    Some(s) => Error::manifest(p.message).at(Some(Location {
                        file: path.to_path_buf(),
                        line: line_of(text, s.start),
                    })),
                    None => Error::manifest(format!("{}: {}", path.display(), p.message)),
                };
                problems.push(match p.key {
                    Some(key) => e.with_key(key),
                    None => e,
                });
            }
            problems
                .into_result()
                .expect_err("a failed deserializing has a problem")
        })?;
        let mut lines = Lines {
            text,
            file: path,
            map: BTreeMap::new(),
            problems: Problems::default(),
        };
        let mut app = AppSpec::new();
        for (name, section) in file.modules {
            lines.note(format!("modules.{name}"), &section.span());
            let spec = module_spec(&name, section.into_inner(), base, &mut lines);
            app = app.module(name, spec);
        }
        if let Some(entry) = file.app.entry {
            lines.note("app.entry", &entry.span());
            app = app.entry(entry.into_inner());
        }
        if let Some(name) = file.app.name {
            lines.note("app.name", &name.span());
            app = app.name(name.into_inner());
        }
        if let Some(n) = nats::nats_spec(file.app.nats, file.app.nats_auth, base, &mut lines) {
            app = app.nats(n);
        }
        if let Some(kv) = file.app.keyvalue {
            app = app.keyvalue(keyvalue::keyvalue_spec(kv, base, &mut lines));
        }
        if let Some(t) = file.app.telemetry {
            lines.note("app.telemetry", &t.span());
            app = app.telemetry(telemetry::telemetry_spec(t.into_inner(), &mut lines));
        }
        if let Some(stack) = &file.app.stack
            && let Some(bytes) = lines.size("app.stack".into(), stack)
        {
            app = app.stack(bytes);
        }
        if let Some(max) = &file.app.max_component_size
            && let Some(bytes) = lines.size("app.max_component_size".into(), max)
        {
            app = app.max_component_size(bytes);
        }
        if let Some(http) = file.app.http {
            lines.note("app.http", &http.span());
            app = app.http(http_spec(http.into_inner(), base, &mut lines));
        }
        if let Some(admin) = file.app.admin {
            app = app.admin_with(admin_spec(admin, base, &mut lines));
        }
        let Lines { map, problems, .. } = lines;
        problems.into_result()?;
        app.locations = Some(Arc::new(Locations {
            file: path.to_path_buf(),
            lines: map,
        }));
        Ok(Manifest {
            path: path.to_path_buf(),
            app,
        })
    }
}

fn admin_spec(s: AdminSection, base: &Path, lines: &mut Lines<'_>) -> AdminSpec {
    lines.note("app.admin.listen", &s.listen.span());
    let mut admin = AdminSpec {
        listen: Some(s.listen.into_inner()),
        ..AdminSpec::default()
    };
    match (s.token_file, s.token_env) {
        (Some(_), Some(env)) => lines.bad(
            "app.admin.token_env".into(),
            &env.span(),
            "give token_file or token_env, not both (one token, from one place)".into(),
        ),
        (Some(file), None) => {
            lines.note("app.admin.token_file", &file.span());
            admin = admin.token(TokenSource::File(base.join(file.into_inner())));
        }
        (None, Some(env)) => {
            lines.note("app.admin.token_env", &env.span());
            admin = admin.token(TokenSource::Env(env.into_inner()));
        }
        (None, None) => {}
    }
    for (i, h) in s.hosts.into_iter().enumerate() {
        lines.note(format!("app.admin.hosts[{i}]"), &h.span());
        admin = admin.host(h.into_inner());
    }
    admin
}

fn http_spec(s: HttpSection, base: &Path, lines: &mut Lines<'_>) -> HttpSpec {
    let mut http = HttpSpec::default();
    if let Some(listen) = s.listen {
        lines.note("app.http.listen", &listen.span());
        http.listen = Some(listen.into_inner());
    }
    for (prefix, module) in s.routes {
        lines.note(format!("app.http.routes.{prefix}"), &module.span());
        http.routes.insert(prefix, module.into_inner());
    }
    for (k, v, slot) in [
        (
            "header_timeout",
            &s.header_timeout,
            &mut http.header_timeout,
        ),
        ("write_timeout", &s.write_timeout, &mut http.write_timeout),
        ("idle_timeout", &s.idle_timeout, &mut http.idle_timeout),
        ("drain", &s.drain, &mut http.drain),
    ] {
        if let Some(v) = v
            && let Some(d) = lines.duration(format!("app.http.{k}"), v)
        {
            *slot = d;
        }
    }
    if let Some(v) = &s.max_header_size
        && let Some(n) = lines.size("app.http.max_header_size".into(), v)
    {
        http.max_header_size = usize::try_from(n).unwrap_or(usize::MAX);
    }
    if let Some(v) = s.max_connections {
        lines.note("app.http.max_connections", &v.span());
        http.max_connections = *v.get_ref() as usize;
    }
    if let Some(v) = s.max_connections_per_ip {
        lines.note("app.http.max_connections_per_ip", &v.span());
        http.max_connections_per_ip = Some(*v.get_ref() as usize);
    }
    let (cert, key, ca) = (s.tls_cert, s.tls_key, s.tls_client_ca);
    let present_is_cert = cert.is_some();
    for (k, v) in [
        ("tls_cert", &cert),
        ("tls_key", &key),
        ("tls_client_ca", &ca),
    ] {
        if let Some(v) = v {
            lines.note(format!("app.http.{k}"), &v.span());
        }
    }
    match (cert, key) {
        (Some(cert), Some(key)) => {
            let mut tls = TlsSpec::new(base.join(cert.get_ref()), base.join(key.get_ref()));
            tls.client_ca = ca.map(|ca| base.join(ca.get_ref()));
            http.tls = Some(tls);
        }
        (Some(present), None) | (None, Some(present)) => {
            let missing = if http.tls.is_none() && present_is_cert {
                "tls_key"
            } else {
                "tls_cert"
            };
            lines.bad(
                format!("app.http.{missing}"),
                &present.span(),
                "TLS needs both tls_cert and tls_key (PEM files of the certificate chain and \
                 its private key)"
                    .to_string(),
            );
        }
        (None, None) => {
            if let Some(ca) = ca {
                lines.bad(
                    "app.http.tls_client_ca".to_string(),
                    &ca.span(),
                    "client certificates need TLS: set tls_cert and tls_key too".to_string(),
                );
            }
        }
    }
    http
}

fn module_spec(name: &str, s: ModuleSection, base: &Path, lines: &mut Lines<'_>) -> ModuleSpec {
    let key = |k: &str| format!("modules.{name}.{k}");
    lines.note(key("component"), &s.component.span());
    let component = s.component.get_ref();
    let mut spec = if component.starts_with(OciRef::SCHEME) || component.contains("://") {
        match OciRef::parse(component) {
            Ok(r) => ModuleSpec::from_oci(r),
            Err(msg) => {
                lines.bad(key("component"), &s.component.span(), msg);
                ModuleSpec::from_file(PathBuf::new())
            }
        }
    } else if component.is_empty() {
        // Joined with the base, an empty path would name the manifest's directory.
        ModuleSpec::from_file(PathBuf::new())
    } else {
        ModuleSpec::from_file(base.join(component))
    };
    spec.build = s.build;
    if let Some(sources) = s.sources {
        if spec.build.is_none() {
            lines.bad(
                key("sources"),
                &sources.span(),
                "`sources` says what rebuilds the module under `serve --watch`, so it needs a `build` command: add one, or remove `sources`".into(),
            );
        }
        spec.sources = sources.into_inner().iter().map(|p| base.join(p)).collect();
    }

    let mut grants = Grants::default();
    for (i, dir) in s.grants.dirs.into_iter().enumerate() {
        let k = key(&format!("grants.dirs[{i}]"));
        lines.note(k.clone(), &dir.span());
        let span = dir.span();
        let dir = dir.into_inner();
        let quota = dir.quota.and_then(|q| {
            parse_size(&q)
                .map_err(|m| lines.bad(format!("{k}.quota"), &span, m))
                .ok()
        });
        grants.dirs.push(DirGrant {
            host: base.join(&dir.host),
            guest: dir.guest,
            mode: dir.mode,
            quota,
            quota_files: dir.quota_files,
        });
    }
    for (k, v) in s.grants.env {
        lines.note(key(&format!("grants.env.{k}")), &v.span());
        grants.env.insert(k, v.into_inner());
    }
    for (stream, route, slot) in [
        ("stdout", s.grants.stdout, &mut grants.stdout),
        ("stderr", s.grants.stderr, &mut grants.stderr),
    ] {
        if let Some(r) = route {
            lines.note(key(&format!("grants.{stream}")), &r.span());
            *slot = r.into_inner();
        }
    }
    for (i, dest) in s.grants.network.into_iter().enumerate() {
        lines.note(key(&format!("grants.network[{i}]")), &dest.span());
        grants.network.push(dest.into_inner());
    }
    for (i, origin) in s.grants.http.into_iter().enumerate() {
        lines.note(key(&format!("grants.http[{i}]")), &origin.span());
        grants.http.push(origin.into_inner());
    }
    for (bucket, access) in s.grants.keyvalue {
        lines.note(key(&format!("grants.keyvalue.{bucket}")), &access.span());
        grants.keyvalue.insert(bucket, access.into_inner());
    }
    for (k, v) in s.grants.config {
        let at = key(&format!("grants.config.{k}"));
        lines.note(at.clone(), &v.span());
        let span = v.span();
        let value = match v.into_inner() {
            ConfigSection::Value(value) => Some(ConfigValue::Value(value)),
            ConfigSection::From(ConfigFrom {
                env: Some(var),
                file: None,
            }) => Some(ConfigValue::Env(var)),
            ConfigSection::From(ConfigFrom {
                env: None,
                file: Some(f),
            }) => Some(ConfigValue::File(base.join(f))),
            ConfigSection::From(_) => {
                lines.bad(
                    at,
                    &span,
                    "give the value as a string, or a secret as { env = \"VAR\" } or { file = \"path\" } (one of the two)".into(),
                );
                None
            }
        };
        if let Some(value) = value {
            grants.config.insert(k, value);
        }
    }
    spec.grants = grants;

    let l = s.limits;
    let mut limits = Limits::default();
    if let Some(v) = &l.memory
        && let Some(b) = lines.size(key("limits.memory"), v)
    {
        limits.memory = b;
    }
    if let Some(v) = &l.timeout
        && let Some(d) = lines.duration(key("limits.timeout"), v)
    {
        limits.timeout = d;
    }
    if let Some(v) = &l.hostcall
        && let Some(b) = lines.size(key("limits.hostcall"), v)
    {
        limits.hostcall = b;
    }
    if let Some(v) = &l.output
        && let Some(b) = lines.size(key("limits.output"), v)
    {
        limits.output = b;
    }
    if let Some(v) = &l.body
        && let Some(b) = lines.size(key("limits.body"), v)
    {
        limits.body = b;
    }
    for (k, v, slot) in [
        ("instances", l.instances, &mut limits.instances),
        ("queue", l.queue, &mut limits.queue),
        ("concurrency", l.concurrency, &mut limits.concurrency),
    ] {
        if let Some(v) = v {
            lines.note(key(&format!("limits.{k}")), &v.span());
            *slot = *v.get_ref() as usize;
        }
    }
    if let Some(v) = l.files {
        lines.note(key("limits.files"), &v.span());
        limits.files = *v.get_ref();
    }
    if let Some(v) = l.fuel {
        lines.note(key("limits.fuel"), &v.span());
        limits.fuel = Some(*v.get_ref());
    }
    spec.limits = limits;

    if let Some(r) = s.restart {
        let mut policy = RestartPolicy::default();
        if let Some(max) = r.max {
            lines.note(key("restart.max"), &max.span());
            policy.max = *max.get_ref();
        }
        if let Some(v) = &r.within
            && let Some(d) = lines.duration(key("restart.within"), v)
        {
            policy.within = d;
        }
        if let Some(v) = &r.backoff
            && let Some(d) = lines.duration(key("restart.backoff"), v)
        {
            policy.backoff = d;
        }
        spec.restart = policy;
    }
    if let Some(u) = s.upgrade {
        let mut policy = UpgradePolicy::default();
        if let Some(v) = &u.drain
            && let Some(d) = lines.duration(key("upgrade.drain"), v)
        {
            policy.drain = d;
        }
        if let Some(v) = &u.probation
            && let Some(d) = lines.duration(key("upgrade.probation"), v)
        {
            policy.probation = d;
        }
        if let Some(r) = u.rollback_ratio {
            lines.note(key("upgrade.rollback_ratio"), &r.span());
            policy.rollback_ratio = *r.get_ref();
        }
        spec.upgrade = policy;
    }
    if let Some(p) = s.placement {
        lines.note(key("placement"), &p.span());
        spec.placement = p.into_inner();
    }
    if let Some(w) = s.allow_weaker_sandbox {
        lines.note(key("allow_weaker_sandbox"), &w.span());
        spec.allow_weaker_sandbox = w.into_inner();
    }
    if let Some(lc) = s.lifecycle {
        lines.note(key("lifecycle"), &lc.span());
        spec.lifecycle = lc.into_inner();
    }
    for (import, provider) in s.links {
        lines.note(key(&format!("links.{import}")), &provider.span());
        spec.links.insert(import, provider.into_inner());
    }
    spec
}

fn line_of(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())]
        .bytes()
        .filter(|b| *b == b'\n')
        .count()
        + 1
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::ComponentSource;

    fn parse(text: &str) -> Result<Manifest> {
        Manifest::parse(text, Path::new("membrane.toml"), Path::new("/apps/x"))
    }

    #[test]
    fn full_manifest() {
        let m = parse(
            r#"
[app]
entry = "api"

[modules.api]
component = "api.wasm"
build = "make"
[modules.api.grants]
dirs = [{ host = "data", guest = "/data", mode = "rw", quota = "1MiB" }, { host = "/etc/x", guest = "/x" }]
env = { LOG_LEVEL = "info" }
stdout = "inherit"
stderr = "discard"
network = ["127.0.0.1:6379", "example.com:443"]
[modules.api.limits]
memory = "32MiB"
timeout = "250ms"
files = 10
"#,
        )
        .unwrap();
        let api = &m.app.modules["api"];
        assert_eq!(m.app.entry_name(), Some("api"));
        assert!(
            matches!(&api.source, ComponentSource::File(p) if p == Path::new("/apps/x/api.wasm"))
        );
        assert_eq!(api.grants.dirs[0].host, Path::new("/apps/x/data"));
        assert_eq!(api.grants.dirs[0].mode, DirMode::ReadWrite);
        assert_eq!(api.grants.dirs[0].quota, Some(1 << 20));
        assert_eq!(api.grants.dirs[1].host, Path::new("/etc/x"));
        assert_eq!(api.grants.dirs[1].mode, DirMode::ReadOnly);
        assert_eq!(api.grants.stdout, OutputRoute::Inherit);
        assert_eq!(api.grants.stderr, OutputRoute::Discard);
        assert_eq!(api.limits.memory, 32 << 20);
        assert_eq!(api.limits.timeout, std::time::Duration::from_millis(250));
        assert_eq!(api.limits.files, 10);
        assert_eq!(api.build_command(), Some("make"));
        let at = m.app.locations.as_ref().unwrap();
        assert_eq!(at.find("modules.api.grants.network[1]").unwrap().line, 13);
        assert_eq!(at.find("modules.api.limits.memory").unwrap().line, 15);
        assert_eq!(at.find("modules.api.grants.dirs[0].guest").unwrap().line, 9);
    }

    #[test]
    fn tls_keys() {
        let m = parse(
            r#"
[app.http]
listen = "127.0.0.1:8443"
routes = { "/" = "api" }
tls_cert = "tls/cert.pem"
tls_key = "/etc/keys/key.pem"
tls_client_ca = "tls/ca.pem"
[modules.api]
component = "api.wasm"
"#,
        )
        .unwrap();
        let tls = m.app.http_spec().unwrap().tls.clone().unwrap();
        assert_eq!(tls.cert, Path::new("/apps/x/tls/cert.pem"));
        assert_eq!(tls.key, Path::new("/etc/keys/key.pem"));
        assert_eq!(
            tls.client_ca.as_deref(),
            Some(Path::new("/apps/x/tls/ca.pem"))
        );
        // Half a pair, or client CAs without a certificate: the missing key is named.
        for (keys, missing) in [
            ("tls_cert = \"c.pem\"", "app.http.tls_key"),
            ("tls_key = \"k.pem\"", "app.http.tls_cert"),
            ("tls_client_ca = \"ca.pem\"", "app.http.tls_client_ca"),
        ] {
            let text = format!(
                "[app.http]\nroutes = {{ \"/\" = \"api\" }}\n{keys}\n[modules.api]\ncomponent = \"a.wasm\"\n"
            );
            let e = parse(&text).unwrap_err();
            let found = std::iter::once(&e)
                .chain(e.problems())
                .any(|p| p.key() == Some(missing));
            assert!(found, "{keys}: {e:?}");
        }
    }

    #[test]
    fn serving_keys() {
        let m = parse(
            r#"
[app.http]
listen = "127.0.0.1:8080"
routes = { "/" = "web", "/api/" = "api" }
header_timeout = "2s"
max_header_size = "200KiB"
max_connections = 10
[app.admin]
listen = "127.0.0.1:9090"
[modules.web]
component = "web.wasm"
grants = { http = ["https://api.example.com", "http://127.0.0.1:9000"] }
limits = { body = "2KiB" }
"#,
        )
        .unwrap();
        let http = m.app.http_spec().unwrap();
        assert_eq!(http.listen.as_deref(), Some("127.0.0.1:8080"));
        assert_eq!(http.routes["/api/"], "api");
        assert_eq!(http.header_timeout, std::time::Duration::from_secs(2));
        assert_eq!(http.max_connections, 10);
        assert_eq!(http.max_header_size, 200 << 10);
        assert_eq!(http.write_timeout, HttpSpec::DEFAULT_WRITE_TIMEOUT);
        assert_eq!(m.app.admin_spec().listen.as_deref(), Some("127.0.0.1:9090"));
        let web = &m.app.modules["web"];
        assert_eq!(web.grants.http.len(), 2);
        assert_eq!(web.limits.body, 2048);
        let at = m.app.locations.as_ref().unwrap();
        assert_eq!(at.find("app.http.routes./api/").unwrap().line, 4);
        assert_eq!(at.find("modules.web.grants.http[1]").unwrap().line, 12);
        let e = parse(
            "[app.http]\nlisten = \"x\"\ndrain = \"forever\"\n[modules.a]\ncomponent = \"a\"\n",
        )
        .unwrap_err();
        assert_eq!(e.problems()[0].key(), Some("app.http.drain"));
        let e = parse("[app.http]\nmax_header_size = \"big\"\n[modules.a]\ncomponent = \"a\"\n")
            .unwrap_err();
        assert_eq!(e.problems()[0].key(), Some("app.http.max_header_size"));
    }

    #[test]
    fn links_are_read_as_written() {
        let m = parse(
            "[modules.a]\ncomponent = \"a\"\nlinks = { \"acme:kv/store@1.2.0\" = \"b\", \"acme:x/y\" = \"host\" }\n[modules.b]\ncomponent = \"b\"\n",
        )
        .unwrap();
        assert_eq!(m.app.modules["a"].links["acme:kv/store@1.2.0"], "b");
    }

    #[test]
    fn unknown_key_names_key_and_line() {
        let e = parse("[modules.a]\ncomponent = \"a.wasm\"\n[modules.a.grants]\nnetwrok = []\n")
            .unwrap_err();
        assert_eq!(e.kind(), crate::error::ErrorKind::Manifest);
        assert_eq!(e.location().map(|l| l.line), Some(4));
        assert!(e.message().contains("netwrok"), "{e}");
    }

    #[test]
    fn bad_values_are_all_reported_with_keys_and_lines() {
        let e = parse(
            "[modules.a]\ncomponent = \"a.wasm\"\n[modules.a.limits]\nmemory = \"lots\"\ntimeout = \"soon\"\n",
        )
        .unwrap_err();
        let p = e.problems();
        assert_eq!(p.len(), 2, "{e}");
        assert_eq!(p[0].key(), Some("modules.a.limits.memory"));
        assert_eq!(p[0].location().map(|l| l.line), Some(4));
        assert_eq!(p[1].key(), Some("modules.a.limits.timeout"));
        assert_eq!(p[1].location().map(|l| l.line), Some(5));
    }

    #[test]
    fn oci_components_are_references_and_bad_ones_name_key_and_line() {
        let m = parse("[modules.a]\ncomponent = \"oci://127.0.0.1:5000/acme/a:1.0\"\n").unwrap();
        let ComponentSource::Oci(r) = &m.app.modules["a"].source else {
            panic!("not an OCI source: {:?}", m.app.modules["a"].source)
        };
        assert_eq!(r.repository(), "acme/a");
        for (component, says) in [
            ("oci://127.0.0.1:5000/acme/a", "names no version"),
            ("oci://127.0.0.1:5000/Acme/a:1", "lowercase"),
            ("https://example.com/a.wasm", "no other scheme"),
        ] {
            let e = parse(&format!(
                "[app]\n\n[modules.a]\ncomponent = \"{component}\"\n"
            ))
            .unwrap_err();
            assert_eq!(e.kind(), crate::error::ErrorKind::Manifest);
            assert_eq!(e.key(), Some("modules.a.component"));
            assert_eq!(e.location().map(|l| l.line), Some(4));
            assert!(e.message().contains(says), "{component}: {e}");
        }
    }

    #[test]
    fn sources_are_paths_of_a_module_with_a_build_command() {
        let m = parse(
            "[modules.a]\ncomponent = \"a.wasm\"\nbuild = \"make\"\nsources = [\"src\", \"Makefile\"]\n",
        )
        .unwrap();
        assert_eq!(
            m.app.modules["a"].sources,
            [Path::new("/apps/x/src"), Path::new("/apps/x/Makefile")]
        );
        let e = parse("[modules.a]\ncomponent = \"a.wasm\"\nsources = [\"src\"]\n").unwrap_err();
        assert_eq!(e.kind(), crate::error::ErrorKind::Manifest);
        assert_eq!(e.key(), Some("modules.a.sources"));
        assert_eq!(e.location().map(|l| l.line), Some(3));
        assert!(e.message().contains("needs a `build` command"), "{e}");
    }

    #[test]
    fn bad_mode_and_route_are_refused() {
        for text in [
            "[modules.a]\ncomponent = \"a\"\ngrants = { dirs = [{ host = \"d\", guest = \"/d\", mode = \"rwx\" }] }\n",
            "[modules.a]\ncomponent = \"a\"\ngrants = { stdout = \"file\" }\n",
        ] {
            let e = parse(text).unwrap_err();
            assert_eq!(e.kind(), crate::error::ErrorKind::Manifest);
            assert_eq!(e.location().map(|l| l.line), Some(3));
        }
    }
}
