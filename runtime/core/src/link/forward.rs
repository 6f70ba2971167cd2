//! Forwarding a linked call from the importer's store to the provider.
//!
//! The importer's imported functions become host functions that copy the argument values
//! into a provider instance, call the provider's export under the provider's own grants and
//! limits (and never past the caller's deadline), and copy the results back. The provider
//! function is resolved once, here, when the app loads.
//!
//! Links without resources use the provider's pool: any instance may serve any call. A link
//! whose interface has resources pins one provider instance (a session) to each importer
//! instance, because a resource lives in one instance's memory. The importer holds a host
//! handle (a proxy) per provider resource; it cannot forge one, and a proxy is released when
//! the importer drops it, when the importer instance ends (the session ends with it), or
//! when the session's instance fails and is discarded.

use std::collections::HashMap;
use std::sync::Arc;

use wasmtime::StoreContextMut;
use wasmtime::component::types::Type;
use wasmtime::component::{Linker, ResourceDynamic, ResourceType, Val};

use super::host::HostInterface;
use super::objects::MAX_PROXIES;
use super::session::links;
use super::typecheck::has_resources;
use super::{Link, LinkedFunc};
use crate::error::{Error, Result};
use crate::generation::Session;
use crate::instance::{Flavour, HostState};
use crate::module::{Module, Target};

/// Who serves a link.
pub enum Provider {
    Module(Arc<Module>),
    Host(Arc<HostInterface>),
}

/// Defines `link`'s functions (and resources) in one of the importer's linkers. A link with
/// resources keeps its session in link slot `slot` of each importer instance.
pub fn define(
    linker: &mut Linker<HostState>,
    flavour: Flavour,
    importer: &str,
    link: &Link,
    provider: &Provider,
    slot: usize,
) -> Result<()> {
    let fail = |e: wasmtime::Error| {
        Error::link(format!(
            "module `{importer}`: cannot link `{}` to `{}`",
            link.import, link.provider
        ))
        .with_module(importer)
        .with_source(e)
    };
    let mut inst = linker.instance(&link.import).map_err(fail)?;
    match provider {
        Provider::Host(h) => {
            for f in &link.funcs {
                if let Some(declared) = h.signature(&f.name)
                    && !super::signature::matches(declared, &f.params, &f.results, &f.resources)
                {
                    return Err(Error::link(format!(
                        "module `{importer}` imports `{}#{}` as `{}`, but the host declared it as `{declared}`",
                        link.import,
                        f.name,
                        super::signature::render(&f.params, &f.results, &f.resources)
                    ))
                    .with_module(importer)
                    .with_export(format!("{}#{}", link.import, f.name)));
                }
            }
            let needed: Vec<String> = link.funcs.iter().map(|f| f.name.clone()).collect();
            h.install(&mut inst, &needed, &link.resources).map_err(|e| {
                Error::link(format!(
                    "module `{importer}` imports `{}` from the host, but the host's functions do not match its types",
                    link.import
                ))
                .with_module(importer)
                .with_source(e)
            })
        }
        Provider::Module(p) if link.resources.is_empty() => {
            for f in &link.funcs {
                let target = Arc::new(Target::new(
                    p.clone(),
                    &format!("{}#{}", link.export, f.name),
                )?);
                // A provider in a worker process is called with dynamic values (the typed
                // fast path would need an instance here).
                let elsewhere = p.current().runs_elsewhere();
                if !elsewhere
                    && super::trampoline::define(
                        &mut inst, flavour, &f.name, &f.params, &f.results, &target,
                    )
                    .map_err(fail)?
                {
                    continue;
                }
                match flavour {
                    Flavour::Sync => inst.func_new(&f.name, move |store, _ty, params, results| {
                        let deadline = store.data().deadline;
                        let r = target.get().map_err(wasmtime::Error::new)?;
                        r.generation
                            .invoke_into(&r.func, params, results, Some(deadline))
                            .map_err(wasmtime::Error::new)
                    }),
                    #[cfg(feature = "p3")]
                    Flavour::Concurrent => crate::p3::link::define(&mut inst, f, target),
                    #[cfg(not(feature = "p3"))]
                    Flavour::Concurrent => Err(wasmtime::format_err!(
                        "a WASI 0.3 importer needs the `p3` feature of Membrane"
                    )),
                    Flavour::Async => {
                        inst.func_new_async(&f.name, move |store, _ty, params, results| {
                            let r = target.get_full();
                            Box::new(async move {
                                let deadline = store.data().deadline;
                                let r = r.map_err(wasmtime::Error::new)?;
                                r.generation
                                    .invoke_into_async(&r.func, params, results, Some(deadline))
                                    .await
                                    .map_err(wasmtime::Error::new)
                            })
                        })
                    }
                }
                .map_err(fail)?;
            }
            Ok(())
        }
        Provider::Module(_) if flavour == Flavour::Concurrent => Err(Error::link(format!(
            "module `{importer}` is a WASI 0.3 module and links `{}` to `{}`, whose interface has \
             resources: links with resources are not supported for WASI 0.3 modules yet",
            link.import, link.provider
        ))
        .with_module(importer)
        .with_key(format!("modules.{importer}.links"))),
        Provider::Module(p) => {
            let mut ids = HashMap::new();
            for name in &link.resources {
                let id = super::resource_ids::new_resource_type();
                ids.insert(name.clone(), id);
                let ty = ResourceType::host_dynamic(id);
                match flavour {
                    Flavour::Sync => inst.resource(name, ty, drop_proxy),
                    Flavour::Async | Flavour::Concurrent => {
                        inst.resource_async(name, ty, move |store, rep| {
                            Box::new(async move { drop_proxy_async(store, rep).await })
                        })
                    }
                }
                .map_err(fail)?;
            }
            let ids = Arc::new(ids);
            for f in &link.funcs {
                let target = Arc::new(Target::new(
                    p.clone(),
                    &format!("{}#{}", link.export, f.name),
                )?);
                // A provider in a worker process: every call goes the dynamic way.
                let elsewhere = p.current().runs_elsewhere();
                if !elsewhere
                    && super::methods::define(
                        &mut inst, flavour, &f.name, &f.params, &f.results, &target, slot,
                    )
                    .map_err(fail)?
                {
                    continue;
                }
                let call = SessionCall {
                    target,
                    ids: ids.clone(),
                    linked: f.clone(),
                    slot,
                };
                match flavour {
                    Flavour::Sync => {
                        inst.func_new(&f.name, move |mut store, _ty, params, results| {
                            call.call(&mut store, params, results)
                        })
                    }
                    Flavour::Async | Flavour::Concurrent => {
                        let call = Arc::new(call);
                        inst.func_new_async(&f.name, move |mut store, _ty, params, results| {
                            let call = call.clone();
                            Box::new(
                                async move { call.call_async(&mut store, params, results).await },
                            )
                        })
                    }
                }
                .map_err(fail)?;
            }
            Ok(())
        }
    }
}

/// One function of a link with resources: the call goes to the importer instance's session.
struct SessionCall {
    target: Arc<Target>,
    ids: Arc<HashMap<String, u32>>,
    linked: LinkedFunc,
    slot: usize,
}

impl SessionCall {
    fn args(
        &self,
        store: &mut StoreContextMut<'_, HostState>,
        params: &[Val],
    ) -> wasmtime::Result<Vec<Val>> {
        params
            .iter()
            .map(|v| to_provider(v, store, self.slot))
            .collect()
    }

    /// Puts the session back (or forgets it after a failure) and hands the results over.
    fn finish(
        &self,
        store: &mut StoreContextMut<'_, HostState>,
        outcome: Result<(Session, Vec<Val>)>,
        results: &mut [Val],
    ) -> wasmtime::Result<()> {
        match outcome {
            Ok((session, out)) => {
                links(store.data_mut()).sessions[self.slot] = Some(session);
                for ((dst, v), ty) in results.iter_mut().zip(out).zip(&self.linked.results) {
                    *dst = to_importer(v, ty, store, self.slot, &self.ids, &self.linked)?;
                }
                Ok(())
            }
            Err(e) => {
                // A failed instance was dropped inside; forget its handles.
                links(store.data_mut()).drop_session(self.slot);
                Err(wasmtime::Error::new(e))
            }
        }
    }

    fn call(
        &self,
        store: &mut StoreContextMut<'_, HostState>,
        params: &[Val],
        results: &mut [Val],
    ) -> wasmtime::Result<()> {
        let args = self.args(store, params)?;
        let deadline = store.data().deadline;
        let session = links(store.data_mut()).sessions[self.slot].take();
        // A session stays on the generation it started on.
        let r = match &session {
            Some(s) => self.target.in_generation(&s.generation),
            None => self.target.get_full(),
        };
        let r = match r {
            Ok(r) => r,
            Err(e) => return self.finish(store, Err(e), results),
        };
        let g = &r.generation;
        // The provider's supervisor sees session calls like any other call, and a session
        // takes a slot of the provider's pool like any instance.
        let outcome = g.supervised(&r.func, || {
            let mut session = match session {
                Some(s) => s,
                None => g.session(deadline)?,
            };
            let out = session
                .instance
                .call(g.recipe(), &r.func, &args, Some(deadline))?;
            Ok((session, out))
        });
        self.finish(store, outcome, results)
    }

    async fn call_async(
        &self,
        store: &mut StoreContextMut<'_, HostState>,
        params: &[Val],
        results: &mut [Val],
    ) -> wasmtime::Result<()> {
        let args = self.args(store, params)?;
        let deadline = store.data().deadline;
        let session = links(store.data_mut()).sessions[self.slot].take();
        let r = match &session {
            Some(s) => self.target.in_generation(&s.generation),
            None => self.target.get_full(),
        };
        let r = match r {
            Ok(r) => r,
            Err(e) => return self.finish(store, Err(e), results),
        };
        let g = &r.generation;
        let outcome = g
            .supervised_async(&r.func, async {
                let mut session = match session {
                    Some(s) => s,
                    None => g.session_async(deadline).await?,
                };
                let out = session
                    .instance
                    .call_async(g.recipe(), &r.func, &args, Some(deadline))
                    .await?;
                Ok((session, out))
            })
            .await;
        self.finish(store, outcome, results)
    }
}

/// Replaces the importer's proxy handles in an argument by the provider's handles.
fn to_provider(
    val: &Val,
    store: &mut StoreContextMut<'_, HostState>,
    slot: usize,
) -> wasmtime::Result<Val> {
    let map = |v: &Val, store: &mut StoreContextMut<'_, HostState>| to_provider(v, store, slot);
    Ok(match val {
        Val::Resource(any) => {
            let owned = any.owned();
            let rep = ResourceDynamic::try_from_resource_any(*any, &mut *store)?.rep();
            let handle = links(store.data_mut()).provider_handle(rep, slot, owned)?;
            Val::Resource(handle)
        }
        Val::List(items) => Val::List(
            items
                .iter()
                .map(|v| map(v, store))
                .collect::<wasmtime::Result<_>>()?,
        ),
        Val::Tuple(items) => Val::Tuple(
            items
                .iter()
                .map(|v| map(v, store))
                .collect::<wasmtime::Result<_>>()?,
        ),
        Val::Record(fields) => Val::Record(
            fields
                .iter()
                .map(|(n, v)| Ok((n.clone(), map(v, store)?)))
                .collect::<wasmtime::Result<_>>()?,
        ),
        Val::Option(Some(v)) => Val::Option(Some(Box::new(map(v, store)?))),
        Val::Result(Ok(Some(v))) => Val::Result(Ok(Some(Box::new(map(v, store)?)))),
        Val::Result(Err(Some(v))) => Val::Result(Err(Some(Box::new(map(v, store)?)))),
        Val::Variant(case, Some(v)) => Val::Variant(case.clone(), Some(Box::new(map(v, store)?))),
        other => other.clone(),
    })
}

/// Replaces the provider's resource handles in a result by new proxies for the importer.
fn to_importer(
    val: Val,
    ty: &Type,
    store: &mut StoreContextMut<'_, HostState>,
    slot: usize,
    ids: &HashMap<String, u32>,
    f: &LinkedFunc,
) -> wasmtime::Result<Val> {
    if !has_resources(ty) {
        return Ok(val);
    }
    let rec = |v: Val, t: &Type, store: &mut StoreContextMut<'_, HostState>| {
        to_importer(v, t, store, slot, ids, f)
    };
    Ok(match (val, ty) {
        (Val::Resource(handle), Type::Own(rt)) => {
            let id = f
                .resources
                .iter()
                .find(|(_, t)| t == rt)
                .and_then(|(name, _)| ids.get(name))
                .copied()
                .ok_or_else(|| {
                    wasmtime::format_err!(
                        "{} returned a resource from outside the linked interface",
                        f.name
                    )
                })?;
            if links(store.data_mut()).handles() >= MAX_PROXIES {
                return Err(wasmtime::Error::new(Error::new(
                    crate::ErrorKind::TableLimit,
                    format!(
                        "{} returned more than {MAX_PROXIES} live resource handles to one importer instance; drop handles you no longer need",
                        f.name
                    ),
                )));
            }
            let rep = links(store.data_mut()).add_proxy(slot, handle);
            Val::Resource(ResourceDynamic::new_own(rep, id).try_into_resource_any(&mut *store)?)
        }
        (Val::List(items), Type::List(l)) => {
            let t = l.ty();
            Val::List(
                items
                    .into_iter()
                    .map(|v| rec(v, &t, store))
                    .collect::<wasmtime::Result<_>>()?,
            )
        }
        (Val::Option(Some(v)), Type::Option(o)) => {
            Val::Option(Some(Box::new(rec(*v, &o.ty(), store)?)))
        }
        (Val::Result(Ok(Some(v))), Type::Result(r)) if r.ok().is_some() => {
            Val::Result(Ok(Some(Box::new(rec(*v, &r.ok().unwrap(), store)?))))
        }
        (Val::Result(Err(Some(v))), Type::Result(r)) if r.err().is_some() => {
            Val::Result(Err(Some(Box::new(rec(*v, &r.err().unwrap(), store)?))))
        }
        (Val::Tuple(items), Type::Tuple(t)) => Val::Tuple(
            items
                .into_iter()
                .zip(t.types())
                .map(|(v, t)| rec(v, &t, store))
                .collect::<wasmtime::Result<_>>()?,
        ),
        (Val::Record(fields), Type::Record(r)) => Val::Record(
            fields
                .into_iter()
                .zip(r.fields())
                .map(|((n, v), f)| Ok((n, rec(v, &f.ty, store)?)))
                .collect::<wasmtime::Result<_>>()?,
        ),
        (Val::Variant(case, Some(v)), Type::Variant(var)) => {
            let t = var
                .cases()
                .find(|c| c.name == case)
                .and_then(|c| c.ty)
                .ok_or_else(|| {
                    wasmtime::format_err!("variant case `{case}` has no payload type")
                })?;
            Val::Variant(case, Some(Box::new(rec(*v, &t, store)?)))
        }
        (other, _) => other,
    })
}

/// [`drop_proxy`] for importers whose calls run on a fiber.
async fn drop_proxy_async(
    mut store: StoreContextMut<'_, HostState>,
    rep: u32,
) -> wasmtime::Result<()> {
    let state = links(store.data_mut());
    let Some(proxy) = state.proxies.remove(&rep) else {
        return Ok(());
    };
    let Some(mut session) = state.sessions[proxy.slot].take() else {
        return Ok(());
    };
    let generation = session.generation.clone();
    match session
        .instance
        .drop_resource_async(generation.recipe(), proxy.handle)
        .await
    {
        Ok(()) => {
            links(store.data_mut()).sessions[proxy.slot] = Some(session);
            Ok(())
        }
        Err(e) => {
            links(store.data_mut()).drop_session(proxy.slot);
            Err(wasmtime::Error::new(e))
        }
    }
}

/// The importer dropped its handle: drop the provider's resource in its session (on the
/// generation the session started on).
fn drop_proxy(mut store: StoreContextMut<'_, HostState>, rep: u32) -> wasmtime::Result<()> {
    let state = links(store.data_mut());
    let Some(proxy) = state.proxies.remove(&rep) else {
        // Its session was discarded already, and the resource with it.
        return Ok(());
    };
    let Some(mut session) = state.sessions[proxy.slot].take() else {
        return Ok(());
    };
    let generation = session.generation.clone();
    match session
        .instance
        .drop_resource(generation.recipe(), proxy.handle)
    {
        Ok(()) => {
            links(store.data_mut()).sessions[proxy.slot] = Some(session);
            Ok(())
        }
        Err(e) => {
            links(store.data_mut()).drop_session(proxy.slot);
            Err(wasmtime::Error::new(e))
        }
    }
}
