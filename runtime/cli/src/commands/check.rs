//! `membrane check`: load and check an app without running it.

use std::path::PathBuf;
use std::process::ExitCode;

use crate::config::config_for;
use crate::membrane::{self, Manifest, Runtime};
use crate::output::{out, report, say};
use crate::progress;

/// Load and check an app without running it; lists every problem.
#[derive(clap::Args)]
pub struct Args {
    /// The app's manifest, or a directory holding its membrane.toml.
    #[arg(default_value = "membrane.toml")]
    manifest: PathBuf,
}

/// Runs `membrane check`.
pub async fn run(a: Args) -> anyhow::Result<ExitCode> {
    let Args { manifest } = a;
    let result = async {
        let m = Manifest::from_file(&manifest)?;
        let n = m.app.modules().len();
        let app = progress::load(&Runtime::new(config_for(&m.app))?, m.app).await?;
        for w in app.warnings() {
            say(&format!("warning: {w}"));
        }
        Ok::<_, membrane::Error>((n, app.links().len()))
    }
    .await;
    match result {
        Ok((n, links)) => {
            out(&format!(
                "ok: {} loads; {n} module(s) and {links} link(s) checked\n",
                manifest.display()
            ))?;
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            report(&anyhow::Error::new(e));
            Ok(ExitCode::FAILURE)
        }
    }
}
