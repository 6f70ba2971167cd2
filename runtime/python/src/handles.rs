//! Resource handles of host interfaces written in Python (`HostInterface.resource`): the
//! values behind a dynamic resource's handles (`HostInterface::resource_dynamic`) are the
//! Python objects themselves, one `Py<PyAny>` each.
//!
//! While a Python host function runs, a handle among its parameters becomes the object
//! behind it (an `own` parameter is taken: the object is the host's again), and an object
//! in its results becomes a new handle, after checking that it is an instance of the class
//! its resource was declared with. The runtime's reference to an object is dropped when
//! the guest drops the handle or its instance ends; the decrement waits for the next time
//! the native module holds the GIL (at the latest when the call that dropped it returns),
//! so a guest never waits for the GIL to drop a handle.

use membrane::{DynamicObjects, Error, Type, type_name};
use pyo3::prelude::*;
use wasmtime::component::{ResourceAny, ResourceType, Val};

/// The classes of an interface's resources, by resource name.
pub type Classes = [(String, Py<PyAny>)];

/// The host objects of the instance a Python host function serves.
pub struct Handles<'o, 'a> {
    objects: &'o mut DynamicObjects<'a>,
    classes: &'o Classes,
    /// A failure that is not the Python value's fault (a handle gone, the handle limit),
    /// kept with its kind while the value's conversion reports only that it failed.
    pub failure: Option<Error>,
}

impl<'o, 'a> Handles<'o, 'a> {
    pub fn new(objects: &'o mut DynamicObjects<'a>, classes: &'o Classes) -> Self {
        Handles {
            objects,
            classes,
            failure: None,
        }
    }

    /// The object behind handle `h`, a parameter of the call.
    pub fn object<'py>(&mut self, py: Python<'py>, h: &ResourceAny) -> PyResult<Bound<'py, PyAny>> {
        let found = if h.owned() {
            self.objects
                .take(h)
                .and_then(|v| v.downcast::<Py<PyAny>>().map_err(|_| not_python()))
                .map(|obj| obj.into_bound(py))
        } else {
            self.objects.get(h).and_then(|v| {
                v.downcast_ref::<Py<PyAny>>()
                    .map(|obj| obj.clone_ref(py).into_bound(py))
                    .ok_or_else(not_python)
            })
        };
        found.map_err(|e| {
            let err = pyo3::exceptions::PyRuntimeError::new_err(membrane::chain(&e));
            self.failure = Some(e);
            err
        })
    }

    /// A new handle of resource `rt` to `obj`, which must be an instance of the resource's
    /// class.
    pub fn handle(&mut self, obj: &Bound<'_, PyAny>, rt: &ResourceType) -> Result<Val, String> {
        let Some(name) = self.objects.resource_name(rt).map(str::to_string) else {
            return Err(": a handle of a resource the interface does not implement".into());
        };
        let Some((_, cls)) = self.classes.iter().find(|(n, _)| *n == name) else {
            return Err(format!(": the resource `{name}` has no class"));
        };
        let cls = cls.bind(obj.py());
        if !obj.is_instance(cls).unwrap_or(false) {
            return Err(format!(
                ": expected {name} (an instance of {}), got {}",
                qualname(cls),
                qualname(&obj.get_type().into_any())
            ));
        }
        match self.objects.insert(&name, Box::new(obj.clone().unbind())) {
            Ok(h) => Ok(Val::Resource(h)),
            Err(e) => {
                let why = format!(": {e}");
                self.failure = Some(e);
                Err(why)
            }
        }
    }

    /// The name of a type for messages, a resource of the interface by its name.
    pub fn type_name(&self, ty: &Type) -> String {
        match ty {
            Type::Own(rt) | Type::Borrow(rt) => self
                .objects
                .resource_name(rt)
                .map_or_else(|| type_name(ty), str::to_string),
            other => type_name(other),
        }
    }
}

fn qualname(cls: &Bound<'_, PyAny>) -> String {
    cls.getattr("__qualname__")
        .and_then(|n| n.extract::<String>())
        .unwrap_or_else(|_| "an object".into())
}

fn not_python() -> Error {
    Error::new(
        membrane::ErrorKind::HostPanic,
        "the handle's value is not a Python object",
    )
}
