//! Interfaces implemented in Rust by the embedding application.
//!
//! A module reaches a host interface only through a link that names it
//! (`links = { "acme:editor/buffer" = "host" }`); modules without that link cannot call it.
//! Functions are typed Rust closures; wasmtime checks their types against the importer's
//! when the app loads, so a mismatch is a load error, never a call-time surprise.
//!
//! Resources: an interface can implement WIT resources with Rust types ([`HostInterface::
//! resource`], [`constructor`](HostInterface::constructor), [`method`](HostInterface::method)
//! and [`func_with`](HostInterface::func_with) for functions that take or return handles).
//! The values live with the calling instance (see `objects.rs`). Hosts whose values are not
//! Rust types declare dynamic resources instead ([`HostInterface::resource_dynamic`] and
//! [`func_dynamic_with`](HostInterface::func_dynamic_with); see `dynamic.rs`).

use std::fmt;
use std::sync::Arc;

use wasmtime::component::types::ComponentFunc;
use wasmtime::component::{
    ComponentNamedList, Lift, LinkerInstance, Lower, Resource, ResourceType, Val,
};

use super::dynamic::{DynamicObjects, DynamicResources};
use super::objects::{HostObjects, MethodParams};
use super::session::links;
use crate::error::{Error, ErrorKind, Result};
use crate::instance::HostState;

/// Defines one function or resource in an importer's linker instance; gets the interface's
/// dynamic resources.
type Installer = Arc<
    dyn Fn(&mut LinkerInstance<'_, HostState>, &Arc<DynamicResources>) -> wasmtime::Result<()>
        + Send
        + Sync,
>;

/// A function with dynamic values ([`HostInterface::func_dynamic`]): gets the function's
/// type (the importer's), its arguments, and fills its results.
pub type DynamicFunc = dyn Fn(&ComponentFunc, &[Val], &mut [Val]) -> Result<()> + Send + Sync;

/// A function with dynamic values that reaches host objects
/// ([`HostInterface::func_dynamic_with`]).
pub type DynamicFuncWith =
    dyn Fn(&mut DynamicObjects<'_>, &ComponentFunc, &[Val], &mut [Val]) -> Result<()> + Send + Sync;

/// A WIT interface implemented by the host application.
///
/// ```
/// use membrane_core::HostInterface;
///
/// let buffer = HostInterface::new("acme:editor/buffer@0.1.0")
///     .func("line-count", |(): ()| Ok((42u32,)))
///     .func("line", |(n,): (u32,)| Ok((format!("line {n}"),)));
/// # let _ = buffer;
/// ```
///
/// With a resource (`resource document { constructor(text: string); text: func() -> string;
/// append: func(more: string); }` and `open: func(name: string) -> document`):
///
/// ```
/// use membrane_core::HostInterface;
///
/// struct Document(String);
///
/// let docs = HostInterface::new("acme:docs/store@0.1.0")
///     .resource::<Document>("document")
///     .constructor("document", |(text,): (String,)| Ok(Document(text)))
///     .method("document", "text", |doc: &mut Document, (): ()| Ok((doc.0.clone(),)))
///     .method("document", "append", |doc: &mut Document, (more,): (String,)| {
///         doc.0.push_str(&more);
///         Ok(())
///     })
///     .func_with("open", |objects, (name,): (String,)| {
///         Ok((objects.insert(Document(format!("# {name}")))?,))
///     });
/// # let _ = docs;
/// ```
///
/// Use one Rust type per resource: the type is the resource's identity, so two resources
/// implemented by the same Rust type would accept each other's handles.
#[derive(Clone)]
pub struct HostInterface {
    name: String,
    funcs: Vec<(String, Installer)>,
    resources: Vec<(String, Installer)>,
    /// The declared signatures of dynamic functions, checked against the importer's types
    /// when an app links to the interface.
    signatures: Vec<(String, String)>,
    /// Dynamic resources ([`resource_dynamic`](Self::resource_dynamic)): name and resource
    /// type id.
    dynamic: Vec<(String, u32)>,
}

impl fmt::Debug for HostInterface {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HostInterface")
            .field("name", &self.name)
            .field("funcs", &self.func_names())
            .field("resources", &self.resource_names())
            .finish()
    }
}

impl HostInterface {
    /// An interface called `name` (`ns:pkg/iface@version`), with no functions yet.
    pub fn new(name: impl Into<String>) -> Self {
        HostInterface {
            name: name.into(),
            funcs: Vec::new(),
            resources: Vec::new(),
            signatures: Vec::new(),
            dynamic: Vec::new(),
        }
    }

    /// Adds a function. Parameters and results are tuples of Rust types that map to the
    /// WIT types (`String` for `string`, `Vec<T>` for `list<T>`, `Option`, `Result`, ...).
    /// An `Err` becomes a failed call for the module that called it. Adding a function
    /// under a name already added replaces the earlier one.
    pub fn func<P, R, F>(mut self, name: &str, f: F) -> Self
    where
        P: ComponentNamedList + Lift + 'static,
        R: ComponentNamedList + Lower + 'static,
        F: Fn(P) -> Result<R> + Send + Sync + 'static,
    {
        let f = Arc::new(f);
        let owned = name.to_string();
        let iface = self.name.clone();
        let installer: Installer = Arc::new(move |inst: &mut LinkerInstance<'_, HostState>, _| {
            let f = f.clone();
            let what = format!("host function {iface}#{owned}");
            inst.func_wrap(&owned, move |_store, params: P| {
                f(params).map_err(|e| wasmtime::Error::new(e.context(&what)))
            })
        });
        self.funcs.retain(|(n, _)| n != name);
        self.signatures.retain(|(n, _)| n != name);
        self.funcs.push((name.to_string(), installer));
        self
    }

    /// Adds a function whose values are dynamic ([`Val`]), for hosts whose functions are
    /// not Rust closures of fixed types (the C and Python bindings). `signature` is the
    /// function's WIT type with every type written out (a record as `record { x: s32 }`, as
    /// the load error for a mismatch prints it), parameter names optional:
    /// `func(a: u32, b: u32) -> u32`, `func(string)`, `func() -> list<string>`. An app
    /// whose module imports the function with another type is refused at load (a `link`
    /// error naming both); `f` then gets values of exactly that type and must fill every
    /// result with a value of its type (a wrong one fails the guest's call, never the host).
    pub fn func_dynamic<F>(self, name: &str, signature: &str, f: F) -> Self
    where
        F: Fn(&ComponentFunc, &[Val], &mut [Val]) -> Result<()> + Send + Sync + 'static,
    {
        let f: Arc<DynamicFunc> = Arc::new(f);
        let owned = name.to_string();
        let what = format!("host function {}#{name}", self.name);
        let mut this = self.with_func(name, move |inst, _| {
            let (f, what) = (f.clone(), what.clone());
            inst.func_new(&owned, move |_store, ty, params, results| {
                f(&ty, params, results)
                    .and_then(|()| super::signature::check_results(&ty, results))
                    .map_err(|e| wasmtime::Error::new(e.context(&what)))
            })
        });
        this.signatures
            .push((name.to_string(), super::signature::normalize(signature)));
        this
    }

    /// Adds a function with dynamic values, as [`func_dynamic`](Self::func_dynamic), that can
    /// take and return handles of the interface's dynamic resources
    /// ([`resource_dynamic`](Self::resource_dynamic)): in `signature` a resource is written
    /// by name (`document` or `own<document>` for an owned handle, `borrow<document>`). `f`
    /// gets handles as `Val::Resource` and reaches their values with
    /// [`DynamicObjects::get`] (and [`take`](DynamicObjects::take) for an `own`); a value it
    /// returns as a handle is [`insert`](DynamicObjects::insert)ed first. Constructors,
    /// methods and static functions of a dynamic resource are such functions, named
    /// `[constructor]r`, `[method]r.name` (whose first parameter is `self:
    /// borrow<r>`) and `[static]r.name`:
    ///
    /// ```
    /// use membrane_core::HostInterface;
    /// use wasmtime::component::Val;
    ///
    /// let docs = HostInterface::new("acme:docs/store@0.1.0")
    ///     .resource_dynamic("document")
    ///     .func_dynamic_with("[constructor]document", "func(text: string) -> document",
    ///         |objects, _ty, args, results| {
    ///             let Val::String(text) = &args[0] else { unreachable!("checked at load") };
    ///             let handle = objects.insert("document", Box::new(text.clone()))?;
    ///             results[0] = Val::Resource(handle);
    ///             Ok(())
    ///         })
    ///     .func_dynamic_with("[method]document.text", "func(self: borrow<document>) -> string",
    ///         |objects, _ty, args, results| {
    ///             let Val::Resource(this) = &args[0] else { unreachable!("checked at load") };
    ///             let text = objects.get(this)?.downcast_ref::<String>().cloned();
    ///             results[0] = Val::String(text.unwrap_or_default());
    ///             Ok(())
    ///         });
    /// # let _ = docs;
    /// ```
    pub fn func_dynamic_with<F>(self, name: &str, signature: &str, f: F) -> Self
    where
        F: Fn(&mut DynamicObjects<'_>, &ComponentFunc, &[Val], &mut [Val]) -> Result<()>
            + Send
            + Sync
            + 'static,
    {
        let f: Arc<DynamicFuncWith> = Arc::new(f);
        let owned = name.to_string();
        let what = format!("host function {}#{name}", self.name);
        let mut this = self.with_func(name, move |inst, dynamic| {
            let (f, what, dynamic) = (f.clone(), what.clone(), dynamic.clone());
            inst.func_new(&owned, move |store, ty, params, results| {
                let outcome =
                    DynamicObjects::receive(store, &dynamic, ty.params().map(|(_, t)| t), params)
                        .and_then(|mut objects| {
                            let r = f(&mut objects, &ty, params, results);
                            objects.finish();
                            r
                        })
                        .and_then(|()| super::signature::check_results(&ty, results))
                        .and_then(|()| super::dynamic::check_handles(results, ty.results()));
                outcome.map_err(|e| wasmtime::Error::new(e.context(&what)))
            })
        });
        this.signatures
            .push((name.to_string(), super::signature::normalize(signature)));
        this
    }

    /// The signature `name` was declared with, if it is a dynamic function
    /// ([`func_dynamic`](Self::func_dynamic), [`func_dynamic_with`](Self::func_dynamic_with)),
    /// normalized.
    pub fn signature(&self, name: &str) -> Option<&str> {
        self.signatures
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, s)| s.as_str())
    }

    /// Adds a function that can create, reach or take back host objects (the values behind
    /// resource handles): a `[static]` function of a resource (named
    /// `[static]<resource>.<name>`), or a free function that takes or returns handles. Handles
    /// are [`Resource<T>`] in `P` and `R`, for `own` and `borrow` alike.
    pub fn func_with<P, R, F>(self, name: &str, f: F) -> Self
    where
        P: ComponentNamedList + Lift + 'static,
        R: ComponentNamedList + Lower + 'static,
        F: Fn(&mut HostObjects<'_>, P) -> Result<R> + Send + Sync + 'static,
    {
        let f = Arc::new(f);
        let owned = name.to_string();
        let what = format!("host function {}#{name}", self.name);
        self.with_func(name, move |inst, _| {
            let (f, what) = (f.clone(), what.clone());
            inst.func_wrap(&owned, move |mut store, params: P| {
                let l = links(store.data_mut());
                let mut objects = HostObjects::new(&mut l.objects, l.proxies.len());
                f(&mut objects, params).map_err(|e| wasmtime::Error::new(e.context(&what)))
            })
        })
    }

    /// Declares the WIT resource `name`, implemented by the Rust type `T`. A value is
    /// dropped when the guest drops its handle, or when the guest's instance ends.
    pub fn resource<T: Send + 'static>(self, name: &str) -> Self {
        self.with_resource(name, ResourceType::host::<T>())
    }

    /// Declares the WIT resource `name` with dynamic values (`Box<dyn Any + Send>`), for
    /// hosts whose values are not Rust types: its constructor, methods and static functions,
    /// and the functions that take or return its handles, are added with
    /// [`func_dynamic_with`](Self::func_dynamic_with). It is a resource type of its own
    /// (`ResourceType::host_dynamic` with an id no other resource has; see `dynamic.rs` for
    /// why), so a guest cannot pass its handles for another resource's, nor another's for
    /// its. A value is dropped when the guest drops its handle, when the guest's instance
    /// ends, or when a function that got it as an `own` parameter did not take it.
    pub fn resource_dynamic(self, name: &str) -> Self {
        let id = super::resource_ids::new_resource_type();
        let mut this = self.with_resource(name, ResourceType::host_dynamic(id));
        this.dynamic.push((name.to_string(), id));
        this
    }

    fn with_resource(mut self, name: &str, ty: ResourceType) -> Self {
        let owned = name.to_string();
        let installer: Installer = Arc::new(move |inst: &mut LinkerInstance<'_, HostState>, _| {
            inst.resource(&owned, ty, |mut store, rep| {
                links(store.data_mut()).objects.remove(rep);
                Ok(())
            })
        });
        self.resources.retain(|(n, _)| n != name);
        self.dynamic.retain(|(n, _)| n != name);
        self.resources.push((name.to_string(), installer));
        self
    }

    /// Adds the constructor of `resource` (declared with [`resource`](Self::resource)):
    /// `f` makes the value from the constructor's parameters.
    pub fn constructor<T, P, F>(self, resource: &str, f: F) -> Self
    where
        T: Send + 'static,
        P: ComponentNamedList + Lift + 'static,
        F: Fn(P) -> Result<T> + Send + Sync + 'static,
    {
        self.func_with(
            &format!("[constructor]{resource}"),
            move |objects, params: P| -> Result<(Resource<T>,)> {
                Ok((objects.insert(f(params)?)?,))
            },
        )
    }

    /// Adds the method `name` of `resource`: `f` gets the value behind the `self` handle
    /// and the other parameters.
    pub fn method<T, P, R, F>(self, resource: &str, name: &str, f: F) -> Self
    where
        T: Send + 'static,
        P: MethodParams<T>,
        R: ComponentNamedList + Lower + 'static,
        F: Fn(&mut T, P) -> Result<R> + Send + Sync + 'static,
    {
        self.func_with(
            &format!("[method]{resource}.{name}"),
            move |objects, full: P::Full| {
                let (this, params) = P::split(full);
                f(objects.get(&this)?, params)
            },
        )
    }

    fn with_func(
        mut self,
        name: &str,
        install: impl Fn(
            &mut LinkerInstance<'_, HostState>,
            &Arc<DynamicResources>,
        ) -> wasmtime::Result<()>
        + Send
        + Sync
        + 'static,
    ) -> Self {
        self.funcs.retain(|(n, _)| n != name);
        self.signatures.retain(|(n, _)| n != name);
        self.funcs.push((name.to_string(), Arc::new(install)));
        self
    }

    /// The interface name.
    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn has_func(&self, name: &str) -> bool {
        self.funcs.iter().any(|(n, _)| n == name)
    }

    pub fn has_resource(&self, name: &str) -> bool {
        self.resources.iter().any(|(n, _)| n == name)
    }

    pub fn resource_names(&self) -> Vec<&str> {
        self.resources.iter().map(|(n, _)| n.as_str()).collect()
    }

    pub fn func_names(&self) -> Vec<&str> {
        self.funcs.iter().map(|(n, _)| n.as_str()).collect()
    }

    pub fn validate(&self) -> Result<()> {
        crate::names::validate_link_key(&self.name)
            .map_err(|msg| Error::new(ErrorKind::Link, format!("host interface: {msg}")))
    }

    /// Defines the functions the importer needs in its linker instance.
    pub fn install(
        &self,
        inst: &mut LinkerInstance<'_, HostState>,
        needed: &[String],
        resources: &[String],
    ) -> wasmtime::Result<()> {
        let dynamic: Arc<DynamicResources> = self.dynamic.clone().into();
        for (name, installer) in &self.resources {
            if resources.contains(name) {
                installer(inst, &dynamic)?;
            }
        }
        for (name, installer) in &self.funcs {
            if needed.contains(name) {
                installer(inst, &dynamic)?;
            }
        }
        Ok(())
    }
}
