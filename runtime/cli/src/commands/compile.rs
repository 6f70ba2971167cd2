//! `membrane compile`: every module into the compiled-code cache.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::bail;

use crate::config::config_for;
use crate::membrane::{Manifest, Runtime};
use crate::output::out;
use crate::progress;

/// Compile every module into the cache, so that later starts skip compilation.
#[derive(clap::Args)]
pub struct Args {
    /// The app's manifest, or a directory holding its membrane.toml.
    #[arg(default_value = "membrane.toml")]
    manifest: PathBuf,
}

/// Runs `membrane compile`.
pub async fn run(a: Args) -> anyhow::Result<ExitCode> {
    let Args { manifest } = a;
    let m = Manifest::from_file(&manifest)?;
    let mut config = config_for(&m.app);
    config.connect_nats = false;
    let Some(dir) = config.cache_dir.clone() else {
        bail!("no cache directory: set MEMBRANE_CACHE_DIR or HOME");
    };
    let n = m.app.modules().len();
    let start = std::time::Instant::now();
    progress::load(&Runtime::new(config)?, m.app).await?;
    out(&format!(
        "compiled {n} module(s) into {} in {:.2?}\n",
        dir.display(),
        start.elapsed()
    ))?;
    Ok(ExitCode::SUCCESS)
}
