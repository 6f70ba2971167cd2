//! `membrane serve`: the app over HTTP, with its admin listener, reloads on SIGHUP or
//! `--watch`, and optionally hosting `remote` modules over NATS.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use super::host::{hosting, hosting_line, servers_of};
use crate::config::{config_for, shutdown_signal};
use crate::membrane::{self, Manifest, Runtime};
use crate::output::say;
use crate::{build, dev, progress, reload, telemetry, token};

/// Serve the app over HTTP: routes from [app.http], admin endpoints from [app.admin].
///
/// Stops on SIGTERM or SIGINT: new connections are refused, requests in flight get
/// [app.http] drain to finish, and the exit status is 0. Reloads the manifest on SIGHUP
/// (as `membrane reload` does): changed modules are upgraded live after the load's
/// checks; a refused reload changes nothing and logs every problem.
#[derive(clap::Args)]
pub struct Args {
    /// The app's manifest, or a directory holding its membrane.toml.
    #[arg(default_value = "membrane.toml")]
    manifest: PathBuf,
    /// Listen on this address instead of [app.http] listen (IP:PORT).
    #[arg(long, value_name = "IP:PORT")]
    listen: Option<String>,
    /// Serve /metrics and /status on this address instead of [app.admin] listen.
    #[arg(long, value_name = "IP:PORT")]
    admin: Option<String>,
    /// Run every module's `build` command first.
    #[arg(long)]
    build: bool,
    /// Reload when the manifest or a module's component file changes (after it has
    /// settled), as SIGHUP does; and run a module's `build` command when its sources
    /// change (its `sources`, else inferred), so that the new component is reloaded.
    #[arg(long)]
    watch: bool,
    /// Also serve these `remote` modules to the app's other hosts over NATS, as
    /// `membrane host --modules` does (comma-separated).
    #[arg(long = "host", value_name = "MODULE,...", value_delimiter = ',')]
    host: Vec<String>,
}

/// Runs `membrane serve`.
pub async fn run(a: Args) -> anyhow::Result<ExitCode> {
    let Args {
        manifest,
        listen,
        admin,
        build,
        watch,
        host,
    } = a;
    let m = Manifest::from_file(&manifest)?;
    if build {
        build::build_all(&m, true)?;
    }
    let spec = if host.is_empty() {
        m.app
    } else {
        hosting(m.app, &host, &[])?
    };
    let servers = servers_of(&spec);
    let exporting = telemetry::start(&spec)?;
    let app = progress::load(&Runtime::new(config_for(&spec))?, spec).await?;
    let remote = if host.is_empty() {
        None
    } else {
        let remote = membrane::RemoteHost::start(&app).await?;
        say(&hosting_line(&remote, &servers));
        Some(remote)
    };
    let mut options = membrane::serve::ServeOptions::new();
    options.listen = listen;
    options.admin = admin;
    let server = membrane::serve::Server::bind(&app, options).await?;
    let hup = reload::sighup()?;
    // A made-up admin token goes to a private file, for `membrane reload`, before
    // the server says it is up (a reload may follow that line at once).
    let token_file = match (server.admin_addr(), server.admin_token()) {
        (Some(addr), Some(t)) if server.admin_token_generated() => Some(token::write(addr, t)?),
        _ => None,
    };
    let manifest_path = app
        .manifest_path()
        .map_or_else(|| manifest.clone(), Path::to_path_buf);
    let tls = server.tls().map(|t| {
        let spec = app.http_spec().and_then(|h| h.tls.clone());
        let files = spec
            .map(|s| {
                [Some(s.cert), Some(s.key), s.client_ca]
                    .into_iter()
                    .flatten()
                    .collect()
            })
            .unwrap_or_default();
        (t, files)
    });
    let hup = tokio::spawn(reload::on_sighup(
        hup,
        app.clone(),
        manifest_path.clone(),
        tls.clone(),
    ));
    let builder = watch.then(|| tokio::spawn(dev::rebuild_on_change(manifest_path.clone())));
    let watcher = watch.then(|| tokio::spawn(reload::watch(app.clone(), manifest_path, tls)));
    // The watches took their first look at the files above: an edit right after this line
    // is a change.
    let mut line = String::new();
    let scheme = if server.tls().is_some() {
        "https"
    } else {
        "http"
    };
    if let Some(addr) = server.local_addr() {
        line.push_str(&format!("serving on {scheme}://{addr}"));
    }
    if let Some(addr) = server.admin_addr() {
        // The operator's page is the admin listener's root.
        line.push_str(&format!(
            " (admin: http://{addr}/ is the status page; also /status, /metrics)"
        ));
    }
    say(&line);
    if let Some(path) = &token_file {
        say(&format!(
            "admin token (for POST /reload and /rollback): {}",
            path.display()
        ));
    }
    // One signal stops both: the HTTP server drains while the remote modules
    // unsubscribe and finish their calls.
    let (stop, stopping) = tokio::sync::watch::channel(false);
    let signal = shutdown_signal()?;
    let signals = tokio::spawn(async move {
        signal.await;
        let _ = stop.send(true);
    });
    let stopped = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|s| *s).await;
    };
    let (aborted, ()) = tokio::join!(server.run(stopped(stopping.clone())), async {
        if let Some(remote) = remote {
            remote.run(stopped(stopping)).await;
        }
    });
    signals.abort();
    let aborted = aborted?;
    hup.abort();
    for task in [watcher, builder].into_iter().flatten() {
        task.abort();
    }
    if let Some(path) = token_file {
        let _ = std::fs::remove_file(path);
    }
    // Sends what telemetry has queued.
    drop(exporting);
    if aborted > 0 {
        say(&format!(
            "stopped; {aborted} connection(s) were aborted when the drain time ran out"
        ));
    }
    Ok(ExitCode::SUCCESS)
}
