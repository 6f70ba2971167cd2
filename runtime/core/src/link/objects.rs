//! Host objects: the Rust values behind the handles of a host interface's resources.
//!
//! A guest holds a host resource only as a handle in its own handle table; wasmtime turns a
//! handle back into a [`Resource<T>`] only if it was made from one of the host's `T`s, so a
//! guest cannot forge a handle, reach a handle of another instance, or pass one resource
//! type where another is expected. The values live here, in the instance's link state: a
//! value is dropped when the guest drops its handle (the resource's destructor) and, with
//! everything left, when the instance ends (wasmtime does not run host destructors when a
//! Store goes away; dropping this map does). Host objects and resource proxies together
//! are bounded by [`MAX_PROXIES`] per instance.

use std::any::Any;

use rustc_hash::FxHashMap;
use wasmtime::component::{ComponentNamedList, ComponentType, Lift, Resource};

use crate::error::{Error, ErrorKind, Result};

/// The most resource handles one importer instance may hold: proxies of linked modules'
/// resources and host objects together. Past it, [`ErrorKind::TableLimit`].
pub const MAX_PROXIES: usize = 65_536;

/// The host values of one instance, by rep.
#[derive(Default)]
pub struct Objects {
    map: FxHashMap<u32, Box<dyn Any + Send>>,
    next: u32,
}

impl Objects {
    /// How many values the guest holds handles to.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Whether the guest holds no handle.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// Drops the value of a handle the guest dropped.
    pub fn remove(&mut self, rep: u32) {
        self.map.remove(&rep);
    }

    /// The value of handle `rep`, if there is one and it is a `T`.
    pub fn get_mut<T: 'static>(&mut self, rep: u32) -> Option<&mut T> {
        self.map.get_mut(&rep).and_then(|v| v.downcast_mut::<T>())
    }
}

/// The host objects of the instance that made the current call: what a host function of a
/// [`HostInterface`](crate::HostInterface) with resources uses to create, reach and take
/// back the values behind the handles it gives out.
pub struct HostObjects<'a> {
    objects: &'a mut Objects,
    /// Other handles the instance holds (resource proxies).
    others: usize,
}

impl<'a> HostObjects<'a> {
    pub fn new(objects: &'a mut Objects, others: usize) -> Self {
        HostObjects { objects, others }
    }

    /// Stores `value` and returns a handle to give to the guest (as an `own` result).
    ///
    /// Fails with [`ErrorKind::TableLimit`] when the instance already holds
    /// [`MAX_PROXIES`] handles of host objects and linked resources together.
    pub fn insert<T: Send + 'static>(&mut self, value: T) -> Result<Resource<T>> {
        if self.others + self.objects.len() >= MAX_PROXIES {
            return Err(Error::new(
                ErrorKind::TableLimit,
                format!(
                    "the instance holds {MAX_PROXIES} resource handles already; drop handles you no longer need"
                ),
            ));
        }
        let objects = &mut *self.objects;
        let rep = next_rep(&mut objects.next, |r| objects.map.contains_key(&r));
        objects.map.insert(rep, Box::new(value));
        Ok(Resource::new_own(rep))
    }

    /// The value behind a handle the guest passed (`own` or `borrow`).
    pub fn get<T: Send + 'static>(&mut self, handle: &Resource<T>) -> Result<&mut T> {
        self.objects
            .map
            .get_mut(&handle.rep())
            .and_then(|v| v.downcast_mut::<T>())
            .ok_or_else(|| gone(handle.rep()))
    }

    /// Takes back the value of a handle the guest gave away (an `own` parameter): the guest
    /// no longer has the handle, so the value is the host's again.
    pub fn take<T: Send + 'static>(&mut self, handle: Resource<T>) -> Result<T> {
        let rep = handle.rep();
        let map = &mut self.objects.map;
        if !map.get(&rep).is_some_and(|v| v.is::<T>()) {
            return Err(gone(rep));
        }
        let value = map.remove(&rep).ok_or_else(|| gone(rep))?;
        value.downcast::<T>().map(|b| *b).map_err(|_| gone(rep))
    }

    /// How many host objects the instance holds.
    pub fn len(&self) -> usize {
        self.objects.len()
    }

    /// Whether the instance holds no host object.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The next rep after `*next` that is not `taken`, wrapping around; `*next` moves to it.
pub fn next_rep(next: &mut u32, taken: impl Fn(u32) -> bool) -> u32 {
    loop {
        *next = next.wrapping_add(1);
        if !taken(*next) {
            return *next;
        }
    }
}

fn gone(rep: u32) -> Error {
    Error::new(
        ErrorKind::Link,
        format!("host object {rep} is gone (it was taken back by an earlier call)"),
    )
}

/// The parameters of a resource method after its `self` handle: a tuple of up to eight
/// WIT-compatible Rust types (`()` for none). Used by
/// [`HostInterface::method`](crate::HostInterface::method).
pub trait MethodParams<T>: Sized + 'static {
    /// The parameters with the `self` handle in front, as wasmtime sees them.
    type Full: ComponentNamedList + Lift + 'static;
    /// Splits the `self` handle off.
    fn split(full: Self::Full) -> (Resource<T>, Self);
}

macro_rules! method_params {
    ($($a:ident)*) => {
        impl<T: 'static, $($a: ComponentType + Lift + 'static),*> MethodParams<T> for ($($a,)*) {
            type Full = (Resource<T>, $($a,)*);
            #[allow(non_snake_case)]
            fn split(full: Self::Full) -> (Resource<T>, Self) {
                let (this, $($a,)*) = full;
                (this, ($($a,)*))
            }
        }
    };
}

method_params!();
method_params!(A1);
method_params!(A1 A2);
method_params!(A1 A2 A3);
method_params!(A1 A2 A3 A4);
method_params!(A1 A2 A3 A4 A5);
method_params!(A1 A2 A3 A4 A5 A6);
method_params!(A1 A2 A3 A4 A5 A6 A7);
method_params!(A1 A2 A3 A4 A5 A6 A7 A8);
