//! Linked calls without `Val`s for the signatures most interfaces use.
//!
//! A linked function is normally forwarded dynamically: wasmtime lifts the importer's
//! arguments into `Val`s, Membrane hands them to the provider, which lowers them again, and
//! back for the results. When the function's signature is one of a fixed list of common
//! shapes (integers, floats, bools, strings and byte lists, up to two parameters and one
//! result), the forwarder is a typed host function instead and the provider is called
//! through a typed handle: no `Val` is built on either side.
//!
//! The Rust types are chosen from the importer's WIT types, which the link's type check has
//! already proven identical to the provider's; the first call also checks them against a
//! live provider instance, as wasmtime's typed functions require.

use std::sync::Arc;

use wasmtime::component::types::Type;
use wasmtime::component::{ComponentNamedList, Lift, LinkerInstance, Lower};

use super::shapes::key;
use crate::instance::{Flavour, HostState};
use crate::module::Target;

/// Defines `name` as a typed forwarder to `func` of `provider` when its signature is one
/// of the common shapes (`shapes.rs`); `Ok(false)` when it is not (the caller forwards dynamically).
pub fn define(
    inst: &mut LinkerInstance<'_, HostState>,
    flavour: Flavour,
    name: &str,
    params: &[Type],
    results: &[Type],
    target: &Arc<Target>,
) -> wasmtime::Result<bool> {
    // A WASI 0.3 importer's calls are forwarded dynamically (`forward.rs`).
    if flavour == Flavour::Concurrent {
        return Ok(false);
    }
    let Some(key) = key(params, results) else {
        return Ok(false);
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

fn install<P, R>(
    inst: &mut LinkerInstance<'_, HostState>,
    flavour: Flavour,
    name: &str,
    target: &Arc<Target>,
) -> wasmtime::Result<()>
where
    P: ComponentNamedList + Lift + Lower + Send + Sync + 'static,
    R: ComponentNamedList + Lift + Lower + Send + Sync + 'static,
{
    // The types are checked once per generation of the provider (`Resolved::checked`).
    let target = target.clone();
    match flavour {
        Flavour::Sync => inst.func_wrap(name, move |store, params: P| {
            let deadline = store.data().deadline;
            let r = target.get().map_err(wasmtime::Error::new)?;
            r.generation
                .invoke_typed::<P, R>(&r.func, params, Some(deadline), Some(&r.checked))
                .map_err(wasmtime::Error::new)
        }),
        Flavour::Async | Flavour::Concurrent => {
            inst.func_wrap_async(name, move |store, params: P| {
                // Resolved here, not in the future: the future then holds the resolution
                // alone, not a second reference to the target as well.
                let r = target.get_full();
                Box::new(async move {
                    let deadline = store.data().deadline;
                    let r = r.map_err(wasmtime::Error::new)?;
                    r.generation
                        .invoke_typed_async::<P, R>(
                            &r.func,
                            params,
                            Some(deadline),
                            Some(&r.checked),
                        )
                        .await
                        .map_err(wasmtime::Error::new)
                })
            })
        }
    }
}
