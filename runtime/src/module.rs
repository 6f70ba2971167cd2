//! What a module is: its compiled component, its pre-linked instantiation recipe, its
//! validated policy, and the exports resolved so far. Live instances are kept apart (the
//! idle list), so that a later version of a module can replace all of this as one unit.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use wasmtime::component::types::{ComponentItem, Type};
use wasmtime::component::{Component, ComponentExportIndex, InstancePre, Linker, Val};

use crate::capability::{Policy, RunContext};
use crate::error::{Error, ErrorKind, Problems, Result};
use crate::export::{ExportName, split_version};
use crate::instance::{HostState, LiveInstance};
use crate::pool::Pool;
use crate::runtime::RuntimeInner;
use crate::spec::{ComponentSource, Limits, ModuleSpec};
use crate::supervisor::Supervisor;
use crate::value::Function;

pub(crate) struct Module {
    pub(crate) name: Arc<str>,
    pub(crate) component: Component,
    pub(crate) pre: InstancePre<HostState>,
    pub(crate) policy: Policy,
    pub(crate) limits: Limits,
    pub(crate) epoch_tick: Duration,
    /// How many links of this module pin a provider instance (links that carry resources).
    pub(crate) sessions: usize,
    pub(crate) pool: Pool,
    pub(crate) supervisor: Supervisor,
    /// Whether the engine meters fuel (then every call gets a budget).
    pub(crate) metered: bool,
    exports: RwLock<HashMap<String, Arc<Function>>>,
}

/// A module compiled and validated, but not yet linked.
pub(crate) struct Compiled {
    pub(crate) name: String,
    pub(crate) component: Component,
    pub(crate) policy: Policy,
    pub(crate) spec: ModuleSpec,
}

/// Reads the component bytes of a module.
pub(crate) fn read_source(name: &str, source: &ComponentSource) -> Result<Arc<[u8]>> {
    match source {
        ComponentSource::Bytes(b) => Ok(b.clone()),
        ComponentSource::File(path) => std::fs::read(path).map(Arc::from).map_err(|e| {
            let (kind, hint) = if e.kind() == std::io::ErrorKind::NotFound {
                (
                    ErrorKind::NotFound,
                    "; build it (`membrane build`) or fix `component`",
                )
            } else {
                (ErrorKind::Io, "")
            };
            Error::new(
                kind,
                format!(
                    "module `{name}`: cannot read component {}{hint}",
                    path.display()
                ),
            )
            .with_source(e)
        }),
    }
}

/// Says what a file is when it is not a component, before handing it to the compiler.
pub(crate) fn check_header(name: &str, bytes: &[u8]) -> Result<()> {
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
    /// Reads, validates and compiles a module. Blocking: compilation takes milliseconds to
    /// seconds, so callers run it on a blocking thread.
    pub(crate) fn new(rt: &RuntimeInner, name: &str, spec: ModuleSpec) -> Result<Compiled> {
        if spec.limits.fuel.is_some() && !rt.config.fuel {
            return Err(Error::manifest(format!(
                "module `{name}` sets limits.fuel, but the runtime does not meter fuel; set Config::fuel = true \
                 (the membrane command does this by itself when a module sets fuel)"
            )));
        }
        let policy = Policy::prepare(name, &spec.grants);
        let bytes = read_source(name, &spec.source);
        // Report grant problems and a missing file together.
        let (policy, bytes) = match (policy, bytes) {
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
        let compiled = match &rt.cache {
            Some(cache) => cache.component(&rt.engine, &bytes),
            None => Component::new(&rt.engine, &bytes),
        };
        let component = compiled.map_err(|e| {
            Error::new(
                ErrorKind::InvalidComponent,
                format!("module `{name}`: the component is invalid or uses features this runtime does not support"),
            )
            .with_source(e)
        })?;
        tracing::trace!(target: "membrane::load", module = name, elapsed = ?t.elapsed(), "component ready");
        Ok(Compiled {
            name: name.to_string(),
            component,
            policy,
            spec,
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

impl Module {
    /// Pre-instantiates a compiled module against a linker that satisfies its imports.
    pub(crate) fn new(
        rt: &RuntimeInner,
        compiled: Compiled,
        linker: &Linker<HostState>,
        sessions: usize,
    ) -> Result<Module> {
        let name = compiled.name;
        let pre = linker.instantiate_pre(&compiled.component).map_err(|e| {
            Error::link(format!("module `{name}`: its imports cannot be satisfied")).with_source(e)
        })?;
        let supervisor = Supervisor::new(compiled.spec.restart);
        let pool = Pool::new(
            compiled.spec.limits.instances,
            compiled.spec.limits.queue,
            compiled.spec.lifecycle,
        );
        Ok(Module {
            name: name.into(),
            pool,
            supervisor,
            metered: rt.config.fuel,
            component: compiled.component,
            pre,
            policy: compiled.policy,
            limits: compiled.spec.limits,
            epoch_tick: rt.config.epoch_tick,
            sessions,
            exports: RwLock::new(HashMap::new()),
        })
    }

    /// Finds an exported function by its textual name, once; later lookups hit a cache.
    pub(crate) fn function(&self, text: &str) -> Result<Arc<Function>> {
        if let Some(f) = self
            .exports
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(text)
        {
            return Ok(f.clone());
        }
        let f = Arc::new(self.resolve(text)?);
        self.exports
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(text.to_string(), f.clone());
        Ok(f)
    }

    fn resolve(&self, text: &str) -> Result<Function> {
        let engine = self.pre.engine();
        let name = ExportName::parse(text)?;
        let ty = self.component.component_type();
        let missing = |what: String| Error::not_found(format!("module `{}` {what}", self.name));
        let (parent, item, canonical) = match name.interface {
            None => {
                let item = ty.get_export(engine, name.func).ok_or_else(|| {
                    missing(format!(
                        "has no root-level export `{}`; exports: {}",
                        name.func,
                        self.export_list()
                    ))
                })?;
                (None, item.ty, name.func.to_string())
            }
            Some(iface) => {
                let (base, version) = split_version(iface);
                let actual = ty
                    .exports(engine)
                    .map(|(n, _)| n)
                    .find(|n| *n == iface || (version.is_none() && split_version(n).0 == base))
                    .or_else(|| {
                        // A semver-compatible version (same major, or same minor for 0.x).
                        self.component.get_export_index(None, iface).and_then(|_| {
                            ty.exports(engine)
                                .map(|(n, _)| n)
                                .find(|n| split_version(n).0 == base)
                        })
                    })
                    .ok_or_else(|| {
                        missing(format!(
                            "does not export interface `{iface}`; exports: {}",
                            self.export_list()
                        ))
                    })?
                    .to_string();
                let iface_idx = self
                    .component
                    .get_export_index(None, &actual)
                    .ok_or_else(|| missing(format!("does not export interface `{iface}`")))?;
                let Some(ComponentItem::ComponentInstance(inst)) =
                    ty.get_export(engine, &actual).map(|e| e.ty)
                else {
                    return Err(missing(format!("export `{actual}` is not an interface")));
                };
                let item = inst.get_export(engine, name.func).ok_or_else(|| {
                    let funcs: Vec<String> =
                        inst.exports(engine).map(|(n, _)| n.to_string()).collect();
                    missing(format!(
                        "has no function `{}` in `{actual}`; it has: {}",
                        name.func,
                        funcs.join(", ")
                    ))
                })?;
                (Some(iface_idx), item.ty, format!("{actual}#{}", name.func))
            }
        };
        let ComponentItem::ComponentFunc(func) = item else {
            return Err(missing(format!("export `{canonical}` is not a function")));
        };
        let index: ComponentExportIndex = self
            .component
            .get_export_index(parent.as_ref(), name.func)
            .ok_or_else(|| missing(format!("has no function `{canonical}`")))?;
        Ok(Function {
            id: crate::value::next_function_id(),
            name: canonical,
            index,
            params: func.params().map(|(n, t)| (n.to_string(), t)).collect(),
            results: func.results().collect::<Vec<Type>>(),
        })
    }

    fn export_list(&self) -> String {
        let engine = self.pre.engine();
        let names: Vec<String> = self
            .component
            .component_type()
            .exports(engine)
            .map(|(n, _)| n.to_string())
            .collect();
        if names.is_empty() {
            "none".into()
        } else {
            names.join(", ")
        }
    }

    /// Calls an export on a pooled instance, within `outer` when the call comes through a
    /// link. The module's timeout covers waiting for an instance and running. Blocking.
    pub(crate) fn invoke(
        &self,
        func: &Function,
        args: &[Val],
        outer: Option<Instant>,
    ) -> Result<Vec<Val>> {
        let mut results = vec![Val::Bool(false); func.results.len()];
        self.invoke_into(func, args, &mut results, outer)?;
        Ok(results)
    }

    /// [`Module::invoke`] writing into `results` (the hot path of linked calls).
    pub(crate) fn invoke_into(
        &self,
        func: &Function,
        args: &[Val],
        results: &mut [Val],
        outer: Option<Instant>,
    ) -> Result<()> {
        self.supervised(|| self.invoke_admitted(func, args, results, outer))
    }

    /// Runs `call` if the module's circuit is closed (or this is its trial), and tells the
    /// supervisor how it went.
    pub(crate) fn supervised<T>(&self, call: impl FnOnce() -> Result<T>) -> Result<T> {
        let admission = self.supervisor.admit(&self.name)?;
        let outcome = call();
        self.supervisor.record(
            &self.name,
            admission,
            // A provider's failure is the provider's to count, not this module's.
            outcome
                .as_ref()
                .map(|_| ())
                .map_err(|e| if e.upstream { None } else { Some(e.kind()) }),
        );
        outcome
    }

    fn invoke_admitted(
        &self,
        func: &Function,
        args: &[Val],
        results: &mut [Val],
        outer: Option<Instant>,
    ) -> Result<()> {
        let now = Instant::now();
        let own = now + self.limits.timeout;
        let deadline = outer.map_or(own, |o| o.min(own));
        let mut lease = self.pool.acquire(&self.name, deadline)?;
        let mut instance = match lease.instance.take() {
            Some(i) => i,
            None => LiveInstance::new(self, None)?,
        };
        instance.call_into(self, func, args, results, now, Some(deadline))?;
        lease.recycle(instance);
        Ok(())
    }

    /// Creates idle instances ahead of calls. Blocking.
    pub(crate) fn prewarm(&self, n: usize) -> Result<usize> {
        self.pool.fill(n, || LiveInstance::new(self, None))
    }

    /// Runs `wasi:cli/run` on a fresh instance that gets the run's arguments and stdin.
    /// Returns the guest's exit status. Blocking.
    pub(crate) fn run(&self, run: &RunContext) -> Result<i32> {
        self.supervised(|| self.run_admitted(run))
    }

    fn run_admitted(&self, run: &RunContext) -> Result<i32> {
        let func = self.function("wasi:cli/run#run").map_err(|_| {
            Error::not_found(format!(
                "module `{}` does not export wasi:cli/run, so it cannot be run; it is a library module: use `membrane call`",
                self.name
            ))
        })?;
        let _lease = self
            .pool
            .acquire(&self.name, Instant::now() + self.limits.timeout)?;
        let mut instance = match LiveInstance::new(self, Some(run)) {
            Err(e) if e.kind() == ErrorKind::Exit => return Ok(e.exit_code().unwrap_or(1)),
            other => other?,
        };
        match instance.call(self, &func, &[], None) {
            Ok(results) => Ok(match results.first() {
                Some(Val::Result(Err(_))) => 1,
                _ => 0,
            }),
            Err(e) if e.kind() == ErrorKind::Exit => Ok(e.exit_code().unwrap_or(1)),
            Err(e) => Err(e),
        }
    }
}
