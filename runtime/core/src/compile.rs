//! Turning a module's declaration into compiled code: read the component's bytes, say
//! what a file is when it is not a component, refuse memories and tables that start past
//! the limits before compiling, compile (through the cache when there is one), and prepare
//! the module's capabilities and limits.

use std::sync::Arc;

use wasmtime::Engine;
use wasmtime::component::Component;

use crate::cache::Cache;
use crate::capability::CAPABILITIES;
use crate::capability::protect::{DirId, read_component};
use crate::capability::walk::Refused;
use crate::error::{Error, ErrorKind, Problems, Result};
use crate::limits::LIMITS;
use crate::p3::Wasi;
#[cfg(feature = "p3")]
use crate::p3::engine::P3Engine;
use crate::spec::{ComponentSource, Limits, ModuleSpec};
use crate::unit::{ModuleCx, Policy};

/// A module compiled and its units prepared, but not yet linked.
pub struct Compiled {
    pub name: String,
    pub component: Component,
    pub policy: Policy,
    pub spec: ModuleSpec,
    /// The directories above the component file (none for bytes), for the overlap checks.
    pub component_dirs: Vec<DirId>,
    /// The SHA-256 of the component bytes, in hex.
    pub hash: String,
    /// Which WASI the component is built for (and so which engine compiled it).
    pub wasi: Wasi,
}

/// The engines a module may be compiled on: the runtime's first, for WASI 0.2 components,
/// and the one with concurrency support, for WASI 0.3 components (`p3/engine.rs`).
#[derive(Clone, Copy)]
pub struct Engines<'a> {
    pub p2: &'a Engine,
    pub p2_cache: Option<&'a Cache>,
    #[cfg(feature = "p3")]
    pub p3: &'a P3Engine,
}

impl Engines<'_> {
    /// Compiles `bytes` on the engine of `wasi`; `None` for WASI 0.3 in a build without
    /// the `p3` feature.
    fn compile(&self, wasi: Wasi, bytes: &[u8], hash: &str) -> Option<wasmtime::Result<Component>> {
        let (engine, cache) = match wasi {
            Wasi::P2 => (self.p2, self.p2_cache),
            #[cfg(feature = "p3")]
            Wasi::P3 => (&self.p3.engine, self.p3.cache.as_deref()),
            #[cfg(not(feature = "p3"))]
            Wasi::P3 => return None,
        };
        Some(match cache {
            Some(cache) => cache.component(engine, bytes, hash),
            None => Component::new(engine, bytes),
        })
    }
}

/// Reads the component bytes of a module, and for a file the directories its path depends
/// on (for the overlap checks, read through the same handles). A file must be a regular
/// file of at most `max` bytes (`[app] max_component_size`), checked before it is read.
pub fn read_source(
    name: &str,
    source: &ComponentSource,
    max: u64,
) -> Result<(Arc<[u8]>, Vec<DirId>)> {
    let path = match source {
        ComponentSource::Bytes(b) => return Ok((b.clone(), Vec::new())),
        ComponentSource::File(path) => path,
        // Loads, reloads and upgrades fetch these first (`fetch.rs`); this is a caller
        // that skipped that.
        ComponentSource::Oci(r) => {
            return Err(Error::new(
                ErrorKind::HostPanic,
                format!("module `{name}`: component {r} was not fetched before it was read; this is a bug, please report it"),
            )
            .with_module(name)
            .with_key(format!("modules.{name}.component")));
        }
    };
    let shown = path.display();
    let key = format!("modules.{name}.component");
    match read_component(path, max) {
        Ok((b, d)) => Ok((Arc::from(b), d)),
        Err(Refused::Io(e)) => {
            let (kind, hint) = if e.kind() == std::io::ErrorKind::NotFound {
                (
                    ErrorKind::NotFound,
                    "; build it (`membrane build`) or fix `component`",
                )
            } else {
                (ErrorKind::Io, "")
            };
            Err(Error::new(
                kind,
                format!("module `{name}`: cannot read component {shown}{hint}"),
            )
            .with_module(name)
            .with_key(key)
            .with_source(e))
        }
        Err(Refused::NotRegular(what)) => Err(Error::new(
            ErrorKind::InvalidComponent,
            format!(
                "module `{name}`: component {shown} leads to {what}, not a regular file; \
                 point `component` at a .wasm file"
            ),
        )
        .with_module(name)
        .with_key(key)),
        Err(Refused::TooLarge(size)) => Err(Error::new(
            ErrorKind::InvalidComponent,
            format!(
                "module `{name}`: component {shown} is {}, more than [app] max_component_size ({}); \
                 raise max_component_size if the component is meant to be that large",
                crate::units::format_size(size),
                crate::units::format_size(max)
            ),
        )
        .with_module(name)
        .with_key("app.max_component_size")),
    }
}

/// Says what a file is when it is not a component, before handing it to the compiler.
pub fn check_header(name: &str, bytes: &[u8]) -> Result<()> {
    let bad = |why: &str| {
        Error::new(
            ErrorKind::InvalidComponent,
            format!("module `{name}`: {why}"),
        )
    };
    if bytes.len() < 8 || &bytes[..4] != b"\0asm" {
        return Err(bad(
            "the file is not WebAssembly (it does not start with \\0asm); point `component` at a .wasm component",
        ));
    }
    match bytes[4..8] {
        [0x0d, 0x00, 0x01, 0x00] => Ok(()),
        [0x01, 0x00, 0x00, 0x00] => Err(bad(
            "the file is a core WebAssembly module, not a component; build for wasm32-wasip2 or wrap it with `wasm-tools component new`",
        )),
        _ => Err(bad(
            "the file has an unknown WebAssembly version or layer; it is not a component this runtime supports",
        )),
    }
}

impl Compiled {
    /// Reads and compiles a validated module and prepares its units. Blocking: compilation
    /// takes milliseconds to seconds, so callers run it on a blocking thread.
    pub fn new(engines: Engines<'_>, cx: &ModuleCx<'_>, spec: ModuleSpec) -> Result<Compiled> {
        let name = cx.name;
        let policy = Policy::prepare(&[LIMITS, CAPABILITIES], cx);
        let bytes = read_source(name, &spec.source, cx.max_component);
        // Report grant problems and a missing file together.
        let (policy, (bytes, component_dirs)) = match (policy, bytes) {
            (Ok(p), Ok(b)) => (p, b),
            (Err(a), Err(b)) => {
                let mut p = Problems::default();
                p.push(a);
                p.push(b);
                return Err(p.into_result().unwrap_err());
            }
            (Err(e), _) | (_, Err(e)) => return Err(e),
        };
        check_header(name, &bytes)?;
        check_initial_sizes(name, &bytes, &spec.limits)?;
        let t = std::time::Instant::now();
        let hash = crate::cache::digest(&bytes);
        let wasi = crate::p3::detect::detect(&bytes);
        let invalid = |e: wasmtime::Error| {
            Error::new(
                ErrorKind::InvalidComponent,
                format!("module `{name}`: the component is invalid or uses features this runtime does not support"),
            )
            .with_source(e)
        };
        let unsupported = || {
            Error::new(
                ErrorKind::InvalidComponent,
                format!(
                    "module `{name}` is a WASI 0.3 component, and this build of Membrane runs \
                     WASI 0.2 components only; build it with the `p3` feature of the `membrane` \
                     crate (the `membrane` command has it), or build the module for WASI 0.2"
                ),
            )
            .with_module(name)
        };
        // A component the scan took for 0.2 that only the 0.3 engine takes is 0.3.
        let (component, wasi) = match engines.compile(wasi, &bytes, &hash) {
            Some(Ok(c)) => (c, wasi),
            Some(Err(e)) if wasi == Wasi::P2 => match engines.compile(Wasi::P3, &bytes, &hash) {
                Some(Ok(c)) => (c, Wasi::P3),
                Some(Err(_)) | None => return Err(invalid(e)),
            },
            Some(Err(e)) => return Err(invalid(e)),
            None => return Err(unsupported()),
        };
        tracing::trace!(target: "membrane::load", module = name, elapsed = ?t.elapsed(), "component ready");
        Ok(Compiled {
            name: name.to_string(),
            component,
            policy,
            spec,
            component_dirs,
            hash,
            wasi,
        })
    }
}

/// Refuses, before compiling, a component whose memories or tables start out larger than
/// its limits: it could never be instantiated, and compiling it would only cost time.
/// Malformed bytes are left for the compiler to describe.
fn check_initial_sizes(name: &str, bytes: &[u8], limits: &Limits) -> Result<()> {
    let (mut table, mut pages) = (0u64, 0u64);
    for payload in wasmparser::Parser::new(0).parse_all(bytes) {
        match payload {
            Ok(wasmparser::Payload::TableSection(reader)) => {
                for t in reader.into_iter().flatten() {
                    table = table.max(t.ty.initial);
                }
            }
            Ok(wasmparser::Payload::MemorySection(reader)) => {
                for m in reader.into_iter().flatten() {
                    pages = pages.max(m.initial);
                }
            }
            Ok(_) => {}
            Err(_) => return Ok(()),
        }
    }
    if table > crate::limits::MAX_TABLE_ELEMENTS as u64 {
        return Err(Error::new(
            ErrorKind::TableLimit,
            format!(
                "module `{name}`: a table starts with {table} elements, more than the limit of {}",
                crate::limits::MAX_TABLE_ELEMENTS
            ),
        ));
    }
    let bytes = pages.saturating_mul(64 << 10);
    if bytes > limits.memory {
        return Err(Error::new(
            ErrorKind::MemoryLimit,
            format!(
                "module `{name}`: its memory starts at {}, more than its limit of {}; raise [modules.{name}.limits] memory",
                crate::units::format_size(bytes),
                crate::units::format_size(limits.memory)
            ),
        ));
    }
    Ok(())
}

/// Without the `p3` feature (scripts/check-features.sh runs these: the workspace's tests
/// build with it).
#[cfg(all(test, not(feature = "p3")))]
mod without_p3 {
    use crate::error::ErrorKind;
    use crate::spec::{AppSpec, ModuleSpec};

    #[tokio::test]
    async fn a_wasi_03_component_is_refused_with_the_feature_to_turn_on() {
        let bytes = wat::parse_str(
            r#"(component
                (core module $m (func (export "run") (result i32) i32.const 0))
                (core instance $i (instantiate $m))
                (func $run (result (result)) (canon lift (core func $i "run")))
                (instance $cli (export "run" (func $run)))
                (export "wasi:cli/run@0.3.0" (instance $cli)))"#,
        )
        .unwrap();
        let rt = crate::Runtime::new(crate::Config::default()).unwrap();
        let spec = AppSpec::new().module("main", ModuleSpec::from_bytes(bytes));
        let e = match rt.load_spec(spec).await {
            Ok(_) => panic!("a WASI 0.3 component loaded without the p3 feature"),
            Err(e) => e,
        };
        let [e] = e.problems() else {
            panic!("one problem expected: {e}")
        };
        assert_eq!(e.kind(), ErrorKind::InvalidComponent, "{e}");
        assert_eq!(e.module(), Some("main"));
        assert!(e.to_string().contains("`p3` feature"), "{e}");
    }
}
