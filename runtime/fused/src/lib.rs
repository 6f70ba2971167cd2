//! `placement = "fused"`: a module composed at load with the providers it links to that are
//! `fused` too, into one component, so that the links between them are calls inside one
//! component instead of host crossings.
//!
//! What fuses, read from the declaration alone (`group`): a link whose importer and
//! provider are both `fused` modules. Links to `isolated` or `process` modules, and to the
//! host, stay ordinary links. Fusing is transitive: a fused importer `a` of a fused `b` that
//! links to a fused `c` is composed with both `b` and `c` (each instantiated once inside the
//! composition, however many members link to it).
//!
//! What the composed component is: the importer's own exports, nothing else; its imports
//! are WASI and the non-fused links of every member, forwarded by the host with the usual
//! load-time type checks. It replaces the importer's component in the importer's instances
//! (the importer's pool, limits and generation), so:
//! - one `Store` per instance for the whole composition, one memory limit, one timeout and
//!   fuel budget (the importer's), one fate: a trap in a provider's part fails the
//!   importer's call and discards the whole instance;
//! - one set of grants: the members share the importer's WASI context, which is why the
//!   grants of a fused link's two sides must be equal (`group::check`);
//! - the providers remain modules of their own: their own instances serve `App::call`, other
//!   importers and the links of non-fused importers, under their own limits.
//!
//! The composition is made with `wac-graph` (`compose`) and then compiled as any
//! component; the compile cache keys it by the composed bytes. The module keeps the hash
//! of its own component (what `membrane status` shows and a reload compares).
//!
//! Live upgrades (`group::check_upgrade`): a fused importer is not recomposed while the
//! app runs; a change to it is refused with a message to restart the app. A fused provider
//! can be upgraded (its own instances take the new version), but the copy composed into its
//! importers keeps the version they were loaded with until the app is loaded again.

pub mod boundary;
pub(crate) mod group;
pub(crate) mod prepare;

// The core's modules, under the names this crate's files use for them.
use membrane_core::{cache, capability, compile, error, link, names, semver, spec, transport};

pub use boundary::Fused;

use std::collections::BTreeMap;

use wac_graph::types::Package;
use wac_graph::{CompositionGraph, EncodeOptions, NodeId, PackageId, Processor};

use crate::error::{Error, ErrorKind, Result};
use crate::link::LinkInfo;
use crate::names::split_version;
use group::Wire;

/// A composition made by [`compose`].
#[derive(Debug)]
pub(crate) struct Composed {
    /// The component: the root's exports, the imports left unsatisfied by the members.
    pub bytes: Vec<u8>,
    /// The fused links it satisfies inside, with the names as imported and exported.
    pub links: Vec<LinkInfo>,
    /// Fused links whose importer does not import the interface (nothing to wire).
    pub unused: Vec<Wire>,
}

/// Composes `root` with the members `wires` reach: every member of `parts` is instantiated
/// once, each wire's import of its importer is given the matching export of its provider
/// (same interface, semver-compatible version), and the root's exports are exported.
/// `parts` holds the component bytes of the root and of every provider of `wires`.
pub(crate) fn compose(
    root: &str,
    parts: &BTreeMap<&str, &[u8]>,
    wires: &[Wire],
) -> Result<Composed> {
    let mut graph = CompositionGraph::new();
    let mut packages: BTreeMap<&str, PackageId> = BTreeMap::new();
    for (&name, &bytes) in parts {
        // Package names only key the graph; module names are unique and valid in them.
        let package = Package::from_bytes(
            &format!("membrane-fused:{name}"),
            None,
            bytes.to_vec(),
            graph.types_mut(),
        )
        .map_err(|e| {
            Error::new(
                ErrorKind::InvalidComponent,
                format!("module `{name}`: its component cannot be read to fuse it into `{root}`"),
            )
            .with_module(root)
            .with_source(e)
        })?;
        let id = graph
            .register_package(package)
            .map_err(|e| internal(root, "registering a member", e))?;
        packages.insert(name, id);
    }
    let instances: BTreeMap<&str, NodeId> = packages
        .iter()
        .map(|(&name, &id)| (name, graph.instantiate(id)))
        .collect();
    let mut links = Vec::new();
    let mut unused = Vec::new();
    for w in wires {
        let (Some(&importer), Some(&provider)) = (
            instances.get(w.importer.as_str()),
            instances.get(w.provider.as_str()),
        ) else {
            return Err(internal(
                root,
                "wiring a fused link",
                format!("no component for `{}` or `{}`", w.importer, w.provider),
            ));
        };
        let imports = names(&graph, packages[w.importer.as_str()], Side::Imports);
        let Some(import) = imports.iter().find(|i| key_serves(&w.key, i)) else {
            unused.push(w.clone());
            continue;
        };
        let exports = names(&graph, packages[w.provider.as_str()], Side::Exports);
        let export = provider_export(w, import, &exports)?;
        let node = graph
            .alias_instance_export(provider, &export)
            .map_err(|e| internal(root, "aliasing a provider's export", e))?;
        graph
            .set_instantiation_argument(importer, import, node)
            .map_err(|e| {
                Error::link(format!(
                    "module `{}` imports `{import}`, fused with module `{}`, but the `{export}` that `{}` exports does not match it; \
                     make the interface versions agree, or set placement = \"isolated\" on one of them to have the link checked function by function",
                    w.importer, w.provider, w.provider
                ))
                .with_module(&w.importer)
                .with_export(import.as_str())
                .with_key(format!("modules.{}.links.{}", w.importer, w.key))
                .with_source(e)
            })?;
        links.push(LinkInfo {
            importer: w.importer.clone(),
            import: import.clone(),
            provider: w.provider.clone(),
            export,
            fused: true,
        });
    }
    let Some(&top) = instances.get(root) else {
        return Err(internal(root, "composing", "the root has no component"));
    };
    for name in names(&graph, packages[root], Side::Exports) {
        let node = graph
            .alias_instance_export(top, &name)
            .map_err(|e| internal(root, "aliasing an export", e))?;
        graph
            .export(node, name)
            .map_err(|e| internal(root, "exporting", e))?;
    }
    let options = EncodeOptions {
        processor: Some(Processor {
            name: "membrane",
            version: env!("CARGO_PKG_VERSION"),
        }),
        // wasmtime validates the composition when it compiles it; validating here too made
        // composing 5x slower (50 ms instead of 10 for bench_driver + bench_provider).
        validate: false,
        ..EncodeOptions::default()
    };
    let bytes = graph.encode(options).map_err(|e| {
        Error::link(format!(
            "module `{root}` cannot be composed with its fused providers; set placement = \"isolated\" on it to link them as separate modules"
        ))
        .with_module(root)
        .with_key(format!("modules.{root}.placement"))
        .with_source(e)
    })?;
    Ok(Composed {
        bytes,
        links,
        unused,
    })
}

#[derive(Clone, Copy)]
enum Side {
    Imports,
    Exports,
}

/// The import or export names of a registered package's world.
fn names(graph: &CompositionGraph, package: PackageId, side: Side) -> Vec<String> {
    let world = &graph.types()[graph[package].ty()];
    let items = match side {
        Side::Imports => &world.imports,
        Side::Exports => &world.exports,
    };
    items.keys().cloned().collect()
}

/// Whether the link key `key` (`ns:pkg/iface`, optionally `@version`) names the import
/// `import`: the rule link planning uses.
pub(crate) fn key_serves(key: &str, import: &str) -> bool {
    let (kb, kv) = split_version(key);
    let (base, version) = split_version(import);
    kb == base
        && kv.is_none_or(|kv| crate::semver::compatible(Some(kv), version) || Some(kv) == version)
}

/// The provider's export that serves `import`: the same interface at a compatible version.
fn provider_export(w: &Wire, import: &str, exports: &[String]) -> Result<String> {
    let (base, version) = split_version(import);
    let same: Vec<&String> = exports
        .iter()
        .filter(|e| split_version(e).0 == base)
        .collect();
    if let Some(e) = same
        .iter()
        .find(|e| crate::semver::compatible(version, split_version(e).1))
    {
        return Ok(e.to_string());
    }
    let (importer, provider) = (&w.importer, &w.provider);
    let why = if same.is_empty() {
        format!(
            "`{provider}` does not export `{base}`; it exports: {}",
            if exports.is_empty() {
                "nothing".to_string()
            } else {
                exports.join(", ")
            }
        )
    } else {
        let found: Vec<&str> = same
            .iter()
            .map(|e| split_version(e).1.unwrap_or("no version"))
            .collect();
        format!(
            "`{provider}` exports version {} of `{base}`, which cannot serve it: a provider needs the same major version (the same minor for 0.x) and at least the imported version",
            found.join(", ")
        )
    };
    Err(Error::link(format!(
        "module `{importer}` imports `{import}`, linked to fused module `{provider}`, but {why}"
    ))
    .with_module(importer)
    .with_export(import)
    .with_key(format!("modules.{importer}.links.{}", w.key)))
}

/// A step of the composition that should not fail for components the parser accepted.
fn internal(
    root: &str,
    step: &str,
    e: impl Into<Box<dyn std::error::Error + Send + Sync>>,
) -> Error {
    Error::link(format!(
        "module `{root}`: composing it with its fused providers failed while {step}; set placement = \"isolated\" on it to link them as separate modules"
    ))
    .with_module(root)
    .with_key(format!("modules.{root}.placement"))
    .with_source(e)
}
