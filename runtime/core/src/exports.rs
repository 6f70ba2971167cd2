//! A module's exports, resolved by name once and cached: `ns:pkg/iface#func`, with an
//! optional `@version` (matched the component model's way), or a root-level name.
//! Each resolved function gets an index, small and per module, that instances use to cache
//! their function handles.

use std::sync::{Arc, RwLock};

use rustc_hash::FxHashMap;

use wasmtime::Engine;
use wasmtime::component::types::{ComponentItem, Type};
use wasmtime::component::{Component, ComponentExportIndex};

use crate::error::{Error, Result};
use crate::names::{ExportName, split_version};
use crate::value::Function;

/// The exports of one compiled component, resolved as they are asked for.
pub struct Exports {
    module: Arc<str>,
    component: Component,
    engine: Engine,
    cache: RwLock<FxHashMap<String, Arc<Function>>>,
}

impl Exports {
    pub fn new(module: Arc<str>, component: Component, engine: Engine) -> Self {
        Exports {
            module,
            component,
            engine,
            cache: RwLock::new(FxHashMap::default()),
        }
    }

    /// The compiled component.
    pub fn component(&self) -> &Component {
        &self.component
    }

    /// Finds an exported function by its textual name, once; later lookups hit a cache.
    pub fn function(&self, text: &str) -> Result<Arc<Function>> {
        if let Some(f) = self
            .cache
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(text)
        {
            return Ok(f.clone());
        }
        let mut cache = self.cache.write().unwrap_or_else(|p| p.into_inner());
        if let Some(f) = cache.get(text) {
            return Ok(f.clone());
        }
        // Several names may resolve to one function; each name keeps its own index, which
        // only costs an instance one more cached handle.
        let f = Arc::new(self.resolve(text, cache.len())?);
        cache.insert(text.to_string(), f.clone());
        Ok(f)
    }

    fn resolve(&self, text: &str, id: usize) -> Result<Function> {
        let engine = &self.engine;
        let name =
            ExportName::parse(text).map_err(|e| e.with_module(&*self.module).with_export(text))?;
        let ty = self.component.component_type();
        let missing = |what: String| {
            Error::not_found(format!("module `{}` {what}", self.module))
                .with_module(&*self.module)
                .with_export(text)
        };
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
                    // Functions only: an interface also exports its types and resources,
                    // which cannot be called.
                    let funcs: Vec<String> = inst
                        .exports(engine)
                        .filter(|(_, e)| matches!(e.ty, ComponentItem::ComponentFunc(_)))
                        .map(|(n, _)| n.to_string())
                        .collect();
                    missing(format!(
                        "has no function `{}` in `{actual}`; its functions: {}",
                        name.func,
                        if funcs.is_empty() {
                            "none".to_string()
                        } else {
                            funcs.join(", ")
                        }
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
            id,
            name: canonical,
            index,
            params: func.params().map(|(n, t)| (n.to_string(), t)).collect(),
            results: func.results().collect::<Vec<Type>>(),
            metrics: Default::default(),
            span_name: Default::default(),
        })
    }

    fn export_list(&self) -> String {
        let engine = &self.engine;
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
}
