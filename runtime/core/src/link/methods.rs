//! Resource methods across a link without `Val`s, for the common shapes.
//!
//! A method of a provider's resource (`[method]r.name`, `self: borrow<r>`) is forwarded
//! dynamically in general (`forward.rs`, `SessionCall`). When its other parameters and its
//! result are primitives of the trampolines' list (`trampoline.rs`), the forwarder is a typed
//! host function instead: the importer's proxy handle arrives as a [`ResourceDynamic`], its
//! rep finds the provider's handle, and the session instance is called through a typed
//! handle with the provider's [`ResourceAny`] in front. Handles that move (`own` parameters
//! or results) always take the dynamic path, which keeps the proxy table right.

use std::sync::Arc;

use wasmtime::StoreContextMut;
use wasmtime::component::types::Type;
use wasmtime::component::{
    ComponentNamedList, ComponentType, Lift, LinkerInstance, Lower, ResourceAny, ResourceDynamic,
};

use super::session::links;
use super::shapes::key;
use crate::error::Result;
use crate::generation::Session;
use crate::instance::{Flavour, HostState};
use crate::module::{Resolved, Target};

/// Prepends a handle to a tuple of parameters.
pub trait Prepend<H>: Sized {
    type Full: ComponentNamedList + Lift + Lower + Send + Sync + 'static;
    fn split(full: Self::Full) -> (H, Self);
    fn join(head: H, rest: Self) -> Self::Full;
}

macro_rules! prepend {
    ($($a:ident)*) => {
        impl<H, $($a),*> Prepend<H> for ($($a,)*)
        where
            H: ComponentType + Lift + Lower + Send + Sync + 'static,
            $($a: ComponentType + Lift + Lower + Send + Sync + 'static,)*
        {
            type Full = (H, $($a,)*);
            #[allow(non_snake_case)]
            fn split(full: Self::Full) -> (H, Self) {
                let (h, $($a,)*) = full;
                (h, ($($a,)*))
            }
            #[allow(non_snake_case)]
            fn join(head: H, rest: Self) -> Self::Full {
                let ($($a,)*) = rest;
                (head, $($a,)*)
            }
        }
    };
}

prepend!();
prepend!(A1);
prepend!(A1 A2);

/// Defines `name` as a typed forwarder of a resource method when its shape allows;
/// `Ok(false)` when it does not (the caller forwards dynamically).
#[allow(clippy::too_many_arguments)]
pub fn define(
    inst: &mut LinkerInstance<'_, HostState>,
    flavour: Flavour,
    name: &str,
    params: &[Type],
    results: &[Type],
    target: &Arc<Target>,
    slot: usize,
) -> wasmtime::Result<bool> {
    let Some((Type::Borrow(_), rest)) = params.split_first() else {
        return Ok(false);
    };
    let Some(key) = key(rest, results) else {
        return Ok(false);
    };
    let target = Method {
        target: target.clone(),
        slot,
    };
    macro_rules! shapes {
        ($($k:literal => ($($p:ty),*) -> ($($r:ty),*)),* $(,)?) => {
            match key.as_str() {
                $($k => install::<($($p,)*), ($($r,)*)>(inst, flavour, name, target)?,)*
                _ => return Ok(false),
            }
        };
    }
    crate::for_each_shape!(shapes);
    Ok(true)
}

/// Where a method's calls go.
#[derive(Clone)]
struct Method {
    target: Arc<Target>,
    slot: usize,
}

impl Method {
    /// The method in the session's generation, or the current one for a new session.
    fn resolve(&self, session: &Option<Session>) -> Result<Arc<Resolved>> {
        match session {
            Some(s) => self.target.in_generation(&s.generation),
            None => self.target.get_full(),
        }
    }

    /// The provider's handle for the importer's proxy, and the session that holds it.
    fn enter(
        &self,
        store: &mut StoreContextMut<'_, HostState>,
        this: &ResourceDynamic,
    ) -> wasmtime::Result<(ResourceAny, Option<Session>)> {
        let l = links(store.data_mut());
        let handle = l.provider_handle(this.rep(), self.slot, false)?;
        Ok((handle, l.sessions[self.slot].take()))
    }

    /// Puts the session back, or forgets it and its handles after a failure.
    fn leave<R>(
        &self,
        store: &mut StoreContextMut<'_, HostState>,
        outcome: Result<(Session, R)>,
    ) -> wasmtime::Result<R> {
        match outcome {
            Ok((session, r)) => {
                links(store.data_mut()).sessions[self.slot] = Some(session);
                Ok(r)
            }
            Err(e) => {
                links(store.data_mut()).drop_session(self.slot);
                Err(wasmtime::Error::new(e))
            }
        }
    }
}

fn install<P, R>(
    inst: &mut LinkerInstance<'_, HostState>,
    flavour: Flavour,
    name: &str,
    target: Method,
) -> wasmtime::Result<()>
where
    P: Prepend<ResourceDynamic> + Prepend<ResourceAny> + Send + Sync + 'static,
    R: ComponentNamedList + Lift + Lower + Send + Sync + 'static,
{
    match flavour {
        Flavour::Sync => inst.func_wrap(
            name,
            move |mut store, full: <P as Prepend<ResourceDynamic>>::Full| {
                let (this, rest) = <P as Prepend<ResourceDynamic>>::split(full);
                let (handle, session) = target.enter(&mut store, &this)?;
                let deadline = store.data().deadline;
                let outcome = target.resolve(&session).and_then(|m| {
                    let g = &m.generation;
                    g.supervised(&m.func, || {
                        let mut session = match session {
                            Some(s) => s,
                            None => g.session(deadline)?,
                        };
                        let r = g.call_session_typed::<<P as Prepend<ResourceAny>>::Full, R>(
                            &mut session,
                            &m.func,
                            <P as Prepend<ResourceAny>>::join(handle, rest),
                            deadline,
                            &m.checked,
                        )?;
                        Ok((session, r))
                    })
                });
                target.leave(&mut store, outcome)
            },
        ),
        Flavour::Async | Flavour::Concurrent => inst.func_wrap_async(
            name,
            move |mut store, full: <P as Prepend<ResourceDynamic>>::Full| {
                let target = target.clone();
                Box::new(async move {
                    let (this, rest) = <P as Prepend<ResourceDynamic>>::split(full);
                    let (handle, session) = target.enter(&mut store, &this)?;
                    let deadline = store.data().deadline;
                    let m = match target.resolve(&session) {
                        Ok(m) => m,
                        Err(e) => return target.leave(&mut store, Err(e)),
                    };
                    let g = &m.generation;
                    let outcome = g
                        .supervised_async(&m.func, async {
                            let mut session = match session {
                                Some(s) => s,
                                None => g.session_async(deadline).await?,
                            };
                            let r = g
                                .call_session_typed_async::<<P as Prepend<ResourceAny>>::Full, R>(
                                    &mut session,
                                    &m.func,
                                    <P as Prepend<ResourceAny>>::join(handle, rest),
                                    deadline,
                                    &m.checked,
                                )
                                .await?;
                            Ok((session, r))
                        })
                        .await;
                    target.leave(&mut store, outcome)
                })
            },
        ),
    }
}
