//! What an upgrade changes in a module's authority: its grants, its limits and quotas, and
//! its sandbox. A change that gives the module more (a new directory, read-write where it
//! was read-only, a new variable or a new value of one, a new destination or origin, output
//! routed closer to the host's own streams, a higher limit or quota, a weaker sandbox) is
//! *wider*: a reload or upgrade that makes one is refused unless the operator accepted wider
//! grants explicitly ([`UpgradeOptions::accept_wider_grants`]). Narrowing needs no consent.
//! Every accepted change is an event on `membrane::audit`.

use std::collections::BTreeSet;
use std::fmt::Display;

use crate::error::{Error, ErrorKind, Problems, Result};
use crate::spec::{DirGrant, DirMode, ModuleSpec, OutputRoute};

/// How an upgrade or reload may change modules' authority.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct UpgradeOptions {
    wider_grants: bool,
}

impl UpgradeOptions {
    /// The default: any change that widens a grant or raises a limit is refused.
    pub fn new() -> Self {
        Self::default()
    }

    /// Accepts changes that widen grants, raise limits or quotas, or weaken the sandbox.
    /// This gives running modules more authority: each accepted change is logged on
    /// `membrane::audit` with the module, the grant and its old and new value. What
    /// `membrane reload --grants` and `POST /reload?grants=accept` do.
    pub fn accept_wider_grants(mut self) -> Self {
        self.wider_grants = true;
        self
    }

    /// Whether wider grants are accepted.
    pub fn accepts_wider_grants(&self) -> bool {
        self.wider_grants
    }
}

/// One change of a module's authority.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct GrantChange {
    /// The module.
    pub module: String,
    /// What changed: `dir`, `env`, `keyvalue`, `config`, `stdout`, `stderr`, `network`, `http`,
    /// `limit` or `sandbox`.
    pub kind: &'static str,
    /// The manifest key, such as `modules.api.grants.dirs` or `modules.api.limits.memory`.
    pub key: String,
    /// The value before (`None`: not granted). Environment values are never shown (they may
    /// be secrets): a variable shows as its name.
    pub old: Option<String>,
    /// The value after (`None`: no longer granted).
    pub new: Option<String>,
    /// Whether it gives the module more.
    pub wider: bool,
}

impl GrantChange {
    fn describe(&self) -> String {
        let show = |v: &Option<String>| v.clone().unwrap_or_else(|| "none".to_string());
        format!(
            "{} {}: {} -> {}",
            self.kind,
            self.key,
            show(&self.old),
            show(&self.new)
        )
    }
}

/// Every change of authority from `old` to `new` for `module`.
pub fn changes(module: &str, old: &ModuleSpec, new: &ModuleSpec) -> Vec<GrantChange> {
    let mut out = Changes {
        module,
        list: Vec::new(),
    };
    let (g0, g1) = (&old.grants, &new.grants);
    dirs(&mut out, &g0.dirs, &g1.dirs);
    for name in g0.env.keys().chain(g1.env.keys()).collect::<BTreeSet<_>>() {
        let key = format!("grants.env.{name}");
        match (g0.env.get(name), g1.env.get(name)) {
            (Some(a), Some(b)) if a != b => out.push(
                "env",
                key,
                Some(format!("{name} (a value)")),
                Some(format!("{name} (another value)")),
                true,
            ),
            (None, Some(_)) => out.push("env", key, None, Some(name.clone()), true),
            (Some(_), None) => out.push("env", key, Some(name.clone()), None, false),
            _ => {}
        }
    }
    // Buckets: a new one, or read-write where it was read-only, gives more.
    for name in g0
        .keyvalue
        .keys()
        .chain(g1.keyvalue.keys())
        .collect::<BTreeSet<_>>()
    {
        let key = format!("grants.keyvalue.{name}");
        let shown = |a: &crate::spec::BucketAccess| format!("{name} ({a})");
        match (g0.keyvalue.get(name), g1.keyvalue.get(name)) {
            (Some(a), Some(b)) if a != b => {
                out.push("keyvalue", key, Some(shown(a)), Some(shown(b)), b > a)
            }
            (None, Some(b)) => out.push("keyvalue", key, None, Some(shown(b)), true),
            (Some(a), None) => out.push("keyvalue", key, Some(shown(a)), None, false),
            _ => {}
        }
    }
    // A config key's value is shown as its source (a secret never as its contents).
    for name in g0
        .config
        .keys()
        .chain(g1.config.keys())
        .collect::<BTreeSet<_>>()
    {
        let key = format!("grants.config.{name}");
        let shown = |v: &crate::spec::ConfigValue| format!("{name} = {}", v.shown());
        match (g0.config.get(name), g1.config.get(name)) {
            (Some(a), Some(b)) if a != b => {
                out.push("config", key, Some(shown(a)), Some(shown(b)), true)
            }
            (None, Some(b)) => out.push("config", key, None, Some(shown(b)), true),
            (Some(a), None) => out.push("config", key, Some(shown(a)), None, false),
            _ => {}
        }
    }
    for (kind, a, b) in [
        ("stdout", g0.stdout, g1.stdout),
        ("stderr", g0.stderr, g1.stderr),
    ] {
        if a != b {
            let wider = reach(b) > reach(a);
            out.push(
                kind,
                format!("grants.{kind}"),
                Some(a.to_string()),
                Some(b.to_string()),
                wider,
            );
        }
    }
    list(&mut out, "network", &g0.network, &g1.network);
    list(&mut out, "http", &g0.http, &g1.http);
    let (l0, l1) = (&old.limits, &new.limits);
    out.limit("memory", l0.memory, l1.memory, crate::units::format_size);
    out.limit("timeout", l0.timeout, l1.timeout, |d| {
        humantime::format_duration(d).to_string()
    });
    out.limit("instances", l0.instances, l1.instances, |n| n.to_string());
    out.limit("queue", l0.queue, l1.queue, |n| n.to_string());
    out.limit(
        "hostcall",
        l0.hostcall,
        l1.hostcall,
        crate::units::format_size,
    );
    out.limit("output", l0.output, l1.output, crate::units::format_size);
    out.limit("files", l0.files, l1.files, |n| n.to_string());
    out.limit("body", l0.body, l1.body, crate::units::format_size);
    // No fuel is no limit at all.
    let fuel = |f: Option<u64>| f.unwrap_or(u64::MAX);
    out.limit("fuel", fuel(l0.fuel), fuel(l1.fuel), |n| {
        unlimited(n, n.to_string())
    });
    if old.allow_weaker_sandbox != new.allow_weaker_sandbox {
        out.push(
            "sandbox",
            "allow_weaker_sandbox".into(),
            Some(old.allow_weaker_sandbox.to_string()),
            Some(new.allow_weaker_sandbox.to_string()),
            new.allow_weaker_sandbox,
        );
    }
    out.list
}

/// Refuses the wider changes unless `options` accept them, listing each.
pub fn consent(changes: &[GrantChange], options: UpgradeOptions) -> Result<()> {
    if options.wider_grants {
        return Ok(());
    }
    let mut problems = Problems::default();
    for c in changes.iter().filter(|c| c.wider) {
        problems.push(
            Error::new(
                ErrorKind::Denied,
                format!(
                    "module `{}`: the new declaration widens {}; a reload or upgrade that gives a running module more \
                     needs explicit consent: `membrane reload --grants`, POST /reload?grants=accept, or \
                     UpgradeOptions::accept_wider_grants",
                    c.module,
                    c.describe()
                ),
            )
            .with_module(&*c.module)
            .with_key(c.key.clone()),
        );
    }
    problems.into_result()
}

/// Logs each wider change that took effect, on `membrane::audit`.
pub fn audit(changes: &[GrantChange]) {
    for c in changes.iter().filter(|c| c.wider) {
        tracing::warn!(
            target: "membrane::audit",
            module = %c.module,
            grant = c.kind,
            key = %c.key,
            old = %crate::sanitize::escape(c.old.as_deref().unwrap_or("none")),
            new = %crate::sanitize::escape(c.new.as_deref().unwrap_or("none")),
            "wider grant accepted"
        );
    }
}

struct Changes<'a> {
    module: &'a str,
    list: Vec<GrantChange>,
}

impl Changes<'_> {
    fn push(
        &mut self,
        kind: &'static str,
        key: String,
        old: Option<String>,
        new: Option<String>,
        wider: bool,
    ) {
        self.list.push(GrantChange {
            module: self.module.to_string(),
            kind,
            key: format!("modules.{}.{key}", self.module),
            old,
            new,
            wider,
        });
    }

    fn limit<T: PartialOrd + Copy>(&mut self, name: &str, a: T, b: T, show: impl Fn(T) -> String) {
        if a != b {
            self.push(
                "limit",
                format!("limits.{name}"),
                Some(show(a)),
                Some(show(b)),
                b > a,
            );
        }
    }
}

/// How close to the host's own streams output goes.
fn reach(r: OutputRoute) -> u8 {
    match r {
        OutputRoute::Discard => 0,
        OutputRoute::Log => 1,
        OutputRoute::Inherit => 2,
    }
}

fn unlimited(n: u64, text: String) -> String {
    if n == u64::MAX {
        "unlimited".into()
    } else {
        text
    }
}

fn dir_text(d: &DirGrant) -> String {
    let mode = match d.mode {
        DirMode::ReadOnly => "ro",
        DirMode::ReadWrite => "rw",
    };
    let quota = |q: Option<u64>, show: &dyn Fn(u64) -> String| q.map_or("none".to_string(), show);
    format!(
        "{} = host {} ({mode}, quota {}, quota_files {})",
        d.guest,
        d.host.display(),
        quota(d.quota, &crate::units::format_size),
        quota(d.quota_files, &|n| n.to_string())
    )
}

fn dirs(out: &mut Changes<'_>, old: &[DirGrant], new: &[DirGrant]) {
    let key = "grants.dirs".to_string();
    for d in new {
        match old.iter().find(|o| o.guest == d.guest) {
            None => out.push("dir", key.clone(), None, Some(dir_text(d)), true),
            Some(o) if o != d => {
                // No quota is no bound at all.
                let more =
                    |a: Option<u64>, b: Option<u64>| b.unwrap_or(u64::MAX) > a.unwrap_or(u64::MAX);
                let wider = o.host != d.host
                    || (o.mode == DirMode::ReadOnly && d.mode == DirMode::ReadWrite)
                    || more(o.quota, d.quota)
                    || more(o.quota_files, d.quota_files);
                out.push(
                    "dir",
                    key.clone(),
                    Some(dir_text(o)),
                    Some(dir_text(d)),
                    wider,
                );
            }
            Some(_) => {}
        }
    }
    for o in old
        .iter()
        .filter(|o| !new.iter().any(|d| d.guest == o.guest))
    {
        out.push("dir", key.clone(), Some(dir_text(o)), None, false);
    }
}

fn list<T: Display + PartialEq>(out: &mut Changes<'_>, kind: &'static str, old: &[T], new: &[T]) {
    let key = format!("grants.{kind}");
    for n in new.iter().filter(|n| !old.contains(n)) {
        out.push(kind, key.clone(), None, Some(n.to_string()), true);
    }
    for o in old.iter().filter(|o| !new.contains(o)) {
        out.push(kind, key.clone(), Some(o.to_string()), None, false);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn spec() -> ModuleSpec {
        ModuleSpec::from_file("m.wasm")
    }

    #[test]
    fn config_keys_widen_and_narrow_and_a_secret_shows_as_its_source() {
        use crate::spec::ConfigValue;
        let old = spec()
            .config("MODE", ConfigValue::Value("slow".into()))
            .config("GONE", ConfigValue::Value("x".into()));
        let new = spec()
            .config("MODE", ConfigValue::Value("fast".into()))
            .config("TOKEN", ConfigValue::Env("APP_TOKEN".into()));
        let c = changes("m", &old, &new);
        let seen: Vec<_> = c
            .iter()
            .map(|c| (c.key.as_str(), c.wider, c.new.clone()))
            .collect();
        assert_eq!(
            seen,
            [
                ("modules.m.grants.config.GONE", false, None),
                (
                    "modules.m.grants.config.MODE",
                    true,
                    Some("MODE = fast".to_string())
                ),
                (
                    "modules.m.grants.config.TOKEN",
                    true,
                    Some("TOKEN = <secret: the environment variable APP_TOKEN>".to_string())
                ),
            ]
        );
        assert!(c.iter().all(|c| c.kind == "config"));
    }

    #[test]
    fn a_new_bucket_or_write_access_is_wider() {
        use crate::spec::BucketAccess::{ReadOnly, ReadWrite};
        let old = spec()
            .bucket("a", ReadOnly)
            .bucket("b", ReadWrite)
            .bucket("c", ReadOnly);
        let new = spec()
            .bucket("a", ReadWrite)
            .bucket("b", ReadOnly)
            .bucket("d", ReadOnly);
        let c = changes("m", &old, &new);
        let seen: Vec<_> = c.iter().map(|c| (c.key.as_str(), c.wider)).collect();
        assert_eq!(
            seen,
            [
                ("modules.m.grants.keyvalue.a", true),
                ("modules.m.grants.keyvalue.b", false),
                ("modules.m.grants.keyvalue.c", false),
                ("modules.m.grants.keyvalue.d", true),
            ]
        );
        assert_eq!(c[0].new.as_deref(), Some("a (rw)"));
    }

    #[test]
    fn widening_and_narrowing_are_told_apart() {
        let old = spec()
            .dir("data", "/data", DirMode::ReadOnly)
            .env("A", "1")
            .env("B", "2")
            .network("127.0.0.1:6379")
            .memory(64 << 20);
        let new = spec()
            .dir("data", "/data", DirMode::ReadWrite)
            .dir("other", "/other", DirMode::ReadOnly)
            .env("A", "changed")
            .network("127.0.0.1:22")
            .http("http://169.254.169.254")
            .memory(32 << 20)
            .timeout(Duration::from_secs(60));
        let c = changes("m", &old, &new);
        let wider: Vec<_> = c
            .iter()
            .filter(|c| c.wider)
            .map(|c| (c.kind, c.key.as_str()))
            .collect();
        assert_eq!(
            wider,
            [
                ("dir", "modules.m.grants.dirs"),
                ("dir", "modules.m.grants.dirs"),
                ("env", "modules.m.grants.env.A"),
                ("network", "modules.m.grants.network"),
                ("http", "modules.m.grants.http"),
                ("limit", "modules.m.limits.timeout"),
            ]
        );
        let narrower: Vec<_> = c
            .iter()
            .filter(|c| !c.wider)
            .map(|c| c.key.as_str())
            .collect();
        assert_eq!(
            narrower,
            [
                "modules.m.grants.env.B",
                "modules.m.grants.network",
                "modules.m.limits.memory"
            ]
        );
        // No value of a variable is ever shown.
        assert!(c.iter().all(|c| !format!("{c:?}").contains("changed")));
        let e = consent(&c, UpgradeOptions::new()).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Denied);
        assert_eq!(e.problems().len(), 6);
        assert!(consent(&c, UpgradeOptions::new().accept_wider_grants()).is_ok());
        // Narrowing alone needs no consent.
        let fewer = spec().memory(16 << 20).timeout(Duration::from_secs(1));
        let c = changes("m", &new, &fewer);
        assert!(!c.is_empty() && c.iter().all(|c| !c.wider), "{c:?}");
        assert!(consent(&c, UpgradeOptions::new()).is_ok());
    }

    #[test]
    fn quotas_and_fuel_count_none_as_unbounded() {
        let old = spec().fuel(1000);
        assert!(changes("m", &old, &spec())[0].wider);
        assert!(!changes("m", &spec(), &old)[0].wider);
    }
}
