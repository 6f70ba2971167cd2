//! `membrane call`: one exported function, arguments and results as WAVE values.

use std::path::PathBuf;
use std::process::ExitCode;

use crate::config::config_for;
use crate::membrane::{self, Manifest, Runtime};
use crate::output::out;
use crate::{progress, telemetry};

/// Call one exported function; arguments and results are WAVE values.
#[derive(clap::Args)]
pub struct Args {
    /// The app's manifest, or a directory holding its membrane.toml.
    manifest: PathBuf,
    /// The module to call.
    module: String,
    /// The export: ns:pkg/iface#func, ns:pkg/iface@1.0.0#func, or a root-level name.
    export: String,
    /// One WAVE value per parameter, e.g. '"text"', 42, '{x: 1, y: 2}', 'some(3)'.
    #[arg(allow_hyphen_values = true)]
    args: Vec<String>,
}

/// Runs `membrane call`.
pub async fn run(a: Args) -> anyhow::Result<ExitCode> {
    let Args {
        manifest,
        module,
        export,
        args,
    } = a;
    let m = Manifest::from_file(&manifest)?;
    let _exporting = telemetry::start(&m.app)?;
    let app = progress::load(&Runtime::new(config_for(&m.app))?, m.app).await?;
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
