//! Helpers shared by the test modules.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use membrane::{App, AppSpec, Config, ModuleSpec, Runtime, Val};

pub use membrane_test_artifacts as guests;

pub mod allocs;
mod gate;
mod wait;

pub use gate::Gate;
pub use wait::{HANG_GUARD, eventually, eventually_blocking};

/// The repository's root (the tests belong to runtime/membrane, two levels down).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The compile cache the tests share: every runtime of the tests and every `membrane`
/// process they start keeps compiled components here, so a guest is compiled once (and
/// later runs start warm). Sharing is safe: entries are keyed by the SHA-256 of the
/// component and live in a directory per engine configuration. Under the target
/// directory, private to this build; the runtime makes it 0700. Tests about the cache
/// itself (misses, damaged entries, `MEMBRANE_NO_CACHE`) use caches of their own.
pub fn cache_dir() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).join("membrane-cache")
}

/// `Config::default()` with the shared compile cache.
pub fn config() -> Config {
    let mut config = Config::default();
    config.cache_dir = Some(cache_dir());
    config
}

/// A runtime of [`config`].
pub fn runtime() -> Runtime {
    Runtime::new(config()).expect("runtime")
}

/// A runtime whose `process` workers are the `membrane` binary (this test binary cannot
/// be one).
pub fn worker_runtime() -> Runtime {
    let mut config = config();
    config.worker_program = Some(env!("CARGO_BIN_EXE_membrane").into());
    Runtime::new(config).expect("runtime")
}

/// Loads an app of one module called `m`.
pub async fn app_of(module: ModuleSpec) -> App {
    runtime()
        .load_spec(AppSpec::new().module("m", module))
        .await
        .expect("app loads")
}

/// The probe guest with the grants and limits `f` adds.
pub async fn probe(f: impl FnOnce(ModuleSpec) -> ModuleSpec) -> App {
    app_of(f(ModuleSpec::from_file(guests::PROBE))).await
}

pub const CAPS: &str = "membrane-test:probe/caps";

/// Calls `membrane-test:probe/caps#func` on module `m`.
pub async fn caps(app: &App, func: &str, args: &[Val]) -> membrane::Result<Vec<Val>> {
    app.call("m", &format!("{CAPS}#{func}"), args).await
}

pub fn s(text: &str) -> Val {
    Val::String(text.into())
}

/// Unwraps a `result<string, string>`-like value into Ok(text) / Err(text).
pub fn result_text(vals: &[Val]) -> Result<String, String> {
    match &vals[0] {
        Val::Result(Ok(Some(v))) => Ok(text_of(v)),
        Val::Result(Ok(None)) => Ok(String::new()),
        Val::Result(Err(Some(v))) => Err(text_of(v)),
        Val::Result(Err(None)) => Err(String::new()),
        other => panic!("not a result: {other:?}"),
    }
}

pub fn text_of(v: &Val) -> String {
    match v {
        Val::String(s) => s.clone(),
        other => membrane::to_wave(other).unwrap(),
    }
}

/// Where the `membrane` processes of the tests keep their admin tokens.
pub fn runtime_dir() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).join("membrane-run")
}

/// The `membrane` binary as the tests start it: the shared compile cache, the tests'
/// runtime directory, and no log filter from the environment.
pub fn membrane_command() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_membrane"));
    cmd.env_remove("MEMBRANE_LOG")
        .env("MEMBRANE_CACHE_DIR", cache_dir())
        .env("MEMBRANE_RUNTIME_DIR", runtime_dir());
    cmd
}

/// Runs the `membrane` binary.
pub fn membrane(args: &[&str]) -> Output {
    membrane_in(None, args)
}

pub fn membrane_in(dir: Option<&Path>, args: &[&str]) -> Output {
    let mut cmd = membrane_command();
    cmd.args(args);
    if let Some(d) = dir {
        cmd.current_dir(d);
    }
    cmd.output().expect("membrane runs")
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A failed command must fail cleanly: non-zero status, a message, never a panic.
pub fn assert_clean_failure(o: &Output, expect_in_stderr: &str) {
    let err = stderr(o);
    assert!(
        !o.status.success(),
        "expected failure, got success; stderr: {err}"
    );
    assert!(!err.contains("panicked"), "the host panicked: {err}");
    assert!(
        err.contains(expect_in_stderr),
        "stderr lacks {expect_in_stderr:?}: {err}"
    );
}

/// Writes a manifest into `dir` and returns its path.
pub fn write_manifest(dir: &Path, text: &str) -> PathBuf {
    let path = dir.join("membrane.toml");
    std::fs::write(&path, text).unwrap();
    path
}

/// Builds a component for `world` of the WIT text `wit`. Its core module is `core` (WAT
/// text), or, when `None`, a dummy whose functions trap: enough for load-time checks.
pub fn synth_with(wit: &str, world: &str, core: Option<&str>) -> Vec<u8> {
    let mut resolve = wit_parser::Resolve::default();
    let pkg = resolve.push_str("synth.wit", wit).expect("WIT parses");
    let world = resolve
        .select_world(&[pkg], Some(world))
        .expect("world exists");
    let mut module = match core {
        Some(wat) => wat::parse_str(wat).expect("WAT parses"),
        None => {
            wit_component::dummy_module(&resolve, world, wit_parser::ManglingAndAbi::Standard32)
        }
    };
    wit_component::embed_component_metadata(
        &mut module,
        &resolve,
        world,
        wit_component::StringEncoding::UTF8,
    )
    .unwrap();
    wit_component::ComponentEncoder::default()
        .module(&module)
        .unwrap()
        .validate(true)
        .encode()
        .expect("component encodes")
}

/// [`synth_with`] a dummy core module.
pub fn synth(wit: &str, world: &str) -> Vec<u8> {
    synth_with(wit, world, None)
}
