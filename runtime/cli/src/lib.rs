//! The `membrane` command: run, call, serve, host, reload, check, inspect, build and graph
//! apps of isolated modules. The `membrane` crate's binary calls [`main`].
//!
//! One file per command under `commands/`, each with its arguments (`Args`) and its `run`;
//! what several share sits beside this file: the runtime settings of an app (`config.rs`),
//! logging (`logging.rs`), the command's own output (`output.rs`), the load's progress
//! (`progress.rs`), `build` commands (`build.rs`), live reloads (`reload.rs`) and the admin
//! token (`token.rs`).

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use output::{OutputFailed, say};

mod build;
mod commands;
mod config;
mod dev;
mod logging;
mod output;
mod progress;
mod reload;
mod telemetry;
mod templates;
mod token;

/// The library as this command uses it: the core, serving, and every placement.
mod membrane {
    pub use membrane_core::{
        App, AppSpec, ComponentSource, Config, DirMode, Error, ErrorKind, LoadProgress, Manifest,
        ModuleSpec, OutputRoute, Placement, Result, TokenSource, default_cache_dir, describe,
        escape, raise_open_files_limit, to_wave,
    };
    pub use membrane_process as process;
    pub use membrane_remote::RemoteHost;
    pub use membrane_serve as serve;

    /// A runtime that serves every placement: this command is built with all of them.
    #[derive(Clone)]
    pub struct Runtime(membrane_core::Runtime);

    impl Runtime {
        pub fn new(config: Config) -> Result<Runtime> {
            let runtime = membrane_core::Runtime::new(config)?;
            runtime.register_placement(std::sync::Arc::new(membrane_process::Process));
            runtime.register_placement(std::sync::Arc::new(membrane_fused::Fused));
            runtime.register_placement(std::sync::Arc::new(membrane_remote::Remote));
            Ok(Runtime(runtime))
        }
    }

    impl std::ops::Deref for Runtime {
        type Target = membrane_core::Runtime;

        fn deref(&self) -> &membrane_core::Runtime {
            &self.0
        }
    }
}

#[derive(Parser)]
#[command(
    name = "membrane",
    version,
    about = "Run apps made of isolated WebAssembly modules"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    Run(commands::run::Args),
    Call(commands::call::Args),
    Serve(commands::serve::Args),
    Host(commands::host::Args),
    Reload(commands::reload::Args),
    Check(commands::check::Args),
    Inspect(commands::inspect::Args),
    Graph(commands::graph::Args),
    Compile(commands::compile::Args),
    Build(commands::build::Args),
    New(commands::new::Args),
    Lock(commands::lock::Args),
    Push(commands::push::Args),
}

/// Runs the command with this process's arguments; the exit status to return.
pub fn main() -> ExitCode {
    // A worker of a `process` module locks itself down before any thread exists.
    membrane::process::main_if_worker();
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            // Help and version go to stdout, usage errors to stderr; neither may panic.
            let _ = e.print();
            return ExitCode::from(e.exit_code().clamp(0, 255) as u8);
        }
    };
    let serving = matches!(cli.command, Command::Serve(_) | Command::Host(_));
    logging::init(serving);
    // Instances hold descriptors up to their `files` limit; give them the room the
    // administrator allows.
    membrane::raise_open_files_limit();
    // A one-shot command waits on one call: one thread does that, and starts faster than a
    // worker pool. A server runs guests on the executor's threads, one per core.
    let rt = if serving {
        tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
    } else {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    };
    let rt = match rt {
        Ok(rt) => rt,
        Err(e) => {
            say(&format!("error: cannot start the async runtime: {e}"));
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(execute(cli.command)) {
        Ok(code) => code,
        Err(e) => match e.downcast_ref::<OutputFailed>() {
            Some(failed) => failed.exit_code(),
            None => {
                output::report(&e);
                ExitCode::FAILURE
            }
        },
    }
}

async fn execute(command: Command) -> anyhow::Result<ExitCode> {
    match command {
        Command::Run(a) => commands::run::run(a).await,
        Command::Call(a) => commands::call::run(a).await,
        Command::Serve(a) => commands::serve::run(a).await,
        Command::Host(a) => commands::host::run(a).await,
        Command::Reload(a) => commands::reload::run(a).await,
        Command::Check(a) => commands::check::run(a).await,
        Command::Inspect(a) => commands::inspect::run(a).await,
        Command::Graph(a) => commands::graph::run(a).await,
        Command::Compile(a) => commands::compile::run(a).await,
        Command::Build(a) => commands::build::run(a).await,
        Command::New(a) => commands::new::run(a).await,
        Command::Lock(a) => commands::lock::run(a).await,
        Command::Push(a) => commands::push::run(a).await,
    }
}
