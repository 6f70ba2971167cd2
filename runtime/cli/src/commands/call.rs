//! `membrane call`: one exported function, arguments and results as WAVE values.

use std::path::PathBuf;
use std::process::ExitCode;

use crate::config::config_for;
use crate::membrane::{self, Manifest, Runtime};
use crate::output::out;
use crate::{progress, telemetry};

/// Call one exported function; arguments and results are WAVE values.
///
/// With a manifest: `membrane call MANIFEST MODULE EXPORT [ARGS...]`. With a bare component,
/// which is the only module: `membrane call FILE.wasm EXPORT [ARGS...]` (no grants; its
/// output goes to this process's stdout and stderr unless --log-output).
#[derive(clap::Args)]
pub struct Args {
    /// The app's manifest (or a directory holding its membrane.toml), or a component (.wasm).
    manifest: PathBuf,
    /// The module to call (with a component: the export).
    module: String,
    /// The export: ns:pkg/iface#func, ns:pkg/iface@1.0.0#func, or a root-level name.
    export: Option<String>,
    /// One WAVE value per parameter, e.g. '"text"', 42, '{x: 1, y: 2}', 'some(3)'.
    #[arg(allow_hyphen_values = true)]
    args: Vec<String>,
    /// With a bare .wasm: write the guest's stdout and stderr to the log (target
    /// membrane::guest) instead of this process's own.
    #[arg(long)]
    log_output: bool,
}

/// Runs `membrane call`.
pub async fn run(a: Args) -> anyhow::Result<ExitCode> {
    let Args {
        manifest,
        module,
        export,
        mut args,
        log_output,
    } = a;
    let (spec, module, export) = if manifest.extension().is_some_and(|e| e == "wasm") {
        // The second word is the export, the rest are its arguments.
        if let Some(first) = export {
            args.insert(0, first);
        }
        let app = membrane::AppSpec::new().module(
            "main",
            super::run::bare_output(membrane::ModuleSpec::from_file(&manifest), log_output),
        );
        (app, "main".to_string(), module)
    } else {
        if log_output {
            anyhow::bail!(
                "--log-output applies to a bare .wasm; with a manifest, route output with \
                 [modules.NAME.grants] stdout and stderr"
            );
        }
        let Some(export) = export else {
            anyhow::bail!(
                "name the export to call: membrane call {} {module} <export> [args...]",
                manifest.display()
            );
        };
        (Manifest::from_file(&manifest)?.app, module, export)
    };
    let _exporting = telemetry::start(&spec)?;
    let app = progress::load(&Runtime::new(config_for(&spec))?, spec).await?;
    let func = app.function(&module, &export)?;
    let values = func.parse_args(&args)?;
    let results = app.call(&module, &export, &values).await?;
    let mut text = String::new();
    for r in &results {
        text.push_str(&membrane::to_wave(r)?);
        text.push('\n');
    }
    out(&text)?;
    Ok(ExitCode::SUCCESS)
}
