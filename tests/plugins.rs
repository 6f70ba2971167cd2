//! The plugins of examples/plugins: one WIT interface implemented in Rust, Python
//! (componentize-py) and JavaScript (componentize-js), loaded from the example's manifest
//! under the same grants and limits, and called through typed handles. The Python and
//! JavaScript tools are installed under the target directory on the first run (see
//! `membrane_test_artifacts::plugins`); compiled plugins are kept in a compile cache there.

#[path = "../runtime/membrane/examples/plugins/text.rs"]
mod text;

use membrane::{App, Config, ErrorKind, Runtime};
use membrane_test_artifacts::plugins::{self, Language};

use text::{TextPlugin, TextStats};

/// Why the plugins cannot be built (no tool, no registry): shown as the message alone,
/// without a panic's backtrace, by the test returning it.
struct Unbuildable(String);

impl std::fmt::Debug for Unbuildable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "cannot build the plugins of examples/plugins: {}",
            self.0
        )
    }
}

/// Builds the plugins (or takes them from the cache) and loads the example's manifest.
async fn app() -> Result<App, Unbuildable> {
    plugins::all_components().map_err(Unbuildable)?;
    let mut config = Config::default();
    config.cache_dir = Some(plugins::compile_cache_dir());
    let runtime = Runtime::new(config).expect("runtime");
    Ok(runtime
        .load(plugins::manifest())
        .await
        .unwrap_or_else(|e| panic!("examples/plugins/membrane.toml does not load: {e}")))
}

/// One test for all three languages, so that a cold run compiles each plugin once.
#[tokio::test]
async fn three_languages_one_interface_the_same_limits() -> Result<(), Unbuildable> {
    let app = app().await?;
    let checks = Language::ALL.map(|language| {
        let app = app.clone();
        tokio::spawn(async move { check(&app, language).await })
    });
    for (language, check) in Language::ALL.iter().zip(checks) {
        if let Err(e) = check.await {
            panic!("the {language:?} plugin: {e}");
        }
    }
    Ok(())
}

async fn check(app: &App, language: Language) {
    let module = language.module();
    let p = TextPlugin::new(app, module).unwrap();
    let expected_name = match language {
        Language::Rust => "shout (rust)",
        Language::Python => "shout (python)",
        Language::JavaScript => "shout (javascript)",
    };
    assert_eq!(p.name.call(()).await.unwrap().0, expected_name);

    let input = "  héllo wörld\tfrom ☃ plugins\n";
    assert_eq!(
        p.transform.call((input.into(),)).await.unwrap().0,
        "PLUGINS ☃ FROM WÖRLD HÉLLO",
        "{module}"
    );
    assert_eq!(
        p.stats.call((input.into(),)).await.unwrap().0,
        TextStats {
            chars: 29,
            words: 5,
            bytes: 33,
        },
        "{module}"
    );
    assert_eq!(p.transform.call((String::new(),)).await.unwrap().0, "");

    // Grants: the one granted variable, and nothing of the host's environment.
    assert_eq!(
        p.env.call(("PLUGIN_GREETING".into(),)).await.unwrap().0,
        Some("hello from the manifest".into()),
        "{module}"
    );
    for key in ["HOME", "PATH"] {
        assert_eq!(p.env.call((key.into(),)).await.unwrap().0, None, "{module}");
    }

    // Limits: 64MiB of memory and 1s per call, for every language.
    assert_eq!(p.allocate.call((8,)).await.unwrap().0, 8, "{module}");
    let err = p.allocate.call((128,)).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::MemoryLimit, "{module}: {err}");
    let started = std::time::Instant::now();
    let err = p.spin.call(()).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Timeout, "{module}: {err}");
    assert!(started.elapsed().as_secs_f64() < 5.0, "{module}");
    // A failed call costs that instance only: the module still answers.
    assert_eq!(p.name.call(()).await.unwrap().0, expected_name);
}
