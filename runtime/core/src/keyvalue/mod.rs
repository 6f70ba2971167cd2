//! Module state that belongs to the app: key-value buckets (`[app.keyvalue]`), granted to
//! modules and reached through `wasi:keyvalue`.
//!
//! This file checks the declaration; the stores live behind one trait ([`backend`]):
//! [`embedded`] (one redb file, the default) here, and NATS JetStream in the `remote`
//! placement's crate, which opens it as the app attaches its NATS connection.

pub mod backend;
pub mod embedded;

use std::sync::Arc;

use crate::error::{Error, Problems};
use crate::spec::{AppSpec, KeyValueSpec, KvBackend, Placement};

/// The app's open store, kept with the app (its extensions) for as long as the app lives:
/// the embedded store's file stays locked by this process until then. Upgrades check
/// modules against the buckets it was opened with (changing `[app.keyvalue]` takes a
/// restart).
pub struct Store {
    /// The store.
    pub backend: Arc<dyn backend::Backend>,
    /// `[app.keyvalue]` as the store was opened.
    pub spec: KeyValueSpec,
    /// `[app] name` and `[app] nats` at load, which a NATS store was opened with (the
    /// upgrade gate checks the declaration with them).
    pub app: (Option<String>, Option<crate::spec::NatsSpec>),
}

impl Store {
    /// The store `backend`, opened for app `spec`.
    pub fn new(backend: Arc<dyn backend::Backend>, spec: &AppSpec) -> Store {
        Store {
            backend,
            spec: spec.keyvalue.clone(),
            app: (spec.name.clone(), spec.nats.clone()),
        }
    }
}

/// One bucket as `/status` and the metrics show it.
#[derive(Debug, Clone)]
pub struct BucketStatus {
    /// The bucket's name.
    pub name: String,
    /// Its limits, as declared.
    pub spec: crate::spec::BucketSpec,
    /// What it holds now, or why the store could not say.
    pub usage: std::result::Result<backend::Usage, backend::KvError>,
}

impl Store {
    /// Each bucket's limits and use, asked of the store now.
    pub async fn status(&self) -> Vec<BucketStatus> {
        let mut out = Vec::with_capacity(self.spec.buckets.len());
        for (name, spec) in &self.spec.buckets {
            out.push(BucketStatus {
                name: name.clone(),
                spec: spec.clone(),
                usage: self.backend.usage(name).await,
            });
        }
        out
    }
}

/// Opens the store `spec` declares, if it declares buckets this process keeps.
pub fn open(spec: &AppSpec) -> crate::error::Result<Option<Store>> {
    let kv = &spec.keyvalue;
    if kv.buckets.is_empty() {
        return Ok(None);
    }
    match (kv.backend, &kv.path) {
        (KvBackend::Embedded, Some(path)) => Ok(Some(Store::new(
            Arc::new(embedded::Embedded::open(path, &kv.buckets)?),
            spec,
        ))),
        // The NATS store comes with the app's NATS connection (the remote placement's
        // `attach`), before this is asked.
        _ => Ok(None),
    }
}

/// Every problem of `[app.keyvalue]` and of the modules' `grants.keyvalue`.
pub fn check(spec: &AppSpec, problems: &mut Problems) {
    let kv = &spec.keyvalue;
    for (name, bucket) in &kv.buckets {
        let key = format!("app.keyvalue.buckets.{name}");
        if let Err(msg) = KeyValueSpec::check_name(name) {
            problems.push(Error::manifest(format!("{key}: {msg}")).with_key(key.clone()));
        }
        for (what, v) in [
            ("quota", bucket.quota),
            ("keys", bucket.keys),
            ("value", bucket.value),
        ] {
            if v == Some(0) {
                problems.push(
                    Error::manifest(format!(
                        "{key}.{what} is 0: leave it out for no bound, or give a bound above 0"
                    ))
                    .with_key(format!("{key}.{what}")),
                );
            }
        }
    }
    match kv.backend {
        KvBackend::Embedded => {
            if !kv.buckets.is_empty() && kv.path.is_none() {
                problems.push(
                    Error::manifest(
                        "app.keyvalue: the embedded backend keeps the buckets in one file: set \
                         [app.keyvalue] path = \"state.redb\" (relative to the manifest)",
                    )
                    .with_key("app.keyvalue.path"),
                );
            }
            if kv.replicas.is_some() {
                problems.push(
                    Error::manifest(
                        "app.keyvalue.replicas is for backend = \"nats\"; the embedded store has one copy",
                    )
                    .with_key("app.keyvalue.replicas"),
                );
            }
        }
        KvBackend::Nats => {
            if spec.name.is_none() && !kv.buckets.is_empty() {
                problems.push(
                    Error::manifest(
                        "app.keyvalue: backend = \"nats\" names each bucket's stream after the app: \
                         set [app] name = \"...\" (ASCII letters, digits, '-' and '_')",
                    )
                    .with_key("app.name"),
                );
            }
            if spec.nats.is_none() {
                problems.push(
                    Error::manifest(
                        "app.keyvalue: backend = \"nats\" keeps the buckets in NATS JetStream: \
                         set [app] nats = \"nats://host:4222\"",
                    )
                    .with_key("app.keyvalue.backend"),
                );
            }
            if let Some(r) = kv.replicas
                && ![1, 3, 5].contains(&r)
            {
                problems.push(
                    Error::manifest(format!(
                        "app.keyvalue.replicas is {r}: JetStream keeps 1, 3 or 5 copies"
                    ))
                    .with_key("app.keyvalue.replicas"),
                );
            }
        }
    }
    for (module, m) in &spec.modules {
        for bucket in m.grants.keyvalue.keys() {
            if !kv.buckets.contains_key(bucket) {
                let declared: Vec<&str> = kv.buckets.keys().map(String::as_str).collect();
                problems.push(
                    Error::manifest(format!(
                        "module `{module}`: grants.keyvalue: {bucket:?} is not a bucket of the app; declare it under [app.keyvalue.buckets] (declared: {})",
                        if declared.is_empty() {
                            "none".to_string()
                        } else {
                            declared.join(", ")
                        }
                    ))
                    .with_key(format!("modules.{module}.grants.keyvalue.{bucket}")),
                );
            }
        }
        if m.placement == Placement::Remote
            && !m.grants.keyvalue.is_empty()
            && kv.backend == KvBackend::Embedded
        {
            problems.push(
                Error::manifest(format!(
                    "module `{module}` is remote and granted buckets, but the embedded store is on \
                     one machine: every host would keep its own data; set [app.keyvalue] backend = \"nats\""
                ))
                .with_key(format!("modules.{module}.grants.keyvalue")),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::{BucketAccess, BucketSpec, ModuleSpec, NatsSpec};

    fn keys(spec: &AppSpec) -> Vec<String> {
        let mut problems = Problems::default();
        check(spec, &mut problems);
        problems
            .iter_mut()
            .map(|p| p.key().unwrap_or("?").to_string())
            .collect()
    }

    fn module() -> ModuleSpec {
        ModuleSpec::from_file("m.wasm")
    }

    #[test]
    fn a_sound_declaration_passes() {
        let spec = AppSpec::new()
            .keyvalue(
                KeyValueSpec::embedded("state.redb")
                    .bucket("counters", BucketSpec::new().quota(1 << 20)),
            )
            .module("m", module().bucket("counters", BucketAccess::ReadWrite));
        assert!(keys(&spec).is_empty());
    }

    #[test]
    fn each_problem_names_its_key() {
        let spec = AppSpec::new()
            .keyvalue(
                KeyValueSpec::default()
                    .bucket("bad_name", BucketSpec::new())
                    .bucket("ok", BucketSpec::new().keys(0)),
            )
            .module("m", module().bucket("absent", BucketAccess::ReadOnly))
            .module(
                "r",
                module()
                    .placement(Placement::Remote)
                    .bucket("ok", BucketAccess::ReadOnly),
            );
        assert_eq!(
            keys(&spec),
            [
                "app.keyvalue.buckets.bad_name",
                "app.keyvalue.buckets.ok.keys",
                "app.keyvalue.path",
                "modules.m.grants.keyvalue.absent",
                "modules.r.grants.keyvalue",
            ]
        );
    }

    #[test]
    fn the_nats_backend_is_checked_for_what_it_needs() {
        let mut kv = KeyValueSpec::nats().bucket("x", BucketSpec::new());
        kv.replicas = Some(2);
        let spec = AppSpec::new().keyvalue(kv.clone()).module("m", module());
        // No [app] name (the streams' prefix); no [app] nats; replicas not 1, 3 or 5.
        assert_eq!(
            keys(&spec),
            ["app.name", "app.keyvalue.backend", "app.keyvalue.replicas"]
        );
        kv.replicas = Some(3);
        let spec = AppSpec::new()
            .name("notes")
            .keyvalue(kv)
            .nats(NatsSpec::new(["nats://127.0.0.1:4222"]))
            .module(
                "r",
                module()
                    .placement(Placement::Remote)
                    .bucket("x", BucketAccess::ReadOnly)
                    .bucket("y", BucketAccess::ReadOnly),
            );
        // Remote modules may hold buckets on NATS: only the undeclared bucket.
        assert_eq!(keys(&spec), ["modules.r.grants.keyvalue.y"]);
    }
}
