//! The dev loop of `membrane serve --watch`: when a module's sources change, its `build`
//! command runs again. The component the build writes is then picked up by the watch of
//! component files (`reload.rs`), which upgrades the module live; a build that fails
//! writes no component, so the running generation keeps serving, and its output is logged.
//!
//! A module's sources are its `sources` in the manifest, else inferred: the directory of
//! the Cargo manifest its build command names with `--manifest-path`, else the app
//! manifest's directory. Directories are walked whole, but for what a build or a guest
//! writes: `target`, `node_modules`, virtualenvs, hidden entries, `.wasm` files, the app's
//! component files and the host directories the app grants.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use crate::membrane::{ComponentSource, Manifest};

/// How often the sources are looked at, and how long a change must settle first (an
/// editor saves in several steps).
const POLL: Duration = Duration::from_millis(300);
const SETTLE: Duration = Duration::from_millis(300);

/// The most files one module's sources may hold; more is a mistake in `sources` (a home
/// directory, a whole disk), said once, and the rest is not watched.
const MAX_FILES: usize = 20_000;

/// Directory and file names never taken as sources: build outputs, installed tools,
/// caches.
const SKIPPED: &[&str] = &["target", "node_modules", ".venv", "venv", "__pycache__"];

/// A module that has a build command, and what it is built from.
struct Job {
    name: String,
    command: String,
    sources: Vec<PathBuf>,
}

type Stamps = BTreeMap<PathBuf, (SystemTime, u64)>;

/// What is left out of every module's sources.
struct Skip {
    files: Vec<PathBuf>,
    dirs: Vec<PathBuf>,
}

/// Runs builds when sources change, for as long as the server runs. The sources are first
/// looked at now, when it is called: a change after that builds.
pub fn rebuild_on_change(manifest: PathBuf) -> impl Future<Output = ()> {
    let mut warned = false;
    let first = look(&manifest, &mut warned);
    rebuilding(manifest, first, warned)
}

/// The modules with a build command, the stamps of their sources, and the directory
/// their commands run in; `None` while the manifest does not read.
type Look = Option<(Vec<Job>, Skip, Vec<Stamps>, PathBuf)>;

fn look(manifest: &Path, warned: &mut bool) -> Look {
    let m = Manifest::from_file(manifest).ok()?;
    let (jobs, skip) = jobs(&m);
    let now = jobs.iter().map(|j| stamps(j, &skip, warned)).collect();
    Some((jobs, skip, now, manifest_dir(&m)))
}

async fn rebuilding(manifest: PathBuf, mut state: Look, mut warned: bool) {
    loop {
        tokio::time::sleep(POLL).await;
        // The manifest is read again each time: a reload may add modules or change `build`.
        let Some((jobs, skip, now, dir)) = look(&manifest, &mut warned) else {
            continue;
        };
        let Some((old_jobs, _, seen, _)) = &state else {
            state = Some((jobs, skip, now, dir));
            continue;
        };
        let changed: Vec<usize> = (0..jobs.len())
            .filter(|&i| {
                let before = old_jobs
                    .iter()
                    .position(|o| o.name == jobs[i].name && o.command == jobs[i].command)
                    .map(|o| &seen[o]);
                before.is_some_and(|b| *b != now[i])
            })
            .collect();
        if changed.is_empty() {
            state = Some((jobs, skip, now, dir));
            continue;
        }
        settle(&jobs, &skip, now, &mut warned).await;
        for i in changed {
            let job = &jobs[i];
            tracing::info!(target: "membrane::build", module = %job.name, command = %job.command, "sources changed: building");
            let (d, name, command) = (dir.clone(), job.name.clone(), job.command.clone());
            let result =
                tokio::task::spawn_blocking(move || crate::build::rebuild(&d, &name, &command))
                    .await
                    .unwrap_or_else(|e| Err(vec![format!("the build's thread failed: {e}")]));
            match result {
                Ok(()) => {
                    tracing::info!(target: "membrane::build", module = %job.name, "built; the new component is reloaded when it is written")
                }
                Err(lines) => {
                    for line in &lines {
                        tracing::warn!(target: "membrane::build", module = %job.name, "{line}");
                    }
                    tracing::warn!(target: "membrane::build", module = %job.name, "build failed; the running generation keeps serving");
                }
            }
        }
        // What the builds wrote is not a change of the sources.
        let after: Vec<Stamps> = jobs.iter().map(|j| stamps(j, &skip, &mut warned)).collect();
        state = Some((jobs, skip, after, dir));
    }
}

/// Waits until the sources stop changing.
async fn settle(jobs: &[Job], skip: &Skip, mut last: Vec<Stamps>, warned: &mut bool) {
    loop {
        tokio::time::sleep(SETTLE).await;
        let again: Vec<Stamps> = jobs.iter().map(|j| stamps(j, skip, warned)).collect();
        if again == last {
            return;
        }
        last = again;
    }
}

fn manifest_dir(m: &Manifest) -> PathBuf {
    m.path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
        .to_path_buf()
}

/// The modules with a build command, with their sources; and what no module's sources
/// hold.
fn jobs(m: &Manifest) -> (Vec<Job>, Skip) {
    let dir = manifest_dir(m);
    let mut skip = Skip {
        files: vec![m.path.clone()],
        dirs: Vec::new(),
    };
    for spec in m.app.modules().values() {
        if let ComponentSource::File(p) = spec.source() {
            skip.files.push(p.clone());
        }
        skip.dirs
            .extend(spec.grants.dirs.iter().map(|d| d.host.clone()));
    }
    let jobs = m
        .app
        .modules()
        .iter()
        .filter_map(|(name, spec)| {
            let command = spec.build_command()?;
            let sources = if spec.sources.is_empty() {
                vec![inferred(&dir, command)]
            } else {
                spec.sources.clone()
            };
            Some(Job {
                name: name.clone(),
                command: command.to_string(),
                sources,
            })
        })
        .collect();
    (jobs, skip)
}

/// The sources of a build command that names none: the directory of the Cargo manifest
/// it builds (`--manifest-path P`), else the app manifest's directory.
fn inferred(dir: &Path, command: &str) -> PathBuf {
    let words: Vec<&str> = command.split_whitespace().collect();
    let cargo_manifest = words.iter().enumerate().find_map(|(i, w)| {
        w.strip_prefix("--manifest-path=")
            .or_else(|| (*w == "--manifest-path").then(|| words.get(i + 1).copied())?)
    });
    match cargo_manifest.map(|p| dir.join(p)) {
        Some(p) => p
            .parent()
            .map_or_else(|| dir.to_path_buf(), Path::to_path_buf),
        None => dir.to_path_buf(),
    }
}

/// The modification time and size of every file of `job`'s sources.
fn stamps(job: &Job, skip: &Skip, warned: &mut bool) -> Stamps {
    stamps_at_most(job, skip, warned, MAX_FILES)
}

/// [`stamps`] of at most `max` files; past that it says so, once.
fn stamps_at_most(job: &Job, skip: &Skip, warned: &mut bool, max: usize) -> Stamps {
    let mut out = Stamps::new();
    for source in &job.sources {
        walk(source, skip, &mut out, max);
        if out.len() >= max && !*warned {
            *warned = true;
            tracing::warn!(target: "membrane::build", module = %job.name, max, "the module's sources hold more files than are watched; name fewer with `sources`");
        }
    }
    out
}

fn walk(path: &Path, skip: &Skip, out: &mut Stamps, max: usize) {
    if out.len() >= max || skip.dirs.iter().any(|d| path.starts_with(d)) {
        return;
    }
    let Ok(meta) = std::fs::metadata(path) else {
        return;
    };
    if meta.is_file() {
        if !skip.files.iter().any(|f| f == path)
            && path.extension().is_none_or(|e| e != "wasm")
            && let Ok(modified) = meta.modified()
        {
            out.insert(path.to_path_buf(), (modified, meta.len()));
        }
        return;
    }
    let Ok(entries) = std::fs::read_dir(path) else {
        return;
    };
    let mut entries: Vec<PathBuf> = entries
        .flatten()
        .filter(|e| {
            let name = e.file_name();
            let name = name.to_string_lossy();
            !name.starts_with('.') && !SKIPPED.contains(&&*name)
        })
        .map(|e| e.path())
        .collect();
    entries.sort();
    for entry in entries {
        walk(&entry, skip, out, max);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sources_are_inferred_from_the_build_command() {
        let dir = Path::new("/apps/x");
        assert_eq!(
            inferred(
                dir,
                "cargo build --release --manifest-path ../../guests/Cargo.toml -p hello"
            ),
            Path::new("/apps/x/../../guests")
        );
        assert_eq!(
            inferred(dir, "cargo build --manifest-path=sub/Cargo.toml"),
            Path::new("/apps/x/sub")
        );
        assert_eq!(inferred(dir, "sh build.sh"), dir);
    }

    #[test]
    fn build_outputs_and_granted_dirs_are_not_sources() {
        let tmp = tempfile::tempdir().unwrap();
        let d = tmp.path();
        for f in [
            "src/lib.rs",
            "target/x.rs",
            "node_modules/a.js",
            ".git/HEAD",
            "data/n.txt",
            "out.wasm",
            "Cargo.toml",
        ] {
            std::fs::create_dir_all(d.join(f).parent().unwrap()).unwrap();
            std::fs::write(d.join(f), "x").unwrap();
        }
        let skip = Skip {
            files: vec![],
            dirs: vec![d.join("data")],
        };
        let job = Job {
            name: "m".into(),
            command: "make".into(),
            sources: vec![d.to_path_buf()],
        };
        let found: Vec<PathBuf> = stamps(&job, &skip, &mut false).into_keys().collect();
        assert_eq!(found, [d.join("Cargo.toml"), d.join("src/lib.rs")]);

        // The limit: no more files than it allows, said once.
        let mut warned = false;
        assert_eq!(stamps_at_most(&job, &skip, &mut warned, 1).len(), 1);
        assert!(warned);
        let mut warned = false;
        assert_eq!(stamps_at_most(&job, &skip, &mut warned, 3).len(), 2);
        assert!(!warned);
    }
}
