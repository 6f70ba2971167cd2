//! One call of an export, made inside a WASI 0.3 instance's event loop.

use std::sync::Arc;
use std::time::Instant;

use tokio::sync::oneshot;
use wasmtime::AsContextMut;
use wasmtime::component::{Accessor, ComponentExportIndex, Instance, Val};

use super::deadlines;
use super::driver::{self, Job};
use crate::classify::classify;
use crate::error::{Error, Result};
use crate::instance::{HostState, Recipe};
use crate::value::Function;

/// What a call needs once it is handed to an instance: owned, as the instance's driver
/// runs it on its own task.
pub struct Call {
    recipe: Arc<Recipe>,
    name: String,
    index: ComponentExportIndex,
    args: Vec<Val>,
    results: usize,
    deadline: Instant,
}

impl Call {
    pub fn new(recipe: &Arc<Recipe>, func: &Function, args: &[Val], deadline: Instant) -> Call {
        Call {
            recipe: recipe.clone(),
            name: func.name.clone(),
            index: func.index,
            args: args.to_vec(),
            results: func.results.len(),
            deadline,
        }
    }

    /// The call as a job for a driver; `first` when it starts the instance's busy period.
    pub fn job(self, first: bool, tx: oneshot::Sender<Result<Vec<Val>>>) -> Job {
        Box::new(move |acc, instance| {
            Box::pin(async move {
                let out = self.run(acc, instance, first).await;
                let _ = tx.send(out);
            })
        })
    }

    async fn run(
        self,
        acc: &Accessor<HostState>,
        instance: Instance,
        first: bool,
    ) -> Result<Vec<Val>> {
        let Call {
            recipe,
            name,
            index,
            args,
            results,
            deadline,
        } = self;
        let mut out = vec![Val::Bool(false); results];
        let failed = |acc: &Accessor<HostState>, e: wasmtime::Error| -> Error {
            acc.with(|mut s| {
                let slots = &s.get().slots;
                classify(e, &recipe.name, slots, &recipe.policy, &name, Some(&name))
            })
        };
        let slots = &mut out[..];
        let started = acc.with(|mut s| -> Result<_> {
            if first {
                let budget = deadline.saturating_duration_since(Instant::now());
                driver::arm(s.as_context_mut(), &recipe, budget)?;
            }
            let func = instance.get_func(&mut s, index).ok_or_else(|| {
                Error::not_found(format!("module `{}` has no function {name}", recipe.name))
                    .with_module(&*recipe.name)
                    .with_export(&name)
            })?;
            let call = func.start_call_concurrent(&mut s, &args, slots);
            Ok((func, call))
        });
        let (func, call) = started?;
        let call = call.map_err(|e| failed(acc, e))?;
        let task = call.task();
        acc.with(|mut s| deadlines::register(s.get(), task, deadline));
        let r = func.finish_call_concurrent(acc, call).await;
        acc.with(|mut s| deadlines::unregister(s.get(), task));
        r.map_err(|e| failed(acc, e))?;
        Ok(out)
    }
}
