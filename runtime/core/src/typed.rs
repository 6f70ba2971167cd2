//! Typed calls: an export looked up once, checked once against Rust types, then called
//! with Rust values, without converting to and from `Val`.

use std::marker::PhantomData;
use std::sync::Arc;

use wasmtime::component::{ComponentNamedList, Lift, Lower};

use crate::error::{Error, ErrorKind, Result};
use crate::instance::LiveInstance;
use crate::module::{Module, Target};
use crate::value::type_name;

/// A typed handle on one export of one module: `P` is the tuple of parameters and `R` the
/// tuple of results, in Rust types that map to the export's WIT types (`u32`, `String`,
/// `Vec<T>`, `Option<T>`, `Result<T, E>`, tuples, and records, variants, enums and flags
/// from `wasmtime::component::bindgen!` or the `ComponentType` derives).
///
/// ```no_run
/// # async fn demo(app: membrane_core::App) -> membrane_core::Result<()> {
/// let add = app.typed::<(u32, u32), (u32,)>("plugin", "acme:math/ops#add")?;
/// let (sum,) = add.call((3, 4)).await?;
/// # let _ = sum;
/// # Ok(())
/// # }
/// ```
///
/// Calls run exactly like [`App::call`](crate::App::call) and
/// [`App::call_blocking`](crate::App::call_blocking): on an instance of the module's pool,
/// under its limits and supervision. Cheap to clone.
pub struct Typed<P, R> {
    /// The export in the module's current generation; a new generation is checked against
    /// `P` and `R` on its first call.
    target: Arc<Target>,
    _types: PhantomData<fn(P) -> R>,
}

impl<P, R> Clone for Typed<P, R> {
    fn clone(&self) -> Self {
        Typed {
            target: self.target.clone(),
            _types: PhantomData,
        }
    }
}

impl<P, R> std::fmt::Debug for Typed<P, R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Typed")
            .field("module", &self.target.module.name)
            .field("export", &self.target.export())
            .finish()
    }
}

impl<P, R> Typed<P, R>
where
    P: ComponentNamedList + Lower + Send + Sync,
    R: ComponentNamedList + Lift + Send + Sync + 'static,
{
    /// Checks `P` and `R` against the export, on one instance of the module.
    pub fn new(module: Arc<Module>, export: &str) -> Result<Self> {
        let target = Target::new(module, export)?;
        let resolved = target.get_full()?;
        let (generation, func) = (&resolved.generation, &resolved.func);
        let mut instance = LiveInstance::new(generation.recipe(), None)?;
        if let Err(e) = instance.check_typed::<P, R>(generation.recipe(), func)? {
            return Err(Error::new(
                ErrorKind::InvalidArgs,
                format!(
                    "{} is `func({}){}` in WIT, which the Rust types {} -> {} do not match",
                    func.name,
                    func.params
                        .iter()
                        .map(|(n, t)| format!("{n}: {}", type_name(t)))
                        .collect::<Vec<_>>()
                        .join(", "),
                    match func.results.first() {
                        Some(t) => format!(" -> {}", type_name(t)),
                        None => String::new(),
                    },
                    std::any::type_name::<P>(),
                    std::any::type_name::<R>(),
                ),
            )
            .with_module(&*generation.name)
            .with_export(&func.name)
            .with_source(e));
        }
        let _ = resolved.checked.set(());
        Ok(Typed {
            target: Arc::new(target),
            _types: PhantomData,
        })
    }

    /// Calls the export on the caller's task (see [`App::call`](crate::App::call)).
    pub async fn call(&self, params: P) -> Result<R> {
        let t = self.target.get_full()?;
        let r = t
            .generation
            .invoke_typed_async(&t.func, params, None, Some(&t.checked))
            .await;
        tokio::task::consume_budget().await;
        r
    }

    /// Calls the export on the current thread (see
    /// [`App::call_blocking`](crate::App::call_blocking)).
    pub fn call_blocking(&self, params: P) -> Result<R> {
        let t = self.target.get()?;
        t.generation
            .invoke_typed(&t.func, params, None, Some(&t.checked))
    }

    /// The export's full name.
    pub fn name(&self) -> &str {
        self.target.export()
    }
}
