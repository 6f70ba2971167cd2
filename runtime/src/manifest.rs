//! `membrane.toml`: strict parsing into an [`AppSpec`].
//!
//! Unknown keys are errors (they are usually typos of a grant, and a typo in a security
//! policy must not pass silently). Every error names the file, the line and the key.
//! Paths are relative to the directory holding the manifest.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use toml::Spanned;

use crate::error::{Error, Problems, Result};
use crate::spec::{
    AppSpec, ComponentSource, DirGrant, DirMode, Grants, Lifecycle, Limits, ModuleSpec,
    OutputRoute, RestartPolicy,
};
use crate::units::{parse_duration, parse_size};

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
    stack: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ModuleSection {
    component: Spanned<String>,
    build: Option<String>,
    #[serde(default)]
    grants: GrantsSection,
    #[serde(default)]
    limits: LimitsSection,
    #[serde(default)]
    links: BTreeMap<String, Spanned<String>>,
    lifecycle: Option<Lifecycle>,
    restart: Option<RestartSection>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RestartSection {
    max: Option<u32>,
    within: Option<Spanned<String>>,
    backoff: Option<Spanned<String>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct GrantsSection {
    #[serde(default)]
    dirs: Vec<Spanned<DirSection>>,
    #[serde(default)]
    env: BTreeMap<String, String>,
    stdout: Option<OutputRoute>,
    stderr: Option<OutputRoute>,
    #[serde(default)]
    network: Vec<Spanned<String>>,
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
}

/// A parsed manifest: the app and where it came from.
#[derive(Debug, Clone)]
pub struct Manifest {
    /// The file it was read from.
    pub path: PathBuf,
    /// The app it declares, with paths already resolved against the manifest's directory.
    pub app: AppSpec,
}

impl Manifest {
    /// Reads and parses a manifest file.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Manifest> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|e| {
            let kind = if e.kind() == std::io::ErrorKind::NotFound {
                crate::ErrorKind::NotFound
            } else {
                crate::ErrorKind::Io
            };
            Error::new(kind, format!("cannot read manifest {}", path.display())).with_source(e)
        })?;
        let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
        let base = if base.as_os_str().is_empty() {
            PathBuf::from(".")
        } else {
            base
        };
        Self::parse(&text, path, &base)
    }

    /// Parses manifest text; `path` is only used in messages, `base` resolves relative paths.
    pub fn parse(text: &str, path: &Path, base: &Path) -> Result<Manifest> {
        let file: ManifestFile = toml::from_str(text).map_err(|e| {
            Error::manifest(format!("{}: {}", path.display(), e.to_string().trim_end()))
        })?;
        let at = |span: std::ops::Range<usize>| {
            format!("{}:{}", path.display(), line_of(text, span.start))
        };
        let mut problems = Problems::default();
        let mut app = AppSpec::new();
        for (name, section) in file.modules {
            let span = section.span();
            let section = section.into_inner();
            if let Err(msg) = validate_module_name(&name) {
                problems.push(Error::manifest(format!(
                    "{}: [modules.{name}]: {msg}",
                    at(span)
                )));
                continue;
            }
            match module_spec(&name, section, base, &at) {
                Ok(spec) => app = app.module(name, spec),
                Err(errs) => errs.into_iter().for_each(|e| problems.push(e)),
            }
        }
        for (name, module) in &app.modules {
            for (import, provider) in &module.links {
                if provider != crate::link::HOST && !app.modules.contains_key(provider) {
                    let known: Vec<&str> = app.modules.keys().map(String::as_str).collect();
                    problems.push(Error::link(format!(
                        "{}: modules.{name}.links: {import:?} = {provider:?} names no module; declared modules: {} (or \"host\")",
                        path.display(),
                        known.join(", ")
                    )));
                }
            }
        }
        match file.app.entry {
            Some(entry) if !app.modules.contains_key(entry.get_ref()) => {
                let known: Vec<&str> = app.modules.keys().map(String::as_str).collect();
                problems.push(Error::manifest(format!(
                    "{}: app.entry = {:?} names no module; declared modules: {}",
                    at(entry.span()),
                    entry.get_ref(),
                    if known.is_empty() {
                        "none".to_string()
                    } else {
                        known.join(", ")
                    }
                )));
            }
            Some(entry) => app = app.entry(entry.into_inner()),
            None => {}
        }
        if let Some(stack) = file.app.stack {
            match parse_size(stack.get_ref()).and_then(|b| {
                if (AppSpec::MIN_STACK..=AppSpec::MAX_STACK).contains(&b) {
                    Ok(b)
                } else {
                    Err(format!("{:?} is outside 64KiB..=1MiB", stack.get_ref()))
                }
            }) {
                Ok(bytes) => app = app.stack(bytes),
                Err(msg) => problems.push(Error::manifest(format!(
                    "{}: app.stack: {msg}",
                    at(stack.span())
                ))),
            }
        }
        if app.modules.is_empty() && problems.is_empty() {
            problems.push(Error::manifest(format!(
                "{}: the manifest declares no modules; add a [modules.NAME] table with a `component` path",
                path.display()
            )));
        }
        problems.into_result()?;
        app.manifest = Some(path.to_path_buf());
        Ok(Manifest {
            path: path.to_path_buf(),
            app,
        })
    }
}

fn module_spec(
    name: &str,
    s: ModuleSection,
    base: &Path,
    at: &dyn Fn(std::ops::Range<usize>) -> String,
) -> std::result::Result<ModuleSpec, Vec<Error>> {
    let mut errors = Vec::new();
    let component = base.join(s.component.get_ref());
    let mut spec = ModuleSpec::from_file(component);
    spec.build = s.build;

    let mut grants = Grants::default();
    for dir in s.grants.dirs {
        let span = dir.span();
        let dir = dir.into_inner();
        if let Err(msg) = crate::capability::fs::validate_guest_path(&dir.guest) {
            errors.push(Error::manifest(format!(
                "{}: modules.{name}.grants.dirs: {msg}",
                at(span.clone())
            )));
        }
        let quota = match dir.quota.as_deref().map(parse_size) {
            None => None,
            Some(Ok(bytes)) => Some(bytes),
            Some(Err(msg)) => {
                errors.push(Error::manifest(format!(
                    "{}: modules.{name}.grants.dirs: quota: {msg}",
                    at(span.clone())
                )));
                None
            }
        };
        grants.dirs.push(DirGrant {
            host: base.join(&dir.host),
            guest: dir.guest,
            mode: dir.mode,
            quota,
            quota_files: dir.quota_files,
        });
    }
    grants.env = s.grants.env;
    grants.stdout = s.grants.stdout.unwrap_or_default();
    grants.stderr = s.grants.stderr.unwrap_or_default();
    for dest in s.grants.network {
        if let Err(msg) = crate::capability::network::parse_destination(dest.get_ref()) {
            errors.push(Error::manifest(format!(
                "{}: modules.{name}.grants.network: {msg}",
                at(dest.span())
            )));
        }
        grants.network.push(dest.into_inner());
    }
    spec.grants = grants;

    let mut limits = Limits::default();
    if let Some(memory) = s.limits.memory {
        match parse_size(memory.get_ref()) {
            Ok(bytes) => limits.memory = bytes,
            Err(msg) => errors.push(Error::manifest(format!(
                "{}: modules.{name}.limits.memory: {msg}",
                at(memory.span())
            ))),
        }
    }
    if let Some(timeout) = s.limits.timeout {
        match parse_duration(timeout.get_ref()) {
            Ok(d) => limits.timeout = d,
            Err(msg) => errors.push(Error::manifest(format!(
                "{}: modules.{name}.limits.timeout: {msg}",
                at(timeout.span())
            ))),
        }
    }
    if let Some(n) = s.limits.instances {
        if *n.get_ref() == 0 {
            errors.push(Error::manifest(format!(
                "{}: modules.{name}.limits.instances must be at least 1",
                at(n.span())
            )));
        }
        limits.instances = *n.get_ref() as usize;
    }
    if let Some(n) = s.limits.files {
        if *n.get_ref() == 0 {
            errors.push(Error::manifest(format!(
                "{}: modules.{name}.limits.files must be at least 1",
                at(n.span())
            )));
        }
        limits.files = *n.get_ref();
    }
    if let Some(q) = s.limits.queue {
        limits.queue = *q.get_ref() as usize;
    }
    if let Some(f) = s.limits.fuel {
        limits.fuel = Some(*f.get_ref());
    }
    for (key, value, slot) in [
        ("hostcall", s.limits.hostcall, &mut limits.hostcall),
        ("output", s.limits.output, &mut limits.output),
    ] {
        if let Some(v) = value {
            match parse_size(v.get_ref()) {
                Ok(bytes) => *slot = bytes,
                Err(msg) => errors.push(Error::manifest(format!(
                    "{}: modules.{name}.limits.{key}: {msg}",
                    at(v.span())
                ))),
            }
        }
    }
    if let Some(r) = s.restart {
        let mut policy = RestartPolicy::default();
        if let Some(max) = r.max {
            policy.max = max;
        }
        for (key, value, slot) in [
            ("within", r.within, &mut policy.within),
            ("backoff", r.backoff, &mut policy.backoff),
        ] {
            if let Some(v) = value {
                match parse_duration(v.get_ref()) {
                    Ok(d) if !d.is_zero() => *slot = d,
                    Ok(_) => errors.push(Error::manifest(format!(
                        "{}: modules.{name}.restart.{key} must be longer than zero",
                        at(v.span())
                    ))),
                    Err(msg) => errors.push(Error::manifest(format!(
                        "{}: modules.{name}.restart.{key}: {msg}",
                        at(v.span())
                    ))),
                }
            }
        }
        spec.restart = policy;
    }
    spec.limits = limits;
    spec.lifecycle = s.lifecycle.unwrap_or_default();
    for (import, provider) in s.links {
        if let Err(msg) = crate::link::validate_link_key(&import) {
            errors.push(Error::manifest(format!(
                "{}: modules.{name}.links: {msg}",
                at(provider.span())
            )));
        }
        spec.links.insert(import, provider.into_inner());
    }
    if let ComponentSource::File(p) = &spec.source
        && p.as_os_str().is_empty()
    {
        errors.push(Error::manifest(format!(
            "{}: modules.{name}.component is empty: give the path of a .wasm component",
            at(s.component.span())
        )));
    }
    if errors.is_empty() {
        Ok(spec)
    } else {
        Err(errors)
    }
}

/// Module names appear in logs, errors and link targets: keep them simple.
pub(crate) fn validate_module_name(name: &str) -> std::result::Result<(), String> {
    if name == crate::link::HOST {
        return Err("`host` is reserved for interfaces the embedding application provides".into());
    }
    let ok = !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        && name.chars().next().is_some_and(|c| c.is_ascii_alphabetic());
    if ok {
        Ok(())
    } else {
        Err(format!(
            "module name {name:?} is not valid: use letters, digits, '-' and '_', starting with a letter"
        ))
    }
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
dirs = [{ host = "data", guest = "/data", mode = "rw" }, { host = "/etc/x", guest = "/x" }]
env = { LOG_LEVEL = "info" }
stdout = "inherit"
stderr = "discard"
network = ["127.0.0.1:6379", "example.com:443"]
[modules.api.limits]
memory = "32MiB"
timeout = "250ms"
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
        assert_eq!(api.grants.dirs[1].host, Path::new("/etc/x"));
        assert_eq!(api.grants.dirs[1].mode, DirMode::ReadOnly);
        assert_eq!(api.grants.stdout, OutputRoute::Inherit);
        assert_eq!(api.grants.stderr, OutputRoute::Discard);
        assert_eq!(api.limits.memory, 32 << 20);
        assert_eq!(api.limits.timeout, std::time::Duration::from_millis(250));
        assert_eq!(api.build_command(), Some("make"));
    }

    #[test]
    fn links() {
        let m = parse(
            "[modules.a]\ncomponent = \"a\"\nlinks = { \"acme:kv/store@1.2.0\" = \"b\", \"acme:x/y\" = \"host\" }\n[modules.b]\ncomponent = \"b\"\n",
        )
        .unwrap();
        assert_eq!(m.app.modules["a"].links["acme:kv/store@1.2.0"], "b");
        let e = parse("[modules.a]\ncomponent = \"a\"\nlinks = { \"kv\" = \"b\" }\n[modules.b]\ncomponent = \"b\"\n")
            .unwrap_err();
        assert!(
            e.to_string().contains("membrane.toml:3: modules.a.links"),
            "{e}"
        );
        let e =
            parse("[modules.a]\ncomponent = \"a\"\nlinks = { \"a:b/c@x\" = \"a\" }\n").unwrap_err();
        assert!(e.to_string().contains("not a semantic version"), "{e}");
        let e = parse("[modules.host]\ncomponent = \"a\"\n").unwrap_err();
        assert!(e.to_string().contains("reserved"), "{e}");
    }

    #[test]
    fn unknown_key_names_key_and_line() {
        let e = parse("[modules.a]\ncomponent = \"a.wasm\"\n[modules.a.grants]\nnetwrok = []\n")
            .unwrap_err();
        let msg = e.to_string();
        assert!(msg.contains("line 4"), "{msg}");
        assert!(msg.contains("netwrok"), "{msg}");
        assert_eq!(e.kind(), crate::ErrorKind::Manifest);
    }

    #[test]
    fn bad_values_are_all_reported_with_lines() {
        let e = parse(
            "[modules.a]\ncomponent = \"a.wasm\"\n[modules.a.limits]\nmemory = \"lots\"\ntimeout = \"soon\"\n",
        )
        .unwrap_err();
        let msg = e.to_string();
        assert!(msg.contains("2 problems"), "{msg}");
        assert!(
            msg.contains("membrane.toml:4: modules.a.limits.memory"),
            "{msg}"
        );
        assert!(
            msg.contains("membrane.toml:5: modules.a.limits.timeout"),
            "{msg}"
        );
    }

    #[test]
    fn bad_mode_route_entry_and_name() {
        let e = parse("[modules.a]\ncomponent = \"a\"\ngrants = { dirs = [{ host = \"d\", guest = \"/d\", mode = \"rwx\" }] }\n")
            .unwrap_err();
        assert!(e.to_string().contains("rwx"), "{e}");
        let e =
            parse("[modules.a]\ncomponent = \"a\"\ngrants = { stdout = \"file\" }\n").unwrap_err();
        assert!(e.to_string().contains("file"), "{e}");
        let e = parse("[app]\nentry = \"b\"\n[modules.a]\ncomponent = \"a\"\n").unwrap_err();
        assert!(
            e.to_string()
                .contains("names no module; declared modules: a"),
            "{e}"
        );
        let e = parse("[modules.\"a b\"]\ncomponent = \"a\"\n").unwrap_err();
        assert!(e.to_string().contains("not valid"), "{e}");
        let e = parse("").unwrap_err();
        assert!(e.to_string().contains("declares no modules"), "{e}");
        let e = parse("[modules.a]\ncomponent = \"a\"\ngrants = { network = [\"nope\"] }\n")
            .unwrap_err();
        assert!(
            e.to_string()
                .contains("membrane.toml:3: modules.a.grants.network"),
            "{e}"
        );
    }
}
