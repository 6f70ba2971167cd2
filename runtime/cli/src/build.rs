//! `membrane build` and `membrane run --build`: each module's `build` command, run with
//! `sh -c` from the manifest's directory.
//!
//! A command that builds for wasm32-wasip2 (its text names the target) needs that target in
//! the Rust toolchain that will run it, and a fresh machine may lack it: rustup does not
//! always install what rust-toolchain.toml lists, and never with `RUSTUP_AUTO_INSTALL=0`. So
//! before such a command runs, its toolchain is found the way the command will find it
//! (rustc and rustup asked from the same directory with the same environment, so that
//! `RUSTUP_TOOLCHAIN` and rust-toolchain.toml apply, and `cargo +NAME` wins over both), and a
//! missing target is installed with `rustup target add`, announced on one line.
//!
//! Several modules on a terminal get a progress bar that shows the last line each command
//! printed; a command that fails then has its output (the last lines of it) shown. Otherwise
//! each module is one line and the commands print as they go.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, IsTerminal};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use crate::membrane::Manifest;
use anyhow::{Context, anyhow, bail};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::output::say;

/// The target guests are built for.
const TARGET: &str = "wasm32-wasip2";

/// Lines of a command's output kept to show when it fails under the progress bar.
const KEPT_LINES: usize = 400;

/// Runs each module's build command with the manifest's directory as working directory.
/// A module whose component file is still missing after its command succeeded is a warning
/// (`membrane build`: a later step may put it there) or, with `for_load` (`run --build`,
/// `serve --build`, `host --build`, which load the app next), an error saying why.
pub fn build_all(manifest: &Manifest, for_load: bool) -> anyhow::Result<()> {
    let dir = manifest
        .path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let jobs: Vec<(&str, &str)> = manifest
        .app
        .modules()
        .iter()
        .filter_map(|(name, module)| Some((name.as_str(), module.build_command()?)))
        .collect();
    if jobs.is_empty() {
        say(&format!(
            "nothing to build: no module of {} has a `build` command",
            manifest.path.display()
        ));
        return Ok(());
    }
    ensure_targets(dir, &jobs)?;
    if jobs.len() > 1 && std::io::stderr().is_terminal() {
        build_with_bar(dir, &jobs)?;
    } else {
        for &(name, command) in &jobs {
            say(&format!("building {name}: {command}"));
            let status = shell(command, dir)
                .status()
                .with_context(|| format!("module `{name}`: cannot start its build command"))?;
            if !status.success() {
                return Err(failed(name, command, status));
            }
        }
    }
    let missing = missing_outputs(manifest, &jobs);
    if for_load && !missing.is_empty() {
        bail!(missing.join("\n"));
    }
    for m in missing {
        say(&format!("warning: {m}"));
    }
    Ok(())
}

/// After every build command succeeded: each module whose component file is still missing,
/// said with why it may be, rather than a load that fails later with "cannot read component
/// ...; build it", right after a build.
fn missing_outputs(manifest: &Manifest, jobs: &[(&str, &str)]) -> Vec<String> {
    let modules = manifest.app.modules();
    let mut missing = Vec::new();
    for &(name, command) in jobs {
        let Some(crate::membrane::ComponentSource::File(path)) =
            modules.get(name).map(|m| m.source())
        else {
            continue;
        };
        if path.exists() {
            continue;
        }
        missing.push(format!(
            "module `{name}`: its build command `{command}` succeeded, but its component {} does not exist{}",
            path.display(),
            missing_output_hint(command, std::env::var_os("CARGO_TARGET_DIR").as_deref())
        ));
    }
    missing
}

/// Why a build may not have written the component: most often cargo building into
/// `CARGO_TARGET_DIR` while `component` names a path under the project's `target`.
fn missing_output_hint(command: &str, target_dir: Option<&std::ffi::OsStr>) -> String {
    match target_dir {
        Some(dir) if command.contains("cargo") && !command.contains("--target-dir") => format!(
            ": CARGO_TARGET_DIR is set ({}), so cargo wrote its output there; add \
             `--target-dir <dir>` to the build command (the directory `component` is under) \
             or unset CARGO_TARGET_DIR",
            Path::new(dir).display()
        ),
        _ => "; check that `component` names the file the command writes".into(),
    }
}

/// Runs one module's build command for the dev loop of `serve --watch`: each line of its
/// output becomes a log line as it comes. Returns the output's last lines when it fails.
pub fn rebuild(dir: &Path, name: &str, command: &str) -> Result<(), Vec<String>> {
    let lines = |e: anyhow::Error| vec![format!("{e:#}")];
    ensure_targets(dir, &[(name, command)]).map_err(lines)?;
    let each = |line: &str| tracing::info!(target: "membrane::build", module = name, "{line}");
    let (status, log) = run_captured(command, dir, each)
        .map_err(|e| lines(e.context("cannot run the build command")))?;
    if status.success() {
        Ok(())
    } else {
        let mut log = log;
        log.push(failed(name, command, status).to_string());
        Err(log)
    }
}

fn shell(command: &str, dir: &Path) -> Command {
    let mut cmd = Command::new("sh");
    cmd.arg("-c").arg(command).current_dir(dir);
    cmd
}

fn failed(name: &str, command: &str, status: ExitStatus) -> anyhow::Error {
    anyhow!("module `{name}`: build command `{command}` failed with {status}")
}

/// Runs the commands under a progress bar on stderr, which shows the command's latest line.
fn build_with_bar(dir: &Path, jobs: &[(&str, &str)]) -> anyhow::Result<()> {
    let start = Instant::now();
    let bar = ProgressBar::with_draw_target(Some(jobs.len() as u64), ProgressDrawTarget::stderr());
    if let Ok(style) =
        ProgressStyle::with_template("{spinner} {bar:20} {pos}/{len} building {prefix}: {wide_msg}")
    {
        bar.set_style(style);
    }
    bar.enable_steady_tick(Duration::from_millis(120));
    for &(name, command) in jobs {
        bar.suspend(|| say(&format!("building {name}: {command}")));
        bar.set_prefix(name.to_string());
        bar.set_message(String::new());
        let result = run_captured(command, dir, |line| bar.set_message(line.to_string()));
        let (status, log) = match result {
            Ok(done) => done,
            Err(e) => {
                bar.finish_and_clear();
                return Err(e.context(format!("module `{name}`: cannot run its build command")));
            }
        };
        if !status.success() {
            bar.finish_and_clear();
            for line in &log {
                say(line);
            }
            return Err(failed(name, command, status));
        }
        bar.inc(1);
    }
    bar.finish_and_clear();
    say(&format!(
        "built {} modules in {:.1?}",
        jobs.len(),
        start.elapsed()
    ));
    Ok(())
}

/// Runs `command` with its stdout and stderr on one pipe, handing each non-empty line to
/// `each` as it comes. Returns the exit status and the output's last lines.
fn run_captured(
    command: &str,
    dir: &Path,
    mut each: impl FnMut(&str),
) -> anyhow::Result<(ExitStatus, Vec<String>)> {
    let (reader, writer) = std::io::pipe().context("cannot make a pipe for its output")?;
    // `cmd` holds our copies of the pipe's write end: they close at the end of this block, so
    // that reading ends when the command (and whatever it started) closes its own.
    let mut child = {
        let mut cmd = shell(command, dir);
        cmd.stdout(
            writer
                .try_clone()
                .context("cannot make a pipe for its output")?,
        )
        .stderr(writer);
        cmd.spawn()?
    };
    let mut reader = BufReader::new(reader);
    let mut kept = VecDeque::new();
    let mut skipped = 0usize;
    let mut buf = Vec::new();
    loop {
        buf.clear();
        match reader.read_until(b'\n', &mut buf) {
            Ok(0) => break,
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(anyhow!(e).context("cannot read its output"));
            }
        }
        let text = String::from_utf8_lossy(&buf);
        // A line redrawn with carriage returns shows its last state.
        let line = text.trim_end().rsplit('\r').next().unwrap_or_default();
        let shown: String = line.chars().filter(|c| !c.is_control()).collect();
        if !shown.trim().is_empty() {
            each(shown.trim());
        }
        kept.push_back(line.to_string());
        if kept.len() > KEPT_LINES {
            kept.pop_front();
            skipped += 1;
        }
    }
    let status = child.wait()?;
    let mut log = Vec::with_capacity(kept.len() + 1);
    if skipped > 0 {
        log.push(format!("({skipped} earlier lines of output not shown)"));
    }
    log.extend(kept);
    Ok((status, log))
}

/// Makes sure that every toolchain the wasm32-wasip2 commands will use has the target.
fn ensure_targets(dir: &Path, jobs: &[(&str, &str)]) -> anyhow::Result<()> {
    let mut checked = Vec::new();
    for &(_, command) in jobs {
        if !command.contains(TARGET) {
            continue;
        }
        let toolchain = toolchain_arg(command);
        if !checked.contains(&toolchain) {
            ensure_target(dir, toolchain)?;
            checked.push(toolchain);
        }
    }
    Ok(())
}

/// The toolchain a command names with `cargo +NAME`, which wins over the directory's.
fn toolchain_arg(command: &str) -> Option<&str> {
    let words: Vec<&str> = command.split_whitespace().collect();
    words.windows(2).find_map(|w| {
        let is_cargo = w[0] == "cargo" || w[0].ends_with("/cargo");
        w[1].strip_prefix('+')
            .filter(|name| is_cargo && !name.is_empty())
    })
}

/// Installs the wasm32-wasip2 target for the toolchain that builds in `dir` (or for
/// `toolchain`), unless that toolchain already has it.
fn ensure_target(dir: &Path, toolchain: Option<&str>) -> anyhow::Result<()> {
    let shown = std::path::absolute(dir).unwrap_or_else(|_| dir.to_path_buf());
    let sysroot = sysroot(dir, &shown, toolchain)?;
    if has_target(&sysroot) {
        return Ok(());
    }
    let name = match toolchain {
        Some(name) => name.to_string(),
        None => active_toolchain(dir, &shown, &sysroot)?,
    };
    let add = format!("rustup target add {TARGET} --toolchain {name}");
    say(&format!("installing the missing {TARGET} target: {add}"));
    let out = Command::new("rustup")
        .args(["target", "add", TARGET, "--toolchain", &name])
        .current_dir(dir)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| anyhow!("cannot run `{add}`: {e}"))?;
    if !out.status.success() {
        bail!(
            "cannot install the {TARGET} target: `{add}` failed ({}): {}",
            out.status,
            tool_message(&out.stderr)
        );
    }
    if !has_target(&sysroot) {
        bail!(
            "`{add}` succeeded, but the Rust toolchain that builds in {} ({}) still has no {TARGET} target; add the target to that toolchain",
            shown.display(),
            sysroot.display()
        );
    }
    Ok(())
}

fn has_target(sysroot: &Path) -> bool {
    sysroot.join("lib/rustlib").join(TARGET).is_dir()
}

/// The sysroot of the rustc that a build started in `dir` runs.
fn sysroot(dir: &Path, shown: &Path, toolchain: Option<&str>) -> anyhow::Result<PathBuf> {
    let mut cmd = Command::new("rustc");
    if let Some(name) = toolchain {
        cmd.arg(format!("+{name}"));
    }
    let out = cmd
        .args(["--print", "sysroot"])
        .current_dir(dir)
        .stdin(Stdio::null())
        .output();
    let out = match out {
        Ok(out) => out,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => bail!(
            "building for {TARGET} needs Rust, and there is no rustc on PATH; install Rust with rustup (https://rustup.rs), then run `rustup target add {TARGET}`"
        ),
        Err(e) => bail!(
            "cannot run rustc to find the Rust toolchain that builds in {}: {e}",
            shown.display()
        ),
    };
    if !out.status.success() {
        bail!(
            "cannot find the Rust toolchain that builds in {}: `rustc --print sysroot` failed: {}",
            shown.display(),
            tool_message(&out.stderr)
        );
    }
    Ok(PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()))
}

/// The name of the rustup toolchain active in `dir`, for `rustup target add --toolchain`.
fn active_toolchain(dir: &Path, shown: &Path, sysroot: &Path) -> anyhow::Result<String> {
    let out = Command::new("rustup")
        .args(["show", "active-toolchain"])
        .current_dir(dir)
        .stdin(Stdio::null())
        .output();
    let out = match out {
        Ok(out) => out,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => bail!(
            "the {TARGET} target is not installed for the Rust toolchain at {}, and there is no rustup on PATH to install it; run `rustup target add {TARGET}` once rustup is installed (https://rustup.rs), or add the target with whatever installed that toolchain",
            sysroot.display()
        ),
        Err(e) => bail!("cannot run `rustup show active-toolchain`: {e}"),
    };
    let text = String::from_utf8_lossy(&out.stdout);
    match text.split_whitespace().next() {
        Some(name) if out.status.success() => Ok(name.to_string()),
        _ => bail!(
            "the {TARGET} target is not installed for the Rust toolchain at {}, and `rustup show active-toolchain` cannot name it ({}); run `rustup target add {TARGET}` in {}",
            sysroot.display(),
            tool_message(&out.stderr),
            shown.display()
        ),
    }
}

/// What a failed rustc or rustup said, on one line: its lines other than progress
/// (`info:`), joined with "; ".
fn tool_message(stderr: &[u8]) -> String {
    let text = String::from_utf8_lossy(stderr);
    let lines: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with("info:"))
        .take(4)
        .collect();
    if lines.is_empty() {
        return "it printed no reason".to_string();
    }
    let joined = lines.join("; ");
    joined
        .strip_prefix("error: ")
        .unwrap_or(&joined)
        .to_string()
}
