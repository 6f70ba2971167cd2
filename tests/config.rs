//! `grants.config`: what `wasi:config/store` answers, through both versions guests use
//! (rc.1 of wasmtime and wasmCloud, Spin's draft), from values and from secrets read at load.

use membrane::{AppSpec, ConfigValue, ErrorKind, ModuleSpec, Placement, Val};

use crate::common::*;

const PROBE: &str = "membrane-test:config/probe";

fn config_probe() -> ModuleSpec {
    ModuleSpec::from_file(guests::CONFIG_PROBE)
}

/// `get` through one version: the value, `None` for no key.
async fn get(app: &membrane::App, func: &str, key: &str) -> Option<String> {
    let out = app
        .call("m", &format!("{PROBE}#{func}"), &[Val::String(key.into())])
        .await
        .unwrap();
    match &out[..] {
        [Val::Result(Ok(Some(v)))] => match &**v {
            Val::Option(None) => None,
            Val::Option(Some(s)) => match &**s {
                Val::String(s) => Some(s.clone()),
                other => panic!("not a string: {other:?}"),
            },
            other => panic!("not an option: {other:?}"),
        },
        other => panic!("the store failed: {other:?}"),
    }
}

/// `get-all` through one version, as the guest sorted it.
async fn get_all(app: &membrane::App, func: &str) -> Vec<(String, String)> {
    let out = app
        .call("m", &format!("{PROBE}#{func}"), &[])
        .await
        .unwrap();
    let [Val::Result(Ok(Some(list)))] = &out[..] else {
        panic!("the store failed: {out:?}");
    };
    let Val::List(items) = &**list else {
        panic!("not a list: {list:?}");
    };
    items
        .iter()
        .map(|t| match t {
            Val::Tuple(kv) => match &kv[..] {
                [Val::String(k), Val::String(v)] => (k.clone(), v.clone()),
                other => panic!("not a pair of strings: {other:?}"),
            },
            other => panic!("not a tuple: {other:?}"),
        })
        .collect()
}

fn pairs(p: &[(&str, &str)]) -> Vec<(String, String)> {
    p.iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[tokio::test]
async fn exactly_the_granted_keys_through_both_versions() {
    let app = app_of(
        config_probe()
            .config("LOG_LEVEL", ConfigValue::Value("info".into()))
            .config("greeting", ConfigValue::Value("héllo wörld".into())),
    )
    .await;
    for (get_f, all_f) in [("get", "get-all"), ("get-draft", "get-all-draft")] {
        assert_eq!(get(&app, get_f, "LOG_LEVEL").await.as_deref(), Some("info"));
        assert_eq!(
            get(&app, get_f, "greeting").await.as_deref(),
            Some("héllo wörld")
        );
        // Not granted: no value, not an error.
        assert_eq!(get(&app, get_f, "HOME").await, None);
        assert_eq!(get(&app, get_f, "log_level").await, None);
        assert_eq!(
            get_all(&app, all_f).await,
            pairs(&[("LOG_LEVEL", "info"), ("greeting", "héllo wörld")])
        );
    }
}

#[tokio::test]
async fn a_module_without_the_grant_gets_no_key() {
    // The host's own environment is not a source.
    let app = app_of(config_probe()).await;
    assert_eq!(get(&app, "get", "PATH").await, None);
    assert_eq!(get(&app, "get-draft", "PATH").await, None);
    assert!(get_all(&app, "get-all").await.is_empty());
    assert!(get_all(&app, "get-all-draft").await.is_empty());
}

#[tokio::test]
async fn secrets_are_read_from_the_environment_and_files_at_load() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("db-password");
    std::fs::write(&file, "  s3cret-from-file\n").unwrap();
    // SAFETY (set_var): the variable's name is this test's own; no other test reads it.
    unsafe { std::env::set_var("MEMBRANE_TEST_CONFIG_API_KEY", "s3cret-from-env") };
    let app = app_of(
        config_probe()
            .config(
                "API_KEY",
                ConfigValue::Env("MEMBRANE_TEST_CONFIG_API_KEY".into()),
            )
            .config("DB_PASSWORD", ConfigValue::File(file.clone())),
    )
    .await;
    // Read once, at load: a later change is not seen.
    unsafe { std::env::set_var("MEMBRANE_TEST_CONFIG_API_KEY", "changed") };
    std::fs::write(&file, "changed").unwrap();
    assert_eq!(
        get(&app, "get", "API_KEY").await.as_deref(),
        Some("s3cret-from-env")
    );
    assert_eq!(
        get(&app, "get-draft", "DB_PASSWORD").await.as_deref(),
        Some("s3cret-from-file")
    );
}

#[tokio::test]
async fn a_missing_or_empty_secret_is_a_load_error_naming_its_key() {
    let tmp = tempfile::tempdir().unwrap();
    let empty = tmp.path().join("empty");
    std::fs::write(&empty, " \n").unwrap();
    let cases = [
        (
            ConfigValue::Env("MEMBRANE_TEST_CONFIG_NEVER_SET".into()),
            "MEMBRANE_TEST_CONFIG_NEVER_SET is not set",
        ),
        (ConfigValue::File(tmp.path().join("absent")), "cannot read"),
        (ConfigValue::File(empty), "is empty"),
    ];
    for (value, why) in cases {
        let e = runtime()
            .load_spec(AppSpec::new().module("m", config_probe().config("SECRET", value)))
            .await
            .err()
            .expect("refused");
        assert_eq!(e.kind(), ErrorKind::Manifest, "{e}");
        let text = membrane::chain(&e);
        assert!(text.contains(why), "{text}");
        let keys: Vec<Option<&str>> = std::iter::once(&e)
            .chain(e.problems())
            .map(|p| p.key())
            .collect();
        assert!(
            keys.contains(&Some("modules.m.grants.config.SECRET")),
            "{keys:?}"
        );
    }
}

#[tokio::test]
async fn bad_keys_are_refused_at_load() {
    for key in ["", "a\0b", &"k".repeat(257)] {
        let e = runtime()
            .load_spec(AppSpec::new().module(
                "m",
                config_probe().config(key, ConfigValue::Value("v".into())),
            ))
            .await
            .err()
            .expect("refused");
        assert_eq!(e.kind(), ErrorKind::Manifest, "{e}");
        assert!(membrane::chain(&e).contains("not a valid key"), "{e}");
    }
}

#[tokio::test]
async fn a_process_module_gets_its_secrets_from_the_host() {
    // The worker's environment is cleared and its files closed by Landlock: the host reads
    // the secret and hands the value over.
    unsafe { std::env::set_var("MEMBRANE_TEST_CONFIG_WORKER_KEY", "for-the-worker") };
    let app = worker_runtime()
        .load_spec(
            AppSpec::new().module(
                "m",
                config_probe()
                    .placement(Placement::Process)
                    .config(
                        "KEY",
                        ConfigValue::Env("MEMBRANE_TEST_CONFIG_WORKER_KEY".into()),
                    )
                    .config("PLAIN", ConfigValue::Value("p".into())),
            ),
        )
        .await
        .unwrap();
    assert_eq!(
        get(&app, "get", "KEY").await.as_deref(),
        Some("for-the-worker")
    );
    assert_eq!(
        get_all(&app, "get-all-draft").await,
        pairs(&[("KEY", "for-the-worker"), ("PLAIN", "p")])
    );
}

#[test]
fn the_manifest_takes_values_and_secrets_and_never_shows_a_secret() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("token"), "file-secret-value").unwrap();
    let m = write_manifest(
        tmp.path(),
        &format!(
            "[modules.m]\ncomponent = {:?}\n\
             grants.config = {{ MODE = \"fast\", TOKEN = {{ file = \"token\" }}, KEY = {{ env = \"MEMBRANE_TEST_CONFIG_CLI\" }} }}\n",
            guests::CONFIG_PROBE
        ),
    );
    let run = |args: &[&str]| {
        let mut cmd = membrane_command();
        cmd.env("MEMBRANE_TEST_CONFIG_CLI", "env-secret-value")
            .env("MEMBRANE_LOG", "debug")
            .args(args);
        cmd.output().unwrap()
    };
    let o = run(&[
        "call",
        m.to_str().unwrap(),
        "m",
        &format!("{PROBE}#get-all"),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(
        out.contains("file-secret-value") && out.contains("env-secret-value"),
        "{out}"
    );
    assert!(out.contains("fast"), "{out}");
    // The log (debug level) and `membrane graph` never carry a secret's value.
    let o_graph = run(&["graph", m.to_str().unwrap()]);
    for (what, text) in [
        ("log", stderr(&o)),
        ("graph", stdout(&o_graph) + &stderr(&o_graph)),
    ] {
        assert!(!text.contains("file-secret-value"), "{what}: {text}");
        assert!(!text.contains("env-secret-value"), "{what}: {text}");
    }
    // Both sources at once, or neither, is a manifest error with its key.
    let bad = write_manifest(
        tmp.path(),
        &format!(
            "[modules.m]\ncomponent = {:?}\ngrants.config = {{ X = {{ env = \"A\", file = \"b\" }} }}\n",
            guests::CONFIG_PROBE
        ),
    );
    let o = run(&["check", bad.to_str().unwrap()]);
    assert!(!o.status.success());
    let err = stderr(&o);
    assert!(err.contains("grants.config.X"), "{err}");
    assert!(err.contains("one of the two"), "{err}");
}
