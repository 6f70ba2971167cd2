//! Placements as one seam: each placement (`isolated`, `fused`, `process`, `remote`) is one
//! implementation of [`Boundary`], registered with the runtime, and loading, the gate of an
//! upgrade, validation and status ask the registered boundaries instead of matching on the
//! placement. A placement whose implementation is not registered (its feature is off) is
//! refused when the app is checked, naming the feature.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::compile::Compiled;
use crate::error::{Error, Problems, Result};
use crate::extensions::Extensions;
use crate::link::planned::{Link, LinkInfo};
use crate::module::Module;
use crate::spec::{AppSpec, ModuleSpec, Placement};
use crate::transport::{BoxFuture, Transport};

/// An app's modules by name, as the placements' rules read them.
pub type Decl<'a> = BTreeMap<&'a str, &'a ModuleSpec>;

/// What a boundary starts a compiled module with.
pub struct StartCx<'a> {
    /// How the engine is configured (a worker makes one of its own alike).
    pub engine: EngineSettings,
    /// The program a worker process runs (`None`: this executable).
    pub worker_program: Option<&'a std::path::Path>,
    /// What the placements attached to the app as it loaded.
    pub extensions: &'a Extensions,
    /// The module, compiled.
    pub compiled: &'a Compiled,
    /// Its links, planned and type-checked.
    pub links: &'a [Link],
    /// The app's modules, by name (providers of its links).
    pub modules: &'a BTreeMap<String, Arc<Module>>,
    /// The module's metrics.
    pub metrics: &'a Arc<crate::metrics::ModuleMetrics>,
}

/// Components a boundary replaces before compilation (fused modules are compiled as their
/// composition), and gives back their identity after.
pub trait Prepared: Send {
    /// The modules to compile, with replaced components where this boundary replaces them.
    fn swap(&self, modules: BTreeMap<String, ModuleSpec>) -> BTreeMap<String, ModuleSpec>;
    /// The compiled modules, each with its own identity back (source, hash, directories).
    fn restore(&self, compiled: BTreeMap<String, Compiled>) -> BTreeMap<String, Compiled>;
    /// Links served inside the replaced components, reported like the others.
    fn report(&self, links: &mut Vec<LinkInfo>);
    /// Warnings for the app's list.
    fn warnings(&self) -> Vec<String>;
}

/// One placement's rules and how it starts a module. Every method but
/// [`Boundary::placement`] has a default that does nothing, as for `isolated`.
pub trait Boundary: Send + Sync + 'static {
    /// The placement this boundary implements.
    fn placement(&self) -> Placement;

    /// Checks of the declaration alone; `app` is the whole app (a boundary looks at the
    /// modules it places and at what links to them).
    fn check_declaration(&self, _app: &AppSpec, _problems: &mut Problems) {}

    /// The links `module`'s component is planned with, when this boundary changes them (a
    /// composed importer imports what its members link outside); `None`: its own.
    fn planned_links(&self, _decl: &Decl<'_>, _module: &str) -> Option<BTreeMap<String, String>> {
        None
    }

    /// Replaces components before compilation; `None` when it replaces none.
    fn prepare<'a>(
        &'a self,
        _modules: &'a BTreeMap<String, ModuleSpec>,
        _max_component: u64,
        _problems: &'a mut Problems,
    ) -> BoxFuture<'a, Option<Box<dyn Prepared>>> {
        Box::pin(async { None })
    }

    /// Checks of the planned links and routes: what a module of this placement cannot be
    /// part of.
    fn check_links(
        &self,
        _specs: &BTreeMap<String, ModuleSpec>,
        _links: &BTreeMap<String, Vec<Link>>,
        _routes: &[(&str, &str)],
        _problems: &mut Problems,
    ) {
    }

    /// Checks of an upgrade from `old` to `new` of the modules named in `changed`.
    fn check_upgrade(
        &self,
        _old: &Decl<'_>,
        _new: &Decl<'_>,
        _changed: &[&str],
        _problems: &mut Problems,
    ) {
    }

    /// Whether a live upgrade may move a module into or out of this placement. Importers'
    /// links are built for their provider's boundary (typed fast paths in this process,
    /// dynamic ones for a worker or another host), so a boundary that changes them answers
    /// `false` and such a move takes a restart.
    fn moves_at_upgrade(&self) -> bool {
        true
    }

    /// Whether a WASI 0.3 module may have this placement: its calls then run where
    /// concurrency support is on and many share an instance (`p3/`). `false` refuses such a
    /// module at load with the key to change.
    fn carries_wasi_p3(&self) -> bool {
        false
    }

    /// Connects what the app's modules of this placement need before they start (the
    /// remote placement's NATS connection), into `extensions`; `connect` is false for tools
    /// that load an app without reaching other machines.
    fn attach<'a>(
        &'a self,
        _app: &'a AppSpec,
        _connect: bool,
        _extensions: &'a mut Extensions,
    ) -> BoxFuture<'a, Result<()>> {
        Box::pin(async { Ok(()) })
    }

    /// Starts serving a compiled module of this placement: `None` serves it in this
    /// process's Stores; `Some` forwards its calls elsewhere.
    fn start(&self, _cx: &StartCx<'_>) -> Result<Option<Arc<dyn Transport>>> {
        Ok(None)
    }
}

/// The boundaries a runtime knows, one per placement.
#[derive(Clone, Default)]
pub struct Boundaries {
    all: Vec<Arc<dyn Boundary>>,
}

impl std::fmt::Debug for Boundaries {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.all.iter().map(|b| b.placement()))
            .finish()
    }
}

impl Boundaries {
    /// The `isolated` placement only.
    pub fn isolated() -> Self {
        Boundaries {
            all: vec![Arc::new(Isolated)],
        }
    }

    /// Registers (or replaces) the boundary of its placement.
    pub fn register(&mut self, b: Arc<dyn Boundary>) {
        self.all.retain(|x| x.placement() != b.placement());
        self.all.push(b);
    }

    /// Every registered boundary.
    pub fn iter(&self) -> impl Iterator<Item = &Arc<dyn Boundary>> {
        self.all.iter()
    }

    /// The boundary of `p`, if it is registered.
    pub fn get(&self, p: Placement) -> Option<&Arc<dyn Boundary>> {
        self.all.iter().find(|b| b.placement() == p)
    }

    /// Refuses modules whose placement has no registered boundary.
    pub fn check_known(&self, app: &AppSpec, problems: &mut Problems) {
        for (name, m) in &app.modules {
            if self.get(m.placement).is_none() {
                problems.push(
                    Error::manifest(format!(
                        "module `{name}`: placement \"{}\" is not built into this program; \
                         build membrane with the `{}` feature, or choose another placement",
                        m.placement,
                        m.placement.as_str()
                    ))
                    .with_module(name.as_str())
                    .with_key(format!("modules.{name}.placement")),
                );
            }
        }
    }

    /// The links `module` is planned with (see [`Boundary::planned_links`]).
    pub fn planned_links(&self, decl: &Decl<'_>, module: &str) -> BTreeMap<String, String> {
        self.iter()
            .find_map(|b| b.planned_links(decl, module))
            .unwrap_or_else(|| {
                decl.get(module)
                    .map(|m| m.links.clone())
                    .unwrap_or_default()
            })
    }
}

/// `placement = "isolated"`: the module runs in this process's Stores, nothing to add.
pub struct Isolated;

impl Boundary for Isolated {
    fn placement(&self) -> Placement {
        Placement::Isolated
    }

    fn carries_wasi_p3(&self) -> bool {
        true
    }
}

/// How the engine of a runtime is configured, for a worker that makes its own.
#[derive(Debug, Clone, Copy)]
pub struct EngineSettings {
    /// How often the epoch clock ticks.
    pub epoch_tick: std::time::Duration,
    /// The wasm stack of every call.
    pub max_wasm_stack: usize,
    /// Whether fuel is metered.
    pub fuel: bool,
}

/// The declaration of `modules`, borrowed.
pub fn decl(modules: &BTreeMap<String, ModuleSpec>) -> Decl<'_> {
    modules.iter().map(|(n, m)| (n.as_str(), m)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A build without a placement's crate refuses modules that ask for it, naming the
    /// feature to turn on; the placements it has pass.
    #[test]
    fn a_placement_not_built_in_is_refused_with_its_feature() {
        let spec = AppSpec::new()
            .module("here", ModuleSpec::from_file("a.wasm"))
            .module(
                "away",
                ModuleSpec::from_file("b.wasm").placement(Placement::Process),
            );
        let mut problems = Problems::default();
        Boundaries::isolated().check_known(&spec, &mut problems);
        let e = problems.into_result().expect_err("refused");
        let all: Vec<&Error> = e.problems().iter().chain(std::iter::once(&e)).collect();
        let p = all
            .iter()
            .find(|p| p.key() == Some("modules.away.placement"))
            .unwrap_or_else(|| panic!("{e}"));
        assert_eq!(p.kind(), crate::error::ErrorKind::Manifest);
        assert_eq!(p.module(), Some("away"));
        assert!(p.to_string().contains("the `process` feature"), "{p}");
        assert!(!all.iter().any(|p| p.module() == Some("here")), "{e}");
    }
}
