//! The host of examples/plugins: loads one plugin per language (Rust, Python, JavaScript)
//! from examples/plugins/membrane.toml, under the same grants and limits, and calls each
//! through typed handles.
//!
//! ```text
//! cargo run -p membrane -- build examples/plugins
//! cargo run -p membrane --example plugins [-- "some text"]
//! ```
//!
//! `membrane build` runs each plugin's `build` command from the manifest (the first build
//! installs componentize-py and componentize-js in examples/plugins). Nothing here depends
//! on this repository but the `membrane` crate: copy it as the start of your own host.

mod text;

use std::path::PathBuf;
use std::process::ExitCode;

use membrane::{Config, ErrorKind, Runtime};

use text::TextPlugin;

/// The plugins, by module name in the manifest.
const PLUGINS: [&str; 3] = ["rust", "python", "js"];

#[tokio::main]
async fn main() -> ExitCode {
    match run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run() -> Result<(), String> {
    let input = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "plugins in the languages their authors use".into());
    // Compiled plugins are kept in the user's cache, so later runs start at once.
    let mut config = Config::default();
    config.cache_dir = membrane::default_cache_dir();
    let runtime = Runtime::new(config).map_err(|e| e.to_string())?;
    let manifest =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../examples/plugins/membrane.toml");
    let app = runtime
        .load(&manifest)
        .await
        .map_err(|e| format!("cannot load {}: {e}", manifest.display()))?;
    for module in PLUGINS {
        let plugin = TextPlugin::new(&app, module).map_err(|e| e.to_string())?;
        let fail = |e: membrane::Error| format!("module {module}: {e}");
        let (name,) = plugin.name.call(()).await.map_err(fail)?;
        let (out,) = plugin
            .transform
            .call((input.clone(),))
            .await
            .map_err(fail)?;
        let (stats,) = plugin.stats.call((input.clone(),)).await.map_err(fail)?;
        let (granted,) = plugin
            .env
            .call(("PLUGIN_GREETING".into(),))
            .await
            .map_err(fail)?;
        let (home,) = plugin.env.call(("HOME".into(),)).await.map_err(fail)?;
        println!("{module}: {name}");
        println!("  transform: {out}");
        println!(
            "  stats:     {} chars, {} words, {} bytes",
            stats.chars, stats.words, stats.bytes
        );
        println!("  env PLUGIN_GREETING (granted): {granted:?}");
        println!("  env HOME (not granted):        {home:?}");
        match plugin.allocate.call((128,)).await {
            Err(e) if e.kind() == ErrorKind::MemoryLimit => {
                println!("  allocate 128 MiB: refused, over the 64MiB limit")
            }
            Err(e) => println!("  allocate 128 MiB: failed: {e}"),
            Ok((mb,)) => println!("  allocate 128 MiB: unexpectedly allowed ({mb})"),
        }
    }
    Ok(())
}
