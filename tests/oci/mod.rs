//! Components from OCI registries (`component = "oci://..."`), against a real registry
//! (the CNCF distribution registry, [`registry`]): push, pull once into the cache, pinning
//! by digest and by `membrane lock`, and what a registry must not get away with (altered
//! blobs, oversized answers, other artifacts), through the `membrane` command and the
//! library alike.

mod auth;
mod bounds;
mod layouts;
mod lock;
mod pull;
pub mod registry;

use std::path::Path;
use std::process::Command;
use std::sync::Arc;

use membrane::oci::{OciError, OciFetcher, Pushed, Settings, World};
use membrane::{App, Config, Manifest, OciRef, Runtime, Val};

use crate::common;

/// The greeting module of the tests' manifests, and its function.
pub const MODULE: &str = "greet";
pub const HELLO: &str = "acme:greet/api#hello";

/// A fetcher keeping its artifacts in `cache` (a directory of the test's own), with no
/// settings from the environment (no credentials, no insecure hosts).
pub fn fetcher(cache: &Path) -> OciFetcher {
    OciFetcher::with_settings(cache, Settings::new())
}

/// A runtime whose `oci://` components go through `fetcher`; compiled code goes to the
/// tests' shared cache.
pub fn runtime_with(fetcher: OciFetcher) -> Runtime {
    let mut config: Config = common::config();
    config.fetcher = Some(Arc::new(fetcher));
    Runtime::new(config).expect("runtime")
}

/// Loads the manifest `dir/membrane.toml` (with its lock, if any) with a fetcher keeping
/// artifacts in `cache`.
pub async fn load(dir: &Path, cache: &Path) -> membrane::Result<App> {
    runtime_with(fetcher(cache))
        .load(dir.join("membrane.toml"))
        .await
}

/// The greeting `module` answers to `name`.
pub async fn hello(app: &App, name: &str) -> String {
    let out = app
        .call(MODULE, HELLO, &[Val::String(name.into())])
        .await
        .expect("the call answers");
    common::text_of(&out[0])
}

/// Writes a manifest of one module, `greet`, whose component is `component`.
pub fn manifest(dir: &Path, component: &str) {
    common::write_manifest(
        dir,
        &format!("[modules.{MODULE}]\ncomponent = \"{component}\"\n"),
    );
}

/// Pushes the component file `path` to `reference` with the library.
pub async fn push(reference: &str, path: &str) -> Pushed {
    let r = OciRef::parse(reference).expect("a reference");
    let bytes = std::fs::read(path).expect("the component");
    let scratch = tempfile::tempdir().unwrap();
    fetcher(scratch.path())
        .push(&r, bytes.into(), World::default())
        .await
        .expect("the push succeeds")
}

/// The `membrane` command as the tests start it, with `cache` as its cache directory (so
/// that what it pulls is the test's own) and nothing from the environment that changes how
/// registries are reached.
pub fn membrane_in_cache(cache: &Path) -> Command {
    let mut cmd = common::membrane_command();
    cmd.env("MEMBRANE_CACHE_DIR", cache)
        .env("DOCKER_CONFIG", cache.join("no-docker-config"));
    for v in [
        "MEMBRANE_OCI_USERNAME",
        "MEMBRANE_OCI_PASSWORD",
        "MEMBRANE_OCI_REGISTRY",
        "MEMBRANE_OCI_INSECURE",
        "MEMBRANE_OCI_CA_FILE",
    ] {
        cmd.env_remove(v);
    }
    cmd
}

/// The registry's typed error behind a load's error.
pub fn oci_error(e: &membrane::Error) -> &OciError {
    OciError::find(e)
        .or_else(|| e.problems().iter().find_map(|p| OciError::find(p)))
        .unwrap_or_else(|| panic!("no registry error behind: {}", membrane::chain(e)))
}

/// The component files the cache at `cache` holds.
pub fn cached_components(cache: &Path) -> Vec<String> {
    std::fs::read_dir(cache.join("oci/sha256"))
        .map(|d| {
            d.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.ends_with(".wasm"))
                .collect()
        })
        .unwrap_or_default()
}

/// Parses the manifest at `dir` as loading does (with its lock).
pub fn read_manifest(dir: &Path) -> membrane::Result<Manifest> {
    Manifest::from_file(dir.join("membrane.toml"))
}
