//! The plugins of examples/plugins: one WIT interface implemented in Rust, Python and
//! JavaScript. The Rust one is a guest like the others (built by this crate's build
//! script); the Python and JavaScript ones are built here, on first use, with
//! componentize-py (from PyPI) and componentize-js (from npm).
//!
//! The tools are installed when missing into `<target>/plugins/tools`, with one line on
//! stderr saying so. Their outputs are cached in `<target>/plugins/cache`, keyed by a hash
//! of the sources, the WIT and the tool's version, so a second run builds nothing; the
//! component the manifest names is then copied to `examples/plugins/target/`.
//! Failures (no python3 or npm, registries out of reach, a tool that fails) come back as one
//! message naming the command and what it said, never as a panic.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::Mutex;

use sha2::{Digest, Sha256};

use crate::{PLUGIN_RUST, ROOT, TARGET_DIR};

/// The componentize-py release the Python plugin is built with.
pub const COMPONENTIZE_PY: &str = "0.25.1";
/// The componentize-js release the JavaScript plugin is built with.
pub const COMPONENTIZE_JS: &str = "0.23.0";

/// A language the text plugin is written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Language {
    /// examples/plugins/rust, built with the guests.
    Rust,
    /// examples/plugins/python, built with componentize-py.
    Python,
    /// examples/plugins/js, built with componentize-js.
    JavaScript,
}

impl Language {
    /// Every language, in the order the example prints them.
    pub const ALL: [Language; 3] = [Language::Rust, Language::Python, Language::JavaScript];

    /// The module that runs this plugin in examples/plugins/membrane.toml.
    pub fn module(self) -> &'static str {
        match self {
            Language::Rust => "rust",
            Language::Python => "python",
            Language::JavaScript => "js",
        }
    }
}

/// The directory of the example.
pub fn example_dir() -> PathBuf {
    Path::new(ROOT).join("examples/plugins")
}

/// The example's manifest: one module per language, the same grants and limits.
pub fn manifest() -> PathBuf {
    example_dir().join("membrane.toml")
}

/// A compile-cache directory for `membrane::Config::cache_dir` that survives between runs
/// (under the target directory), so only the first run pays for compiling the plugins.
pub fn compile_cache_dir() -> PathBuf {
    Path::new(TARGET_DIR).join("plugins/compiled")
}

/// Makes sure the component of `language` exists where the manifest names it, building it
/// (and installing its tool) when needed, and returns its path.
pub fn component(language: Language) -> Result<PathBuf, String> {
    match language {
        Language::Rust => Ok(PathBuf::from(PLUGIN_RUST)),
        Language::Python => {
            let _one = one_at_a_time(language);
            cached_build(&Python)
        }
        Language::JavaScript => {
            let _one = one_at_a_time(language);
            cached_build(&JavaScript)
        }
    }
}

/// The directory of the tool that builds `language` (installed when missing): the
/// virtualenv of componentize-py, or the `node_modules` of componentize-js. `None` for
/// Rust, whose toolchain is the build's.
pub fn tool_dir(language: Language) -> Result<Option<PathBuf>, String> {
    let tools = Path::new(TARGET_DIR).join("plugins/tools");
    let _one = one_at_a_time(language);
    match language {
        Language::Rust => Ok(None),
        Language::Python => Python.install(&tools).map(Some),
        Language::JavaScript => JavaScript
            .install(&tools)
            .map(|prefix| Some(prefix.join("node_modules"))),
    }
}

/// One install or build per language at a time in this process; tests ask concurrently.
fn one_at_a_time(language: Language) -> std::sync::MutexGuard<'static, ()> {
    static PYTHON: Mutex<()> = Mutex::new(());
    static JS: Mutex<()> = Mutex::new(());
    let lock = match language {
        Language::JavaScript => &JS,
        _ => &PYTHON,
    };
    lock.lock().unwrap_or_else(|e| e.into_inner())
}

/// [`component`] of every language, built side by side (each tool is mostly one thread);
/// the first failure is the error.
pub fn all_components() -> Result<(), String> {
    std::thread::scope(|scope| {
        let builds: Vec<_> = Language::ALL
            .map(|language| scope.spawn(move || component(language)))
            .into_iter()
            .collect();
        builds
            .into_iter()
            .map(|b| {
                b.join()
                    .unwrap_or_else(|_| Err("a plugin build panicked".into()))
            })
            .collect::<Result<Vec<_>, String>>()
            .map(drop)
    })
}

/// How one non-Rust plugin is built.
trait Builder {
    /// The file name of the output, in examples/plugins/target and the cache.
    fn name(&self) -> &'static str;
    /// The plugin's source files (besides the WIT), relative to the example directory.
    fn sources(&self) -> &'static [&'static str];
    /// The tool and its version, part of the cache key.
    fn tool(&self) -> String;
    /// Installs the tool under `tools` unless it is there already; returns its directory.
    fn install(&self, tools: &Path) -> Result<PathBuf, String>;
    /// The command that builds `out` with the tool installed in `tool`.
    fn command(&self, tool: &Path, out: &Path) -> Command;
}

struct Python;

impl Builder for Python {
    fn name(&self) -> &'static str {
        "python"
    }
    fn sources(&self) -> &'static [&'static str] {
        &["python/app.py"]
    }
    fn tool(&self) -> String {
        format!("componentize-py {COMPONENTIZE_PY}")
    }
    fn install(&self, tools: &Path) -> Result<PathBuf, String> {
        let venv = tools.join("componentize-py");
        let installed = venv.join(format!("installed-{COMPONENTIZE_PY}"));
        if !installed.exists() {
            say(&format!(
                "installing componentize-py {COMPONENTIZE_PY} from PyPI into {} (first run only)",
                venv.display()
            ));
            run(
                Command::new("python3").arg("-m").arg("venv").arg(&venv),
                "python3 -m venv (python3 3.10 or later is needed to build the Python plugin)",
            )?;
            run(
                Command::new(venv.join("bin/pip")).args([
                    "install",
                    "--disable-pip-version-check",
                    "--quiet",
                    "--retries",
                    "1",
                    "--timeout",
                    "30",
                    &format!("componentize-py=={COMPONENTIZE_PY}"),
                ]),
                "pip install componentize-py (is PyPI reachable?)",
            )?;
            write(&installed, b"")?;
        }
        Ok(venv)
    }
    fn command(&self, venv: &Path, out: &Path) -> Command {
        let example = example_dir();
        let mut cmd = Command::new(venv.join("bin/componentize-py"));
        cmd.arg("--wit-path")
            .arg(example.join("wit"))
            .args(["--world", "plugin", "componentize", "--python-path"])
            .arg(example.join("python"))
            .arg("app")
            .arg("--output")
            .arg(out)
            // Keep __pycache__ out of the source tree.
            .env("PYTHONDONTWRITEBYTECODE", "1");
        cmd
    }
}

struct JavaScript;

/// The plugin makes no HTTP requests: without these, StarlingMonkey imports wasi:http for
/// `fetch`, which a plugin granted no `http` origins cannot link.
const JS_FLAGS: &[&str] = &["--disable", "http", "fetch-event"];

impl Builder for JavaScript {
    fn name(&self) -> &'static str {
        "js"
    }
    fn sources(&self) -> &'static [&'static str] {
        &["js/plugin.js"]
    }
    fn tool(&self) -> String {
        format!("componentize-js {COMPONENTIZE_JS} {JS_FLAGS:?}")
    }
    fn install(&self, tools: &Path) -> Result<PathBuf, String> {
        let prefix = tools.join("componentize-js");
        let installed = prefix.join(format!("installed-{COMPONENTIZE_JS}"));
        if !installed.exists() {
            say(&format!(
                "installing @bytecodealliance/componentize-js {COMPONENTIZE_JS} from npm into {} (first run only)",
                prefix.display()
            ));
            create_dir(&prefix)?;
            run(
                Command::new("npm")
                    .arg("install")
                    .arg("--prefix")
                    .arg(&prefix)
                    .args([
                        "--no-audit",
                        "--no-fund",
                        "--fetch-retries=1",
                        "--fetch-timeout=60000",
                        &format!("@bytecodealliance/componentize-js@{COMPONENTIZE_JS}"),
                    ]),
                "npm install @bytecodealliance/componentize-js (node 18 or later and npm are needed; is the npm registry reachable?)",
            )?;
            write(&installed, b"")?;
        }
        Ok(prefix)
    }
    fn command(&self, prefix: &Path, out: &Path) -> Command {
        let example = example_dir();
        let mut cmd = Command::new(prefix.join("node_modules/.bin/componentize-js"));
        cmd.arg(example.join("js/plugin.js"))
            .arg("--wit")
            .arg(example.join("wit"))
            .args(["--world-name", "plugin"])
            .args(JS_FLAGS)
            .arg("--out")
            .arg(out);
        cmd
    }
}

/// Builds with `builder` unless the cache has the output for these sources, then puts the
/// output where the manifest names it.
fn cached_build(builder: &dyn Builder) -> Result<PathBuf, String> {
    let example = example_dir();
    let key = source_key(builder, &example)?;
    let plugins = Path::new(TARGET_DIR).join("plugins");
    let cache = plugins.join("cache");
    let cached = cache.join(format!("{}-{key}.wasm", builder.name()));
    if !cached.exists() {
        create_dir(&cache)?;
        let partial = cache.join(format!(
            "{}-{key}.{}.partial.wasm",
            builder.name(),
            std::process::id()
        ));
        let tool = builder.install(&plugins.join("tools"))?;
        let mut cmd = builder.command(&tool, &partial);
        run(&mut cmd, &format!("building the {} plugin", builder.name()))?;
        rename(&partial, &cached)?;
        prune(&cache, builder.name(), &cached);
    }
    let out_dir = example.join("target");
    let out = out_dir.join(format!("{}.wasm", builder.name()));
    let bytes = read(&cached)?;
    if std::fs::read(&out).ok().as_deref() != Some(&bytes[..]) {
        create_dir(&out_dir)?;
        let partial = out_dir.join(format!(
            "{}.{}.partial.wasm",
            builder.name(),
            std::process::id()
        ));
        write(&partial, &bytes)?;
        rename(&partial, &out)?;
    }
    Ok(out)
}

/// Removes the outputs of `name` other than `keep`: they were built from older sources.
fn prune(cache: &Path, name: &str, keep: &Path) {
    let Ok(entries) = std::fs::read_dir(cache) else {
        return;
    };
    let prefix = format!("{name}-");
    for path in entries.flatten().map(|e| e.path()) {
        let stale = path != keep
            && path.file_name().and_then(|n| n.to_str()).is_some_and(|n| {
                n.starts_with(&prefix) && n.ends_with(".wasm") && !n.contains(".partial.")
            });
        if stale {
            let _ = std::fs::remove_file(&path);
        }
    }
}

/// The first 16 hex digits of the SHA-256 of the tool's name and version, every file of the
/// WIT, and the plugin's sources.
fn source_key(builder: &dyn Builder, example: &Path) -> Result<String, String> {
    let mut files = Vec::new();
    wit_files(&example.join("wit"), &mut files)?;
    files.sort();
    files.extend(builder.sources().iter().map(|s| example.join(s)));
    let mut hash = Sha256::new();
    hash.update(builder.tool().as_bytes());
    for file in &files {
        let rel = file.strip_prefix(example).unwrap_or(file);
        hash.update(rel.to_string_lossy().as_bytes());
        hash.update([0]);
        let bytes = read(file)?;
        hash.update((bytes.len() as u64).to_le_bytes());
        hash.update(&bytes);
    }
    Ok(hash.finalize()[..8]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect())
}

fn wit_files(dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), String> {
    let entries =
        std::fs::read_dir(dir).map_err(|e| format!("cannot list {}: {e}", dir.display()))?;
    for entry in entries {
        let path = entry
            .map_err(|e| format!("cannot list {}: {e}", dir.display()))?
            .path();
        if path.is_dir() {
            wit_files(&path, out)?;
        } else if path.extension().is_some_and(|e| e == "wit") {
            out.push(path);
        }
    }
    Ok(())
}

/// Runs `cmd` to its end; a failure names `what` and the last lines the command printed.
fn run(cmd: &mut Command, what: &str) -> Result<(), String> {
    let program = cmd.get_program().to_string_lossy().into_owned();
    let output: Output = cmd
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("{what}: cannot run {program}: {e}"))?;
    if output.status.success() {
        return Ok(());
    }
    let text = format!(
        "{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    let lines: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    // The lines that say what went wrong, without stack frames; else the last lines.
    let errors: Vec<&str> = lines
        .iter()
        .copied()
        .filter(|l| l.to_ascii_lowercase().contains("error"))
        .filter(|l| {
            let rest = l.strip_prefix("npm error").unwrap_or(l).trim();
            !rest.is_empty() && !rest.starts_with("at ") && !rest.starts_with('}')
        })
        .take(5)
        .collect();
    let said = if errors.is_empty() {
        lines[lines.len().saturating_sub(6)..].join(" | ")
    } else {
        errors.join(" | ")
    };
    Err(format!(
        "{what}: {program} failed ({}): {said}",
        output.status
    ))
}

/// One line on stderr, past the test harness's capture, so that a long first run says why.
fn say(line: &str) {
    let _ = writeln!(std::io::stderr(), "membrane plugins: {line}");
}

fn create_dir(dir: &Path) -> Result<(), String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))
}

fn read(path: &Path) -> Result<Vec<u8>, String> {
    std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))
}

fn write(path: &Path, bytes: &[u8]) -> Result<(), String> {
    std::fs::write(path, bytes).map_err(|e| format!("cannot write {}: {e}", path.display()))
}

fn rename(from: &Path, to: &Path) -> Result<(), String> {
    std::fs::rename(from, to)
        .map_err(|e| format!("cannot move {} to {}: {e}", from.display(), to.display()))
}
