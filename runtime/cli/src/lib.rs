//! The `membrane` command: run, call, serve, host, reload, check, inspect, build and graph
//! apps of isolated modules. The `membrane` crate's binary calls [`main`].

use std::path::{Path, PathBuf};
use std::process::ExitCode;

mod build;
mod output;
mod progress;
mod reload;
mod token;

/// The library as this command uses it: the core, serving, and every placement.
mod membrane {
    pub use membrane_core::{
        App, AppSpec, ComponentSource, Config, DirMode, Error, ErrorKind, GraphFormat,
        LoadProgress, Manifest, ModuleSpec, Result, TokenSource, default_cache_dir, describe,
        escape, inspect_file, raise_open_files_limit, render_graph, to_wave,
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

use anyhow::{Context, bail};
use clap::{Parser, Subcommand};
use membrane::{AppSpec, Config, DirMode, Manifest, ModuleSpec, Runtime};
use output::{OutputFailed, out, say};

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
    /// Run the entry module's wasi:cli/run; the exit status is the guest's.
    ///
    /// TARGET is a membrane.toml, or a bare .wasm component run with only the
    /// capabilities given by --dir and --env.
    Run {
        /// A manifest (membrane.toml) or a component (.wasm).
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
        /// Arguments passed to the guest after its argv[0].
        #[arg(last = true)]
        args: Vec<String>,
    },
    /// Call one exported function; arguments and results are WAVE values.
    Call {
        /// The app's manifest.
        manifest: PathBuf,
        /// The module to call.
        module: String,
        /// The export: ns:pkg/iface#func, ns:pkg/iface@1.0.0#func, or a root-level name.
        export: String,
        /// One WAVE value per parameter, e.g. '"text"', 42, '{x: 1, y: 2}', 'some(3)'.
        #[arg(allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Serve the app over HTTP: routes from [app.http], admin endpoints from [app.admin].
    ///
    /// Stops on SIGTERM or SIGINT: new connections are refused, requests in flight get
    /// [app.http] drain to finish, and the exit status is 0. Reloads the manifest on SIGHUP
    /// (as `membrane reload` does): changed modules are upgraded live after the load's
    /// checks; a refused reload changes nothing and logs every problem.
    Serve {
        /// The app's manifest.
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
        /// settled), as SIGHUP does.
        #[arg(long)]
        watch: bool,
        /// Also serve these `remote` modules to the app's other hosts over NATS, as
        /// `membrane host --modules` does (comma-separated).
        #[arg(long = "host", value_name = "MODULE,...", value_delimiter = ',')]
        host: Vec<String>,
    },
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
    Host {
        /// The app's manifest.
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
    },
    /// Ask a running `membrane serve` to reload its manifest (POST /reload to its admin
    /// listener): modules whose component, grants, limits or links changed are upgraded
    /// live, after the same checks as at load; a refused reload changes nothing.
    ///
    /// A reload that widens a module's grants (a new directory, rw, a variable, a
    /// destination, an origin), raises a limit or quota, or weakens its sandbox is refused
    /// unless --grants is given; the answer lists every change.
    Reload {
        /// The admin listener of the server. Default: [app.admin] listen of MANIFEST.
        #[arg(long, value_name = "IP:PORT")]
        admin: Option<String>,
        /// Accept changes that give modules more authority (each is logged on
        /// membrane::audit by the server).
        #[arg(long)]
        grants: bool,
        /// The app's manifest, to find the admin listener.
        #[arg(default_value = "membrane.toml")]
        manifest: PathBuf,
    },
    /// Load and check an app without running it; lists every problem.
    Check {
        /// The app's manifest.
        manifest: PathBuf,
    },
    /// Print a component's imports and exports as WIT.
    Inspect {
        /// The component file.
        component: PathBuf,
        /// Also print the definitions of every interface it imports and exports.
        #[arg(long)]
        full: bool,
    },
    /// Print the app as a graph: modules with their grants and limits, links between them.
    Graph {
        /// The app's manifest.
        manifest: PathBuf,
        /// Output format.
        #[arg(long, value_enum, default_value = "dot")]
        format: Format,
    },
    /// Compile every module into the cache, so that later starts skip compilation.
    Compile {
        /// The app's manifest.
        manifest: PathBuf,
    },
    /// Run each module's `build` command, from the manifest's directory.
    Build {
        /// The app's manifest.
        manifest: PathBuf,
    },
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum Format {
    /// Graphviz DOT.
    Dot,
    /// Mermaid flowchart.
    Mermaid,
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
    let serving = matches!(cli.command, Command::Serve { .. } | Command::Host { .. });
    init_logging(serving);
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
                report(&e);
                ExitCode::FAILURE
            }
        },
    }
}

/// Logs go to stderr, filtered by `MEMBRANE_LOG` (`tracing` directives; by default
/// warnings, guest output and, for `serve`, everything at info: audit events, request
/// failures, shutdown). `MEMBRANE_LOG_FORMAT=json` writes one JSON object per line.
/// `MEMBRANE_LOG_SPANS=1` also logs each request and module call when its span closes, with
/// its duration.
fn init_logging(serving: bool) {
    use tracing_subscriber::EnvFilter;
    use tracing_subscriber::fmt::format::FmtSpan;
    let default = if serving {
        "info"
    } else {
        "warn,membrane::guest=info"
    };
    let filter =
        EnvFilter::try_from_env("MEMBRANE_LOG").unwrap_or_else(|_| EnvFilter::new(default));
    // Span closes (a line per request and per module call, with durations) are opt-in:
    // at a high request rate they are most of what logging costs.
    let spans = if std::env::var_os("MEMBRANE_LOG_SPANS").is_some_and(|v| v != "0") {
        FmtSpan::CLOSE
    } else {
        FmtSpan::NONE
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(output::LogWriter)
        .log_internal_errors(false)
        .with_span_events(spans);
    let json = std::env::var("MEMBRANE_LOG_FORMAT").is_ok_and(|f| f.eq_ignore_ascii_case("json"));
    if json {
        builder
            .json()
            .with_current_span(true)
            .with_span_list(true)
            .init();
    } else {
        builder
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .with_target(serving)
            .init();
    }
}

/// Prints an error and its causes. Every piece goes through `membrane::describe`, which
/// escapes what a guest may have put in it (names in a backtrace, text in a message).
fn report(e: &anyhow::Error) {
    let kind = e
        .chain()
        .find_map(|c| c.downcast_ref::<membrane::Error>())
        .map(|m| format!("[{}]", m.kind()))
        .unwrap_or_default();
    let mut causes = e.chain();
    if let Some(first) = causes.next() {
        say(&format!("error{kind}: {}", membrane::describe(first)));
    }
    for cause in causes {
        say(&format!("  caused by: {}", membrane::describe(cause)));
    }
}

async fn execute(command: Command) -> anyhow::Result<ExitCode> {
    match command {
        Command::Run {
            target,
            build,
            dirs,
            envs,
            args,
        } => {
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
                AppSpec::new().module("main", module)
            } else {
                if !dirs.is_empty() || !envs.is_empty() {
                    bail!(
                        "--dir and --env apply to a bare .wasm; with a manifest, grant them under [modules.NAME.grants]"
                    );
                }
                let manifest = Manifest::from_file(&target)?;
                if build {
                    build::build_all(&manifest)?;
                }
                manifest.app
            };
            let app = progress::load(&Runtime::new(config_for(&spec))?, spec).await?;
            let code = app.run(args, true).await?;
            Ok(ExitCode::from(code.clamp(0, 255) as u8))
        }
        Command::Call {
            manifest,
            module,
            export,
            args,
        } => {
            let m = Manifest::from_file(&manifest)?;
            let app = progress::load(&Runtime::new(config_for(&m.app))?, m.app).await?;
            let func = app.function(&module, &export)?;
            let values = func.parse_args(&args)?;
            let results = app.call(&module, &export, &values).await?;
            let mut text = String::new();
            for r in &results {
                text.push_str(&membrane::to_wave(r)?);
                text.push('\n');
            }
            out(&text)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Serve {
            manifest,
            listen,
            admin,
            build,
            watch,
            host,
        } => {
            let m = Manifest::from_file(&manifest)?;
            if build {
                build::build_all(&m)?;
            }
            let spec = if host.is_empty() {
                m.app
            } else {
                hosting(m.app, &host, &[])?
            };
            let servers = servers_of(&spec);
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
                (Some(addr), Some(t)) if server.admin_token_generated() => {
                    Some(token::write(addr, t)?)
                }
                _ => None,
            };
            let mut line = String::new();
            if let Some(addr) = server.local_addr() {
                line.push_str(&format!("serving on http://{addr}"));
            }
            if let Some(addr) = server.admin_addr() {
                line.push_str(&format!(" (admin: http://{addr}/)"));
            }
            say(&line);
            if let Some(path) = &token_file {
                say(&format!(
                    "admin token (for POST /reload and /rollback): {}",
                    path.display()
                ));
            }
            let manifest_path = app
                .manifest_path()
                .map_or_else(|| manifest.clone(), Path::to_path_buf);
            let hup = tokio::spawn(reload::on_sighup(hup, app.clone(), manifest_path.clone()));
            let watcher = watch.then(|| tokio::spawn(reload::watch(app.clone(), manifest_path)));
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
                    stopped(stopping).await;
                    remote.shutdown().await;
                }
            });
            signals.abort();
            let aborted = aborted?;
            hup.abort();
            if let Some(w) = watcher {
                w.abort();
            }
            if let Some(path) = token_file {
                let _ = std::fs::remove_file(path);
            }
            if aborted > 0 {
                say(&format!(
                    "stopped; {aborted} connection(s) were aborted when the drain time ran out"
                ));
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Host {
            manifest,
            modules,
            nats,
            build,
        } => {
            let m = Manifest::from_file(&manifest)?;
            if build {
                build::build_all(&m)?;
            }
            let spec = hosting(m.app, &modules, &nats)?;
            let servers = servers_of(&spec);
            let app = progress::load(&Runtime::new(config_for(&spec))?, spec).await?;
            let remote = membrane::RemoteHost::start(&app).await?;
            say(&hosting_line(&remote, &servers));
            shutdown_signal()?.await;
            remote.shutdown().await;
            Ok(ExitCode::SUCCESS)
        }
        Command::Reload {
            admin,
            grants,
            manifest,
        } => {
            // The manifest names the listener and where its token is; with --admin it may
            // be absent (the token is then the one the server made up for that address).
            let spec = match Manifest::from_file(&manifest) {
                Ok(m) => Some(m.app.admin_spec().clone()),
                // The server reads the manifest again and reports its problems itself.
                Err(_) if admin.is_some() => None,
                Err(e) => {
                    return Err(anyhow::Error::new(e).context(
                        "give the server's admin address with --admin IP:PORT, or the manifest that names it",
                    ));
                }
            };
            let admin = match admin {
                Some(a) => a,
                None => spec.as_ref().and_then(|s| s.listen.clone()).with_context(|| {
                    format!(
                        "{} has no [app.admin] listen; give the server's admin address with --admin IP:PORT",
                        manifest.display()
                    )
                })?,
            };
            let configured = spec.as_ref().and_then(|s| s.token.as_ref());
            Ok(if reload::ask(&admin, configured, grants)? {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
        Command::Check { manifest } => {
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
        Command::Inspect { component, full } => {
            out(&membrane::inspect_file(&component, full)?)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Graph { manifest, format } => {
            let m = Manifest::from_file(&manifest)?;
            // Drawing the app needs no NATS server.
            let mut config = config_for(&m.app);
            config.connect_nats = false;
            let app = progress::load(&Runtime::new(config)?, m.app).await?;
            let format = match format {
                Format::Dot => membrane::GraphFormat::Dot,
                Format::Mermaid => membrane::GraphFormat::Mermaid,
            };
            out(&membrane::render_graph(&app, format))?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Compile { manifest } => {
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
        Command::Build { manifest } => {
            build::build_all(&Manifest::from_file(&manifest)?)?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// The runtime settings for one app: the compiled-code cache (unless `MEMBRANE_NO_CACHE`
/// is set) and as many instance slots as the app's modules may use at once.
fn config_for(app: &AppSpec) -> Config {
    let mut config = Config::default();
    if std::env::var_os("MEMBRANE_NO_CACHE").is_none() {
        config.cache_dir = membrane::default_cache_dir();
    }
    config.fuel = app.modules().values().any(|m| m.limits.fuel.is_some());
    // For benchmarks of what counting calls costs (scripts/bench-http.sh).
    config.metrics = std::env::var_os("MEMBRANE_NO_METRICS").is_none();
    if let Some(stack) = app.stack_size() {
        config.max_wasm_stack = stack as usize;
    }
    // Every instance of a module, resource sessions included, comes from its pool, so the
    // sum of `instances` is all the app can hold at once.
    // Twice that leaves room for live upgrades: one that raises `instances`, and the moment
    // a module's state moves, when its old and new instance are both alive.
    let wanted: usize = app.modules().values().map(|m| m.limits.instances).sum();
    config.instance_slots = (wanted * 2).clamp(16, 10_000) as u32;
    config
}

/// `spec` made to host the `remote` modules `modules` here, connecting to `servers`
/// instead of its `[app] nats` when some are given (its credentials stay).
fn hosting(spec: AppSpec, modules: &[String], servers: &[String]) -> anyhow::Result<AppSpec> {
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
fn hosting_line(remote: &membrane::RemoteHost, servers: &str) -> String {
    let modules: Vec<&str> = remote.modules().collect();
    format!(
        "hosting {} of app {} on NATS {servers} (host id {})",
        modules.join(", "),
        remote.app_name(),
        remote.host_id()
    )
}

/// The NATS servers of `spec`, for messages.
fn servers_of(spec: &AppSpec) -> String {
    spec.nats_spec()
        .map(|n| n.servers.join(", "))
        .unwrap_or_default()
}

/// Completes on the first SIGTERM or SIGINT.
fn shutdown_signal() -> anyhow::Result<impl std::future::Future<Output = ()>> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    Ok(async move {
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
    })
}

fn is_wasm(path: &Path) -> bool {
    path.extension().is_some_and(|e| e == "wasm")
}
