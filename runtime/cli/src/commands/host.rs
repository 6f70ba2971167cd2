//! `membrane host`: serve `remote` modules of an app to its other hosts over NATS.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::bail;

use crate::config::{config_for, shutdown_signal};
use crate::membrane::{self, AppSpec, Manifest, Runtime};
use crate::output::say;
use crate::{build, progress, telemetry};

/// Serve `remote` modules of an app to its other hosts over NATS.
///
/// Each module named must be placement = "remote" in the manifest. It runs here under
/// its own grants and limits, as a local module would, and answers the calls sent to
/// its NATS subject (membrane.<app>.<module>) by any process that loaded the same
/// manifest; several hosts of one module share its calls. A caller whose manifest
/// entry of the module (component, grants, limits) differs is refused. Anyone who may
/// publish on the app's subjects can call these modules: restrict that with NATS
/// permissions.
///
/// Stops on SIGTERM or SIGINT: unsubscribes (new calls go to the other hosts), lets
/// the calls in flight finish, and exits with status 0.
#[derive(clap::Args)]
pub struct Args {
    /// The app's manifest, or a directory holding its membrane.toml.
    #[arg(default_value = "membrane.toml")]
    manifest: PathBuf,
    /// The remote modules to serve (comma-separated).
    #[arg(
        long,
        value_name = "MODULE,...",
        value_delimiter = ',',
        required = true
    )]
    modules: Vec<String>,
    /// Connect to these NATS servers instead of [app] nats (repeat, or comma-separate);
    /// the credentials of [app.nats_auth] still apply.
    #[arg(long, value_name = "URL", value_delimiter = ',')]
    nats: Vec<String>,
    /// Run every module's `build` command first.
    #[arg(long)]
    build: bool,
}

/// Runs `membrane host`.
pub async fn run(a: Args) -> anyhow::Result<ExitCode> {
    let Args {
        manifest,
        modules,
        nats,
        build,
    } = a;
    let m = Manifest::from_file(&manifest)?;
    if build {
        build::build_all(&m, true)?;
    }
    let spec = hosting(m.app, &modules, &nats)?;
    let servers = servers_of(&spec);
    let exporting = telemetry::start(&spec)?;
    let app = progress::load(&Runtime::new(config_for(&spec))?, spec).await?;
    let remote = membrane::RemoteHost::start(&app).await?;
    say(&hosting_line(&remote, &servers));
    remote.run(shutdown_signal()?).await;
    // Sends what telemetry has queued.
    drop(exporting);
    Ok(ExitCode::SUCCESS)
}

/// `spec` made to host the `remote` modules `modules` here, connecting to `servers`
/// instead of its `[app] nats` when some are given (its credentials stay).
pub fn hosting(spec: AppSpec, modules: &[String], servers: &[String]) -> anyhow::Result<AppSpec> {
    let modules: Vec<&str> = modules
        .iter()
        .map(|m| m.trim())
        .filter(|m| !m.is_empty())
        .collect();
    if modules.is_empty() {
        bail!("name the remote modules to serve: --modules NAME,...");
    }
    let mut spec = spec.host(modules);
    let servers: Vec<&str> = servers
        .iter()
        .map(|s| s.trim())
        .filter(|s| !s.is_empty())
        .collect();
    if !servers.is_empty() {
        let mut nats = spec.nats_spec().cloned().unwrap_or_default();
        nats.servers = servers.into_iter().map(str::to_string).collect();
        spec = spec.nats(nats);
    }
    Ok(spec)
}

/// What a host says once it serves; `servers` are the NATS servers of its app.
pub fn hosting_line(remote: &membrane::RemoteHost, servers: &str) -> String {
    let modules: Vec<&str> = remote.modules().collect();
    format!(
        "hosting {} of app {} on NATS {servers} (host id {})",
        modules.join(", "),
        remote.app_name(),
        remote.host_id()
    )
}

/// The NATS servers of `spec`, for messages.
pub fn servers_of(spec: &AppSpec) -> String {
    spec.nats_spec()
        .map(|n| n.servers.join(", "))
        .unwrap_or_default()
}
