//! Dynamic host resources: resources of a host interface whose values are
//! `Box<dyn Any + Send>` ([`HostInterface::resource_dynamic`]), for hosts whose values are
//! not Rust types (the Python binding), and [`DynamicObjects`], through which a dynamic
//! function ([`HostInterface::func_dynamic_with`]) reaches the values behind the handles it
//! gets and gives out new ones.
//!
//! **Identity.** Each dynamic resource is its own wasmtime resource type,
//! `ResourceType::host_dynamic(id)`, with an id drawn once, when the interface declares the
//! resource, from the counter that gives link proxies theirs ([`new_resource_type`]).
//! wasmtime checks a handle's type by that id whenever a guest passes one, so a guest
//! cannot pass a `tally` where a `document` is expected, a proxy of a linked module's
//! resource for either, or a handle of another interface's resource. (Typed resources are
//! told apart by their Rust type, `ResourceType::host::<T>()`; a fixed set of marker types
//! such as `Dyn<const N: usize>` would do the same for dynamic ones, but with a slot limit
//! per runtime and a table of monomorphized installers, where the runtime ids of
//! `host_dynamic` need neither and are already what proxies use.)
//!
//! **Values.** They live with the calling instance, in the same table as typed host objects
//! (`objects.rs`), tagged with their resource's id and counted against the same handle
//! limit. A value is dropped when the guest drops its handle, when the instance ends, or at
//! the end of a call that got it as an `own` parameter and did not [`take`] it (the guest
//! gave it up and the host did not keep it).
//!
//! Before a dynamic function runs, every handle of the interface's dynamic resources among
//! its parameters is lifted out of the guest's call (once, whatever the function does with
//! it, so no borrow outlives the call); the function then names a handle by the
//! [`ResourceAny`] it got in its parameters.
//!
//! [`HostInterface::resource_dynamic`]: super::host::HostInterface::resource_dynamic
//! [`HostInterface::func_dynamic_with`]: super::host::HostInterface::func_dynamic_with
//! [`new_resource_type`]: super::resource_ids::new_resource_type
//! [`take`]: DynamicObjects::take

use std::any::Any;

use wasmtime::StoreContextMut;
use wasmtime::component::types::Type;
use wasmtime::component::{Resource, ResourceAny, ResourceDynamic, ResourceType, Val};

use super::objects::HostObjects;
use super::session::links;
use super::typecheck::has_resources;
use crate::error::{Error, ErrorKind, Result};
use crate::instance::HostState;

/// The dynamic resources of an interface: name and resource type id.
pub type DynamicResources = [(String, u32)];

/// A dynamic resource's value in the instance's host objects, tagged with its type id.
struct Tagged {
    ty: u32,
    value: Box<dyn Any + Send>,
}

/// A handle the current call got as a parameter, lifted before the function ran.
struct Received {
    handle: ResourceAny,
    rep: u32,
    ty: u32,
    owned: bool,
    /// Taken by the function ([`DynamicObjects::take`]).
    taken: bool,
}

/// The host objects of the instance that made the current call, for a dynamic function
/// ([`HostInterface::func_dynamic_with`](crate::HostInterface::func_dynamic_with)): the
/// values behind the handles of its parameters, and new handles for its results.
pub struct DynamicObjects<'a> {
    store: StoreContextMut<'a, HostState>,
    resources: &'a DynamicResources,
    received: Vec<Received>,
}

impl<'a> DynamicObjects<'a> {
    /// Lifts the handles of `resources` found in `params` (of types `types`).
    pub(crate) fn receive(
        mut store: StoreContextMut<'a, HostState>,
        resources: &'a DynamicResources,
        types: impl Iterator<Item = Type>,
        params: &[Val],
    ) -> Result<Self> {
        let mut received = Vec::new();
        for (val, ty) in params.iter().zip(types) {
            if has_resources(&ty) {
                collect(val, &mut store, resources, &mut received)?;
            }
        }
        Ok(DynamicObjects {
            store,
            resources,
            received,
        })
    }

    /// The value behind a handle among the call's parameters, `own` or `borrow`.
    pub fn get(&mut self, handle: &ResourceAny) -> Result<&mut (dyn Any + Send)> {
        let (rep, ty) = {
            let r = self.find(handle)?;
            (r.rep, r.ty)
        };
        match links(self.store.data_mut()).objects.get_mut::<Tagged>(rep) {
            Some(tagged) if tagged.ty == ty => Ok(&mut *tagged.value),
            _ => Err(not_ours()),
        }
    }

    /// Takes the value of an `own` parameter: the guest gave the handle away, so the value
    /// is the host's now. A value not taken is dropped when the call ends.
    pub fn take(&mut self, handle: &ResourceAny) -> Result<Box<dyn Any + Send>> {
        let r = self.find(handle)?;
        if !r.owned {
            return Err(Error::new(
                ErrorKind::HostPanic,
                "a borrowed handle cannot be taken: only an `own` parameter can",
            ));
        }
        r.taken = true;
        let (rep, ty) = (r.rep, r.ty);
        let l = links(self.store.data_mut());
        let mut objects = HostObjects::new(&mut l.objects, l.proxies.len());
        let tagged = objects.take::<Tagged>(Resource::new_own(rep))?;
        if tagged.ty != ty {
            return Err(not_ours());
        }
        Ok(tagged.value)
    }

    /// Stores `value` as a value of the dynamic resource `resource` and returns a new handle
    /// to it, to put in a result (as an `own`).
    ///
    /// Fails with [`ErrorKind::TableLimit`] when the instance holds
    /// [`MAX_PROXIES`](crate::MAX_PROXIES) handles already, and with
    /// [`ErrorKind::HostPanic`] when the interface has no dynamic resource `resource`.
    pub fn insert(&mut self, resource: &str, value: Box<dyn Any + Send>) -> Result<ResourceAny> {
        let Some(&(_, ty)) = self.resources.iter().find(|(n, _)| n == resource) else {
            return Err(Error::new(
                ErrorKind::HostPanic,
                format!("the interface has no dynamic resource `{resource}`"),
            ));
        };
        let l = links(self.store.data_mut());
        let mut objects = HostObjects::new(&mut l.objects, l.proxies.len());
        let rep = objects.insert(Tagged { ty, value })?.rep();
        ResourceDynamic::new_own(rep, ty)
            .try_into_resource_any(&mut self.store)
            .map_err(|e| {
                // The handle was never made: the value must not stay behind.
                links(self.store.data_mut()).objects.remove(rep);
                Error::new(ErrorKind::HostPanic, "cannot make a resource handle").with_source(e)
            })
    }

    /// The name of the dynamic resource whose type is `ty` (from a function's type: the
    /// type of an `own` result or of a handle parameter), if it is one of the interface's.
    pub fn resource_name(&self, ty: &ResourceType) -> Option<&str> {
        self.resources
            .iter()
            .find(|(_, id)| ResourceType::host_dynamic(*id) == *ty)
            .map(|(n, _)| n.as_str())
    }

    /// Drops the values of `own` parameters the function did not take.
    pub(crate) fn finish(mut self) {
        let reps: Vec<u32> = self
            .received
            .iter()
            .filter(|r| r.owned && !r.taken)
            .map(|r| r.rep)
            .collect();
        if reps.is_empty() {
            return;
        }
        let l = links(self.store.data_mut());
        for rep in reps {
            l.objects.remove(rep);
        }
    }

    fn find(&mut self, handle: &ResourceAny) -> Result<&mut Received> {
        match self.received.iter_mut().find(|r| r.handle == *handle) {
            Some(r) if r.taken => Err(Error::new(
                ErrorKind::HostPanic,
                "the handle's value was taken already in this call",
            )),
            Some(r) => Ok(r),
            None => Err(not_ours()),
        }
    }
}

/// Lifts the handles of `resources` inside `val`.
fn collect(
    val: &Val,
    store: &mut StoreContextMut<'_, HostState>,
    resources: &DynamicResources,
    out: &mut Vec<Received>,
) -> Result<()> {
    match val {
        Val::Resource(any) => {
            let ours = resources
                .iter()
                .any(|(_, id)| ResourceType::host_dynamic(*id) == any.ty());
            if !ours {
                return Ok(());
            }
            let lifted =
                ResourceDynamic::try_from_resource_any(*any, &mut *store).map_err(|e| {
                    Error::new(ErrorKind::HostPanic, "cannot lift a resource handle").with_source(e)
                })?;
            out.push(Received {
                handle: *any,
                rep: lifted.rep(),
                ty: lifted.ty(),
                owned: lifted.owned(),
                taken: false,
            });
            Ok(())
        }
        Val::List(items) | Val::Tuple(items) => items
            .iter()
            .try_for_each(|v| collect(v, store, resources, out)),
        Val::Record(fields) => fields
            .iter()
            .try_for_each(|(_, v)| collect(v, store, resources, out)),
        Val::Option(Some(v))
        | Val::Result(Ok(Some(v)))
        | Val::Result(Err(Some(v)))
        | Val::Variant(_, Some(v)) => collect(v, store, resources, out),
        _ => Ok(()),
    }
}

/// Checks that every handle in the results of a dynamic function is of the resource its
/// type names (wasmtime would refuse it later, as a trap of the guest; this names the host's
/// mistake).
pub(crate) fn check_handles(results: &[Val], types: impl Iterator<Item = Type>) -> Result<()> {
    for (i, (val, ty)) in results.iter().zip(types).enumerate() {
        if has_resources(&ty) && !handles_fit(val, &ty) {
            return Err(Error::new(
                ErrorKind::HostPanic,
                format!("result {i} holds a handle of another resource than its type names"),
            ));
        }
    }
    Ok(())
}

fn handles_fit(val: &Val, ty: &Type) -> bool {
    match (val, ty) {
        (Val::Resource(any), Type::Own(rt) | Type::Borrow(rt)) => any.ty() == *rt,
        (Val::List(items), Type::List(l)) => items.iter().all(|v| handles_fit(v, &l.ty())),
        (Val::Tuple(items), Type::Tuple(t)) => {
            items.iter().zip(t.types()).all(|(v, t)| handles_fit(v, &t))
        }
        (Val::Record(fields), Type::Record(r)) => fields
            .iter()
            .zip(r.fields())
            .all(|((_, v), f)| handles_fit(v, &f.ty)),
        (Val::Option(Some(v)), Type::Option(o)) => handles_fit(v, &o.ty()),
        (Val::Result(Ok(Some(v))), Type::Result(r)) => r.ok().is_none_or(|t| handles_fit(v, &t)),
        (Val::Result(Err(Some(v))), Type::Result(r)) => r.err().is_none_or(|t| handles_fit(v, &t)),
        (Val::Variant(case, Some(v)), Type::Variant(var)) => var
            .cases()
            .find(|c| c.name == case)
            .and_then(|c| c.ty)
            .is_none_or(|t| handles_fit(v, &t)),
        _ => true,
    }
}

fn not_ours() -> Error {
    Error::new(
        ErrorKind::HostPanic,
        "the handle is not a parameter of this call of a dynamic resource of the interface",
    )
}
