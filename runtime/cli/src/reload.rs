//! Reloading a served app: on SIGHUP and when a watched file changes (`serve --watch`).
//! `membrane reload` asks a running server's admin listener (`commands/reload.rs`).

use crate::membrane;
use std::collections::BTreeMap;

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use crate::membrane::{App, ComponentSource};
use anyhow::Context;

/// How often `--watch` looks at the files, and how long a change must settle before the
/// reload (a build writes a component in several steps).
const POLL: Duration = Duration::from_millis(200);
const SETTLE: Duration = Duration::from_millis(300);

/// Reloads `app` from `manifest` and logs what happened; `why` says what asked for it.
pub async fn reload_and_log(app: &App, manifest: &Path, why: &str) {
    // On a task of its own: whatever happens in one reload, the trigger's loop goes on.
    let task = tokio::spawn({
        let (app, manifest) = (app.clone(), manifest.to_path_buf());
        async move { app.reload(manifest).await }
    });
    let result = match task.await {
        Ok(r) => r,
        Err(e) => {
            tracing::error!(target: "membrane::upgrade", trigger = why, error = %e, "reload failed inside the host; nothing after the failure changed");
            return;
        }
    };
    match result {
        Ok(r) if r.upgraded.is_empty() => {
            tracing::info!(target: "membrane::upgrade", trigger = why, "reload: nothing changed");
            for w in &r.warnings {
                tracing::warn!(target: "membrane::upgrade", "reload: {w}");
            }
        }
        Ok(r) => {
            for u in &r.upgraded {
                tracing::info!(
                    target: "membrane::upgrade",
                    trigger = why,
                    module = %u.module,
                    from = u.from,
                    to = u.to,
                    elapsed = ?u.elapsed,
                    "reload: module upgraded"
                );
            }
            for w in &r.warnings {
                tracing::warn!(target: "membrane::upgrade", "reload: {w}");
            }
        }
        Err(e) => {
            let problems = if e.problems().is_empty() {
                vec![membrane::describe(&e)]
            } else {
                e.problems().iter().map(|p| membrane::describe(p)).collect()
            };
            for p in &problems {
                tracing::warn!(target: "membrane::upgrade", trigger = why, kind = e.kind().as_str(), problem = %p, "reload refused; nothing changed");
            }
            if e.kind() == membrane::ErrorKind::Denied {
                tracing::warn!(target: "membrane::upgrade", trigger = why, "the reload widens grants: run `membrane reload --grants` to accept them");
            }
        }
    }
}

/// Listens for SIGHUP from now on (before the server says it is up, so that a SIGHUP sent
/// right after that line never finds the default action, which ends the process).
pub fn sighup() -> anyhow::Result<tokio::signal::unix::Signal> {
    use tokio::signal::unix::{SignalKind, signal};
    signal(SignalKind::hangup()).context("cannot listen for SIGHUP")
}

/// Reloads on every SIGHUP, for as long as the server runs; and the listener's TLS
/// certificate and key, when it has them.
pub async fn on_sighup(
    mut hup: tokio::signal::unix::Signal,
    app: App,
    manifest: PathBuf,
    tls: Option<Tls>,
) {
    while hup.recv().await.is_some() {
        reload_and_log(&app, &manifest, "SIGHUP").await;
        reload_tls(tls.as_ref(), "SIGHUP");
    }
}

/// The listener's TLS: its reloader and the files it reads.
pub type Tls = (membrane::serve::TlsReloader, Vec<PathBuf>);

/// Reads the TLS certificate and key again; a failure keeps the running ones.
fn reload_tls(tls: Option<&Tls>, why: &str) {
    let Some((tls, _)) = tls else { return };
    match tls.reload() {
        Ok(()) => {
            tracing::info!(target: "membrane::http", trigger = why, "TLS certificate reloaded")
        }
        Err(e) => {
            tracing::warn!(target: "membrane::http", trigger = why, error = %e, "TLS certificate not reloaded; the running one stays")
        }
    }
}

/// The files a reload reads: the manifest and each module's component file.
fn watched(app: &App, manifest: &Path) -> Vec<PathBuf> {
    let mut files = vec![manifest.to_path_buf()];
    for name in app.modules() {
        if let Some(spec) = app.spec(name)
            && let ComponentSource::File(p) = spec.source()
        {
            files.push(p.clone());
        }
    }
    files
}

type Stamp = Option<(SystemTime, u64)>;

fn stamps(files: &[PathBuf]) -> BTreeMap<PathBuf, Stamp> {
    files
        .iter()
        .map(|f| {
            let stamp = std::fs::metadata(f)
                .ok()
                .and_then(|m| Some((m.modified().ok()?, m.len())));
            (f.clone(), stamp)
        })
        .collect()
}

/// Reloads when the manifest or a component file changes and has settled (`serve --watch`).
/// The files are first looked at now, when it is called: a change after that reloads.
pub fn watch(app: App, manifest: PathBuf, tls: Option<Tls>) -> impl Future<Output = ()> {
    let seen = stamps(&watched_files(&app, &manifest, tls.as_ref()));
    watching(app, manifest, tls, seen)
}

/// The manifest, the component files and the TLS files.
fn watched_files(app: &App, manifest: &Path, tls: Option<&Tls>) -> Vec<PathBuf> {
    let mut files = watched(app, manifest);
    files.extend(tls.iter().flat_map(|(_, f)| f.iter().cloned()));
    files
}

async fn watching(
    app: App,
    manifest: PathBuf,
    tls: Option<Tls>,
    mut seen: BTreeMap<PathBuf, Stamp>,
) {
    let files = |app: &App| watched_files(app, &manifest, tls.as_ref());
    loop {
        tokio::time::sleep(POLL).await;
        let now = stamps(&files(&app));
        if now == seen {
            continue;
        }
        // Wait until the files stop changing: a build may still be writing.
        let mut settled = now;
        loop {
            tokio::time::sleep(SETTLE).await;
            let again = stamps(&files(&app));
            if again == settled {
                break;
            }
            settled = again;
        }
        let changed: Vec<String> = settled
            .iter()
            .filter(|(f, s)| seen.get(*f) != Some(s))
            .map(|(f, _)| f.display().to_string())
            .collect();
        tracing::info!(target: "membrane::upgrade", files = ?changed, "watched files changed");
        let tls_changed = tls
            .iter()
            .flat_map(|(_, f)| f.iter())
            .any(|f| seen.get(f) != settled.get(f));
        reload_and_log(&app, &manifest, "watch").await;
        if tls_changed {
            reload_tls(tls.as_ref(), "watch");
        }
        seen = stamps(&files(&app));
    }
}
