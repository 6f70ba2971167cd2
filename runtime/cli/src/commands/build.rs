//! `membrane build`: each module's `build` command.

use std::path::PathBuf;
use std::process::ExitCode;

use crate::build;
use crate::membrane::Manifest;

/// Run each module's `build` command, from the manifest's directory.
#[derive(clap::Args)]
pub struct Args {
    /// The app's manifest, or a directory holding its membrane.toml.
    #[arg(default_value = "membrane.toml")]
    manifest: PathBuf,
}

/// Runs `membrane build`.
pub async fn run(a: Args) -> anyhow::Result<ExitCode> {
    let Args { manifest } = a;
    build::build_all(&Manifest::from_file(&manifest)?, false)?;
    Ok(ExitCode::SUCCESS)
}
