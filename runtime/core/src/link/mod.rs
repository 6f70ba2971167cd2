//! Links: an import of one module wired to the matching export of another module (or of
//! the host application). Nothing links unless the manifest says so.
//!
//! Everything is decided when the app loads, in three steps:
//! 1. [`plan`]: match every non-WASI import to a link and the link to a provider export,
//!    check the interface version (semver, as the component model does) and compare every
//!    function the importer needs with the provider's, structurally. All problems are
//!    collected; unused links are warnings.
//! 2. [`order`]: refuse cycles and sort modules so that providers are built first. Cycles
//!    are refused rather than served: a call chain that comes back to a module it passed
//!    through is almost always a design mistake, and refusing it makes deadlock impossible.
//! 3. [`forward::define`]: give each importer a linker whose imported functions forward to
//!    the provider. A call then does no name lookup and no type check: only value copies.

pub mod dynamic;
pub mod forward;
pub mod host;
pub mod methods;
pub mod objects;
pub mod planned;
pub mod resource_ids;
pub mod session;
pub mod shapes;
pub mod signature;
pub mod trampoline;
pub mod typecheck;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use wasmtime::Engine;
use wasmtime::component::types::{ComponentInstance, ComponentItem, Type};

use crate::compile::Compiled;
use crate::error::{Error, Problems, Result};
use crate::names::{HOST, split_version};
use crate::semver;
use host::HostInterface;
use typecheck::{Resources, Sides, compare};

pub use planned::LinkInfo;
pub use planned::{Link, LinkedFunc};

/// The outcome of [`plan`].
pub struct Plan {
    pub links: BTreeMap<String, Vec<Link>>,
    pub warnings: Vec<String>,
}

/// What planning needs of a module: its declaration and its compiled component (a module
/// being loaded, or a live generation when an upgrade is gated).
pub trait Planned {
    fn spec(&self) -> &crate::spec::ModuleSpec;
    fn component(&self) -> &wasmtime::component::Component;
}

impl Planned for Compiled {
    fn spec(&self) -> &crate::spec::ModuleSpec {
        &self.spec
    }
    fn component(&self) -> &wasmtime::component::Component {
        &self.component
    }
}

/// Matches every module's imports with its links and checks each link.
pub fn plan<M: Planned>(
    modules: &BTreeMap<String, M>,
    failed: &[&String],
    hosts: &HashMap<String, Arc<HostInterface>>,
    boundaries: &crate::boundary::Boundaries,
) -> Result<Plan> {
    let mut problems = Problems::default();
    let mut warnings = Vec::new();
    let mut all = BTreeMap::new();
    let decl: crate::boundary::Decl<'_> = modules
        .iter()
        .map(|(n, m)| (n.as_str(), m.spec()))
        .collect();
    for (name, m) in modules {
        // A placement may plan a module with other links (a composed importer imports what
        // its members link outside, not its fused links).
        let planned = boundaries.planned_links(&decl, name);
        let mut used = vec![false; planned.len()];
        let keys: Vec<(&String, &String)> = planned.iter().collect();
        let mut links = Vec::new();
        let ty = m.component().component_type();
        // Types are read with the engine each component was compiled on (a WASI 0.3
        // module's is the second engine).
        let engine = m.component().engine();
        for (import, item) in ty.imports(engine) {
            if import.starts_with("wasi:") {
                continue;
            }
            let (base, version) = split_version(import);
            let found = keys.iter().position(|(k, _)| {
                let (kb, kv) = split_version(k);
                kb == base
                    && kv.is_none_or(|kv| {
                        semver::compatible(Some(kv), version) || Some(kv) == version
                    })
            });
            // A link to this interface at a version the import cannot use: say so, with
            // both versions, rather than "not linked" here and "not imported" there.
            let mismatched = found
                .is_none()
                .then(|| keys.iter().position(|(k, _)| split_version(k).0 == base));
            if let Some(Some(i)) = mismatched {
                used[i] = true;
                let key = keys[i].0;
                problems.push(Error::link(format!(
                    "module `{name}` imports `{import}`, but its link names `{key}`, a version the import cannot use; \
                     write the key as `{base}` (any version the provider exports) or `{import}`"
                ))
                .with_module(name.as_str())
                .with_export(import)
                .with_key(format!("modules.{name}.links.{key}")));
                continue;
            }
            let Some(i) = found else {
                problems.push(Error::link(format!(
                    "module `{name}` imports `{import}`, which is neither a WASI interface nor linked; \
                     link it to a module that exports it with `links = {{ \"{base}\" = \"<provider>\" }}` under [modules.{name}], \
                     or rebuild the component without that import"
                ))
                .with_module(name.as_str())
                .with_export(import)
                .with_key(format!("modules.{name}.links")));
                continue;
            };
            used[i] = true;
            let provider = keys[i].1.as_str();
            let ComponentItem::ComponentInstance(want) = item.ty else {
                problems.push(Error::link(format!(
                    "module `{name}` imports `{import}` as a single item; only interfaces can be linked"
                ))
                .with_module(name.as_str())
                .with_export(import));
                continue;
            };
            if failed.iter().any(|f| f.as_str() == provider) {
                continue;
            }
            let result = if provider == HOST {
                host_link(engine, name, import, &want, hosts)
            } else {
                match modules.get(provider) {
                    Some(p) => module_link(engine, name, import, &want, provider, p),
                    None => Err(vec![Error::link(format!(
                        "module `{name}` links `{import}` to `{provider}`, which is not a module of the app; \
                         declare [modules.{provider}] or link to an existing module"
                    ))]),
                }
            };
            match result {
                Ok(link) => links.push(link),
                Err(errs) => {
                    for mut e in errs {
                        e.set_module(name);
                        problems.push(e.with_key(format!("modules.{name}.links.{}", keys[i].0)));
                    }
                }
            }
        }
        for (i, (key, provider)) in keys.iter().enumerate() {
            // A link to a module that failed is left to that module's own error.
            if !used[i] && !failed.iter().any(|f| f == provider) {
                let w = format!(
                    "module `{name}` links `{key}` to `{provider}` but does not import it; remove the link"
                );
                tracing::warn!(target: "membrane::link", "{w}");
                warnings.push(w);
            }
        }
        all.insert(name.clone(), links);
    }
    problems.into_result()?;
    Ok(Plan {
        links: all,
        warnings,
    })
}

/// The resources an instance type exports, by name.
fn resources_of(engine: &Engine, inst: &ComponentInstance) -> Resources {
    Resources(
        inst.exports(engine)
            .filter_map(|(n, e)| match e.ty {
                ComponentItem::Resource(r) => Some((n.to_string(), r)),
                _ => None,
            })
            .collect(),
    )
}

fn module_link(
    engine: &Engine,
    importer: &str,
    import: &str,
    want: &ComponentInstance,
    provider: &str,
    p: &impl Planned,
) -> std::result::Result<Link, Vec<Error>> {
    let (base, version) = split_version(import);
    let ty = p.component().component_type();
    let theirs = p.component().engine();
    let exports: Vec<String> = ty.exports(theirs).map(|(n, _)| n.to_string()).collect();
    let same_base: Vec<&String> = exports
        .iter()
        .filter(|n| split_version(n).0 == base)
        .collect();
    let Some(export) = same_base
        .iter()
        .find(|n| semver::compatible(version, split_version(n).1))
        .map(|n| n.to_string())
    else {
        let msg = if same_base.is_empty() {
            format!(
                "module `{importer}` links `{import}` to `{provider}`, but `{provider}` does not export `{base}`; it exports: {}",
                if exports.is_empty() {
                    "nothing".to_string()
                } else {
                    exports.join(", ")
                }
            )
        } else {
            let found: Vec<&str> = same_base
                .iter()
                .map(|n| split_version(n).1.unwrap_or("no version"))
                .collect();
            format!(
                "module `{importer}` imports `{import}`, but `{provider}` exports version {} of `{base}`, which cannot serve it: \
                 a provider needs the same major version (the same minor for 0.x) and at least the imported version",
                found.join(", ")
            )
        };
        return Err(vec![Error::link(msg)]);
    };
    let Some(ComponentItem::ComponentInstance(got)) = ty.get_export(theirs, &export).map(|e| e.ty)
    else {
        return Err(vec![Error::link(format!(
            "`{provider}` exports `{export}` but not as an interface"
        ))]);
    };
    let importer_res = resources_of(engine, want);
    let provider_res = resources_of(theirs, &got);
    let sides = Sides {
        importer: &importer_res,
        provider: &provider_res,
    };
    let mut errors = Vec::new();
    for (res, _) in &importer_res.0 {
        if !provider_res.0.iter().any(|(n, _)| n == res) {
            errors.push(Error::link(format!(
                "module `{importer}` imports resource `{res}` of `{import}`, but `{provider}` exports no such resource"
            )));
        }
    }
    let shared_res = Arc::new(importer_res.0.clone());
    let mut funcs = Vec::new();
    for (fname, item) in want.exports(engine) {
        let ComponentItem::ComponentFunc(wf) = item.ty else {
            continue;
        };
        let at = format!("{importer} imports {base}#{fname}");
        let Some(ComponentItem::ComponentFunc(gf)) = got.get_export(theirs, fname).map(|e| e.ty)
        else {
            errors.push(
                Error::link(format!(
                    "{at}: `{provider}` exports no function `{fname}` in `{export}`"
                ))
                .with_export(format!("{import}#{fname}")),
            );
            continue;
        };
        if let Some(why) = async_values(&wf) {
            errors
                .push(Error::link(format!("{at}: {why}")).with_export(format!("{import}#{fname}")));
            continue;
        }
        if let Some(why) = compare_funcs(&wf, &gf, &sides, provider) {
            errors
                .push(Error::link(format!("{at}: {why}")).with_export(format!("{import}#{fname}")));
            continue;
        }
        funcs.push(LinkedFunc {
            name: fname.to_string(),
            params: wf.params().map(|(_, t)| t).collect(),
            results: wf.results().collect(),
            resources: shared_res.clone(),
            is_async: wf.async_(),
        });
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    Ok(Link {
        import: import.to_string(),
        provider: provider.to_string(),
        export,
        funcs,
        resources: importer_res.0.into_iter().map(|(n, _)| n).collect(),
    })
}

/// Compares one function; `None` when the provider's matches the importer's.
/// Why a function's streams, futures or error-contexts cannot cross a link, if they cannot:
/// only `stream<u8>` and `future`s of simple values, as parameters and results of an
/// `async func`, do (`p3/pipe.rs`).
fn async_values(f: &wasmtime::component::types::ComponentFunc) -> Option<String> {
    let types: Vec<Type> = f.params().map(|(_, t)| t).chain(f.results()).collect();
    let crossing = types
        .iter()
        .filter(|t| crate::p3::crossing(t).is_some())
        .count();
    let other = types
        .iter()
        .any(|t| crate::p3::crossing(t).is_none() && typecheck::has_async_values(t));
    if other {
        return Some(
            "it passes an error-context, a stream of other than u8, a future of other than a \
             bool, number, char, string or list<u8>, or a stream or future inside another \
             value, which cannot cross a link between modules yet (each lives in one \
             instance); only stream<u8> and such futures as parameters and results can, or \
             pass the data as a plain value"
                .to_string(),
        );
    }
    (crossing > 0 && !f.async_()).then(|| {
        "it passes a stream or a future but is not an `async func`: those cross a link only \
         in an async function (the importer's other calls must go on while they flow)"
            .to_string()
    })
}

fn compare_funcs(
    want: &wasmtime::component::types::ComponentFunc,
    got: &wasmtime::component::types::ComponentFunc,
    sides: &Sides<'_>,
    provider: &str,
) -> Option<String> {
    let wp: Vec<(&str, Type)> = want.params().collect();
    let gp: Vec<(&str, Type)> = got.params().collect();
    if wp.len() != gp.len() {
        return Some(format!(
            "expected {} parameter(s), {provider} exports {} parameter(s)",
            wp.len(),
            gp.len()
        ));
    }
    for (i, ((pname, w), (_, g))) in wp.iter().zip(&gp).enumerate() {
        if let Err(d) = compare(w, g, sides) {
            return Some(describe_difference(
                &format!("param {i} (`{pname}`)"),
                w,
                g,
                sides,
                d,
                provider,
            ));
        }
    }
    let wr: Vec<Type> = want.results().collect();
    let gr: Vec<Type> = got.results().collect();
    if wr.len() != gr.len() {
        return Some(format!(
            "expected {} result(s), {provider} exports {} result(s)",
            wr.len(),
            gr.len()
        ));
    }
    for (i, (w, g)) in wr.iter().zip(&gr).enumerate() {
        if let Err(d) = compare(w, g, sides) {
            return Some(describe_difference(
                &format!("result {i}"),
                w,
                g,
                sides,
                d,
                provider,
            ));
        }
    }
    None
}

fn describe_difference(
    position: &str,
    want: &Type,
    got: &Type,
    sides: &Sides<'_>,
    d: typecheck::Difference,
    provider: &str,
) -> String {
    let want = typecheck::describe(want, sides.importer);
    let got = typecheck::describe(got, sides.provider);
    if d.path.is_empty() {
        format!("{position}: expected {want}, {provider} exports {got}")
    } else {
        format!(
            "{position}: expected {want}, {provider} exports {got} (first difference at `{}`: {} vs {})",
            d.path, d.want, d.got
        )
    }
}

fn host_link(
    engine: &Engine,
    importer: &str,
    import: &str,
    want: &ComponentInstance,
    hosts: &HashMap<String, Arc<HostInterface>>,
) -> std::result::Result<Link, Vec<Error>> {
    let (base, version) = split_version(import);
    let Some(h) = hosts.values().find(|h| {
        split_version(h.name()).0 == base && semver::compatible(version, split_version(h.name()).1)
    }) else {
        let mut known: Vec<&str> = hosts.keys().map(String::as_str).collect();
        known.sort();
        return Err(vec![Error::link(format!(
            "module `{importer}` links `{import}` to the host, but the host application provides no compatible interface; it provides: {}",
            if known.is_empty() {
                "none".to_string()
            } else {
                known.join(", ")
            }
        ))]);
    };
    let mut errors = Vec::new();
    let mut funcs = Vec::new();
    let mut resources = Vec::new();
    // The importer's resource types by name, to write dynamic functions' signatures with.
    let named = Arc::new(resources_of(engine, want).0);
    for (fname, item) in want.exports(engine) {
        match item.ty {
            ComponentItem::ComponentFunc(wf) => {
                if !h.has_func(fname) {
                    errors.push(
                        Error::link(format!(
                            "{importer} imports {base}#{fname}: the host's `{}` has no function `{fname}`; it has: {}",
                            h.name(),
                            or_none(&h.func_names())
                        ))
                        .with_export(format!("{import}#{fname}")),
                    );
                }
                funcs.push(LinkedFunc {
                    name: fname.to_string(),
                    params: wf.params().map(|(_, t)| t).collect(),
                    results: wf.results().collect(),
                    resources: named.clone(),
                    is_async: wf.async_(),
                });
            }
            ComponentItem::Resource(_) => {
                if !h.has_resource(fname) {
                    errors.push(
                        Error::link(format!(
                            "{importer} imports resource `{fname}` of `{import}` from the host, but the host's `{}` has no resource `{fname}`; it has: {}",
                            h.name(),
                            or_none(&h.resource_names())
                        ))
                        .with_export(format!("{import}#{fname}")),
                    );
                }
                resources.push(fname.to_string());
            }
            _ => {}
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    Ok(Link {
        import: import.to_string(),
        provider: HOST.to_string(),
        export: h.name().to_string(),
        funcs,
        resources,
    })
}

fn or_none(names: &[&str]) -> String {
    if names.is_empty() {
        "none".to_string()
    } else {
        names.join(", ")
    }
}

/// Sorts modules so that every provider comes before its importers; refuses cycles.
pub fn order(links: &BTreeMap<String, Vec<Link>>) -> Result<Vec<String>> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        New,
        Active,
        Done,
    }
    fn visit(
        name: &str,
        links: &BTreeMap<String, Vec<Link>>,
        marks: &mut HashMap<String, Mark>,
        stack: &mut Vec<String>,
        out: &mut Vec<String>,
    ) -> Result<()> {
        match marks.get(name).copied().unwrap_or(Mark::New) {
            Mark::Done => return Ok(()),
            Mark::Active => {
                let start = stack.iter().position(|s| s == name).unwrap_or(0);
                let mut cycle: Vec<&str> = stack[start..].iter().map(String::as_str).collect();
                cycle.push(name);
                return Err(Error::link(format!(
                    "the links form a cycle: {}; Membrane refuses cycles so that a call can never wait on itself. \
                     Move the shared part into its own module that both use",
                    cycle.join(" -> ")
                ))
                .with_module(name)
                .with_key(format!("modules.{name}.links")));
            }
            Mark::New => {}
        }
        marks.insert(name.to_string(), Mark::Active);
        stack.push(name.to_string());
        for link in links.get(name).into_iter().flatten() {
            if link.provider != HOST {
                visit(&link.provider, links, marks, stack, out)?;
            }
        }
        stack.pop();
        marks.insert(name.to_string(), Mark::Done);
        out.push(name.to_string());
        Ok(())
    }
    let mut marks = HashMap::new();
    let mut out = Vec::new();
    for name in links.keys() {
        visit(name, links, &mut marks, &mut Vec::new(), &mut out)?;
    }
    Ok(out)
}
