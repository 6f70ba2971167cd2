//! `membrane run`: the entry module's wasi:cli/run, from a manifest or a bare component.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::bail;

use crate::config::config_for;
use crate::membrane::{AppSpec, DirMode, Manifest, ModuleSpec, OutputRoute, Runtime};
use crate::{build, progress, telemetry};

/// Run the entry module's wasi:cli/run; the exit status is the guest's.
///
/// TARGET is a membrane.toml, or a bare .wasm component run with only the
/// capabilities given by --dir and --env.
#[derive(clap::Args)]
pub struct Args {
    /// A manifest (membrane.toml), a directory holding one, or a component (.wasm).
    #[arg(default_value = "membrane.toml")]
    target: PathBuf,
    /// Run every module's `build` command first.
    #[arg(long)]
    build: bool,
    /// With a bare .wasm: grant a directory, as HOST::GUEST (read-only) or HOST::GUEST:rw.
    #[arg(long = "dir", value_name = "HOST::GUEST[:rw]", value_parser = parse_dir)]
    dirs: Vec<(PathBuf, String, DirMode)>,
    /// With a bare .wasm: set an environment variable, as KEY=VALUE.
    #[arg(long = "env", value_name = "KEY=VALUE", value_parser = parse_env)]
    envs: Vec<(String, String)>,
    /// With a bare .wasm: write the guest's stdout and stderr to the log (target
    /// membrane::guest) instead of this process's own.
    #[arg(long)]
    log_output: bool,
    /// Arguments passed to the guest after its argv[0].
    #[arg(last = true)]
    args: Vec<String>,
}

/// Runs `membrane run`.
pub async fn run(a: Args) -> anyhow::Result<ExitCode> {
    let Args {
        target,
        build,
        dirs,
        envs,
        log_output,
        args,
    } = a;
    let spec = if is_wasm(&target) {
        if build {
            bail!(
                "--build needs a manifest; {} is a component",
                target.display()
            );
        }
        let mut module = ModuleSpec::from_file(&target);
        for (host, guest, mode) in dirs {
            module = module.dir(host, guest, mode);
        }
        for (k, v) in envs {
            module = module.env(k, v);
        }
        AppSpec::new().module("main", bare_output(module, log_output))
    } else {
        if !dirs.is_empty() || !envs.is_empty() || log_output {
            bail!(
                "--dir, --env and --log-output apply to a bare .wasm; with a manifest, grant them \
                 under [modules.NAME.grants] (stdout and stderr route the output)"
            );
        }
        let manifest = Manifest::from_file(&target)?;
        if build {
            build::build_all(&manifest, true)?;
        }
        manifest.app
    };
    let _exporting = telemetry::start(&spec)?;
    let app = progress::load(&Runtime::new(config_for(&spec))?, spec).await?;
    let code = app.run(args, true).await?;
    Ok(ExitCode::from(code.clamp(0, 255) as u8))
}

/// A bare component's output: this process's stdout and stderr, as a command's would be,
/// or the log with `--log-output`.
pub(crate) fn bare_output(module: ModuleSpec, log: bool) -> ModuleSpec {
    let route = if log {
        OutputRoute::Log
    } else {
        OutputRoute::Inherit
    };
    module.stdout(route).stderr(route)
}

fn is_wasm(path: &Path) -> bool {
    path.extension().is_some_and(|e| e == "wasm")
}

fn parse_dir(text: &str) -> Result<(PathBuf, String, DirMode), String> {
    let (host, guest) = text.split_once("::").ok_or_else(|| {
        format!("{text:?}: expected HOST::GUEST or HOST::GUEST:rw, like ./data::/data:rw")
    })?;
    let (guest, mode) = match guest.rsplit_once(':') {
        Some((g, "rw")) => (g, DirMode::ReadWrite),
        Some((g, "ro")) => (g, DirMode::ReadOnly),
        Some((_, other)) => {
            return Err(format!("{text:?}: unknown mode {other:?}; use :ro or :rw"));
        }
        None => (guest, DirMode::ReadOnly),
    };
    if host.is_empty() || !guest.starts_with('/') {
        return Err(format!(
            "{text:?}: HOST must be given and GUEST must be absolute, like ./data::/data"
        ));
    }
    Ok((PathBuf::from(host), guest.to_string(), mode))
}

fn parse_env(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
        _ => Err(format!("{text:?}: expected KEY=VALUE")),
    }
}
