//! Reloading a served app: on SIGHUP, when a watched file changes (`serve --watch`), and
//! `membrane reload`, which asks a running server's admin listener to reload.

use crate::membrane;
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use crate::membrane::{App, ComponentSource, TokenSource};
use anyhow::{Context, bail};

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

/// Reloads on every SIGHUP, for as long as the server runs.
pub async fn on_sighup(mut hup: tokio::signal::unix::Signal, app: App, manifest: PathBuf) {
    while hup.recv().await.is_some() {
        reload_and_log(&app, &manifest, "SIGHUP").await;
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
pub async fn watch(app: App, manifest: PathBuf) {
    let mut seen = stamps(&watched(&app, &manifest));
    loop {
        tokio::time::sleep(POLL).await;
        let now = stamps(&watched(&app, &manifest));
        if now == seen {
            continue;
        }
        // Wait until the files stop changing: a build may still be writing.
        let mut settled = now;
        loop {
            tokio::time::sleep(SETTLE).await;
            let again = stamps(&watched(&app, &manifest));
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
        reload_and_log(&app, &manifest, "watch").await;
        seen = stamps(&watched(&app, &manifest));
    }
}

/// `membrane reload`: POST /reload to a server's admin listener; prints what happened.
/// Returns whether the reload succeeded.
pub fn ask(admin: &str, configured: Option<&TokenSource>, grants: bool) -> anyhow::Result<bool> {
    let addr = admin
        .to_socket_addrs()
        .with_context(|| format!("--admin {admin:?} is not an address like 127.0.0.1:9090"))?
        .next()
        .with_context(|| format!("--admin {admin:?} resolves to no address"))?;
    let token = crate::token::read(configured, addr)?;
    let authorization = match &token {
        Some(t) if t.bytes().all(|b| b.is_ascii_graphic()) => {
            format!("Authorization: Bearer {t}\r\n")
        }
        Some(_) => bail!(
            "the admin token holds characters a header cannot carry; make it printable ASCII without spaces"
        ),
        None => String::new(),
    };
    let query = if grants { "?grants=accept" } else { "" };
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).with_context(|| {
        format!("cannot reach the admin listener at {addr}: is `membrane serve` running with [app.admin] listen (or --admin) there?")
    })?;
    // Compiling a large module can take a while.
    stream.set_read_timeout(Some(Duration::from_secs(300)))?;
    write!(
        stream,
        "POST /reload{query} HTTP/1.1\r\nHost: {addr}\r\n{authorization}Content-Length: 0\r\nConnection: close\r\n\r\n"
    )?;
    let mut raw = Vec::new();
    stream
        .read_to_end(&mut raw)
        .with_context(|| format!("the admin listener at {addr} did not answer"))?;
    let raw = String::from_utf8_lossy(&raw);
    let Some((head, body)) = raw.split_once("\r\n\r\n") else {
        bail!("the admin listener at {addr} sent no HTTP answer");
    };
    let status = head.split_whitespace().nth(1).unwrap_or("?");
    if status == "401" {
        bail!(
            "the admin listener at {addr} refused the token{}: give the token the server uses \
             ([app.admin] token_file or token_env of the manifest, or the file `membrane serve` printed at start)",
            if token.is_none() {
                " (none was found)"
            } else {
                ""
            }
        );
    }
    let Ok(v) = serde_json::from_str::<serde_json::Value>(body.trim()) else {
        bail!(
            "the admin listener at {addr} answered {status}: {}",
            membrane::escape(body.trim())
        );
    };
    if v["ok"] == true {
        let upgraded = v["upgraded"].as_array().cloned().unwrap_or_default();
        if upgraded.is_empty() {
            println!("reloaded: nothing changed");
        }
        for u in upgraded {
            println!(
                "upgraded {}: generation {} -> {} ({}, {:.1} ms)",
                text(&u["module"]),
                u["from"],
                u["to"],
                text(&u["hash"]).get(..19).unwrap_or("?"),
                u["elapsed_ms"].as_f64().unwrap_or(0.0)
            );
            for g in u["grants"].as_array().into_iter().flatten() {
                println!(
                    "  {} {} {}: {} -> {}",
                    if g["wider"] == true {
                        "widened"
                    } else {
                        "narrowed"
                    },
                    text(&g["kind"]),
                    text(&g["key"]),
                    g["old"].as_str().map_or("none".into(), membrane::escape),
                    g["new"].as_str().map_or("none".into(), membrane::escape),
                );
            }
        }
        for w in v["warnings"].as_array().into_iter().flatten() {
            eprintln!("warning: {}", w.as_str().unwrap_or(""));
        }
        return Ok(true);
    }
    eprintln!(
        "error: reload refused ({}); nothing changed",
        v["kind"].as_str().unwrap_or("?")
    );
    for p in v["problems"].as_array().into_iter().flatten() {
        eprintln!("  - {}", text(&p["message"]));
    }
    if v["kind"] == "denied" && !grants {
        eprintln!("to accept wider grants, run `membrane reload --grants`");
    }
    Ok(false)
}

/// A string field of the server's answer, safe to print.
fn text(v: &serde_json::Value) -> String {
    membrane::escape(v.as_str().unwrap_or("?")).into_owned()
}
