//! `[app.keyvalue]` and `[app.keyvalue.buckets]`: where an app's buckets live and each
//! bucket's limits.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;
use toml::Spanned;

use super::Lines;
use crate::spec::{BucketSpec, KeyValueSpec, KvBackend};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct KeyValueSection {
    backend: Option<Spanned<KvBackend>>,
    path: Option<Spanned<String>>,
    replicas: Option<Spanned<u32>>,
    #[serde(default)]
    buckets: BTreeMap<String, Spanned<BucketSection>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct BucketSection {
    quota: Option<Spanned<String>>,
    keys: Option<Spanned<u64>>,
    value: Option<Spanned<String>>,
}

/// The app's key-value settings; problems go to `lines`.
pub(super) fn keyvalue_spec(
    section: KeyValueSection,
    base: &Path,
    lines: &mut Lines<'_>,
) -> KeyValueSpec {
    let mut spec = KeyValueSpec::default();
    if let Some(b) = section.backend {
        lines.note("app.keyvalue.backend", &b.span());
        spec.backend = b.into_inner();
    }
    if let Some(p) = section.path {
        lines.note("app.keyvalue.path", &p.span());
        spec.path = Some(base.join(p.into_inner()));
    }
    if let Some(r) = section.replicas {
        lines.note("app.keyvalue.replicas", &r.span());
        spec.replicas = Some(r.into_inner());
    }
    for (name, b) in section.buckets {
        let key = format!("app.keyvalue.buckets.{name}");
        lines.note(key.clone(), &b.span());
        let b = b.into_inner();
        let mut bucket = BucketSpec::new();
        bucket.quota = b
            .quota
            .as_ref()
            .and_then(|q| lines.size(format!("{key}.quota"), q));
        if let Some(k) = b.keys {
            lines.note(format!("{key}.keys"), &k.span());
            bucket.keys = Some(k.into_inner());
        }
        bucket.value = b
            .value
            .as_ref()
            .and_then(|v| lines.size(format!("{key}.value"), v));
        spec.buckets.insert(name, bucket);
    }
    spec
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use crate::manifest::Manifest;
    use crate::spec::{BucketAccess, BucketSpec, ConfigValue, KvBackend};

    fn parse(text: &str) -> crate::Result<Manifest> {
        Manifest::parse(text, Path::new("/app/membrane.toml"), Path::new("/app"))
    }

    #[test]
    fn buckets_grants_and_config() {
        let m = parse(
            "[app.keyvalue]\npath = \"state/notes.redb\"\n\
             [app.keyvalue.buckets]\ncounters = { quota = \"64MiB\", keys = 100_000, value = \"1MiB\" }\n\
             sessions = {}\n\
             [modules.api]\ncomponent = \"a.wasm\"\n\
             [modules.api.grants]\nkeyvalue = { counters = \"rw\", sessions = \"ro\" }\n\
             config = { MODE = \"fast\", KEY = { env = \"API_KEY\" }, DB = { file = \"secrets/db\" } }\n",
        )
        .unwrap();
        let kv = &m.app.keyvalue;
        assert_eq!(kv.backend, KvBackend::Embedded);
        assert_eq!(kv.path.as_deref(), Some(Path::new("/app/state/notes.redb")));
        assert_eq!(
            kv.buckets["counters"],
            BucketSpec::new()
                .quota(64 << 20)
                .keys(100_000)
                .value(1 << 20)
        );
        assert_eq!(kv.buckets["sessions"], BucketSpec::new());
        let g = &m.app.modules["api"].grants;
        assert_eq!(g.keyvalue["counters"], BucketAccess::ReadWrite);
        assert_eq!(g.keyvalue["sessions"], BucketAccess::ReadOnly);
        assert_eq!(g.config["MODE"], ConfigValue::Value("fast".into()));
        assert_eq!(g.config["KEY"], ConfigValue::Env("API_KEY".into()));
        assert_eq!(g.config["DB"], ConfigValue::File("/app/secrets/db".into()));
    }

    #[test]
    fn bad_forms_name_their_keys() {
        for (text, key) in [
            (
                "[app.keyvalue.buckets]\nc = { quota = \"lots\" }\n",
                "app.keyvalue.buckets.c.quota",
            ),
            (
                "[app.keyvalue.buckets]\nc = { value = \"-1\" }\n",
                "app.keyvalue.buckets.c.value",
            ),
        ] {
            let e = parse(&format!("{text}[modules.a]\ncomponent = \"a\"\n")).unwrap_err();
            let keys: Vec<_> = e.problems().iter().filter_map(|p| p.key()).collect();
            assert!(keys.contains(&key), "{keys:?}: {e}");
        }
        // A mode other than ro/rw, an unknown backend, an unknown key: refused with the line.
        for text in [
            "[app.keyvalue.buckets]\nc = {}\n[modules.a]\ncomponent = \"a\"\ngrants = { keyvalue = { c = \"rwx\" } }\n",
            "[app.keyvalue]\nbackend = \"redis\"\n[modules.a]\ncomponent = \"a\"\n",
            "[app.keyvalue]\nbuckets = { c = { history = 3 } }\n[modules.a]\ncomponent = \"a\"\n",
        ] {
            let e = parse(text).unwrap_err();
            assert!(e.location().is_some(), "{e}");
        }
    }
}
