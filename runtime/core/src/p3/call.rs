//! One call of an export, made inside a WASI 0.3 instance's event loop.

use std::sync::Arc;
use std::time::Instant;

use tokio::sync::oneshot;
use wasmtime::AsContextMut;
use wasmtime::component::{Accessor, ComponentExportIndex, Instance, Val};

use super::deadlines;
use super::driver::{self, Job};
use super::pipe::{self, Tickets};
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
    /// The arguments; `stream<u8>` ones cross as pipes (`pipe.rs`).
    args: Tickets,
    results: usize,
    deadline: Instant,
    /// The positions of the results that cross as pipes (streams, futures), with how.
    stream_results: Vec<(usize, pipe::Crossing)>,
}

impl Call {
    pub fn new(recipe: &Arc<Recipe>, func: &Function, args: &[Val], deadline: Instant) -> Call {
        Call {
            recipe: recipe.clone(),
            name: func.name.clone(),
            index: func.index,
            args: Tickets {
                vals: args.to_vec(),
                at: pipe::indices(&pipe::positions(func.params.iter().map(|(_, t)| t))),
            },
            results: func.results.len(),
            deadline,
            stream_results: pipe::positions(&func.results),
        }
    }

    /// The call as a job for a driver; `first` when it starts the instance's busy period.
    pub fn job(self, first: bool, tx: oneshot::Sender<Result<Tickets>>) -> Job {
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
    ) -> Result<Tickets> {
        let Call {
            recipe,
            name,
            index,
            args,
            results,
            deadline,
            stream_results,
        } = self;
        let mut args = args;
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
            let at = args.at.clone();
            pipe::give_all(&mut s, &at, &mut args.vals).map_err(|e| {
                Error::new(
                    crate::error::ErrorKind::Unavailable,
                    format!(
                        "module `{}`: a stream or future argument was lost",
                        recipe.name
                    ),
                )
                .with_source(e)
            })?;
            args.at.clear();
            let call = func.start_call_concurrent(&mut s, &args.vals, slots);
            Ok((func, call))
        });
        let (func, call) = started?;
        let call = call.map_err(|e| failed(acc, e))?;
        let task = call.task();
        acc.with(|mut s| deadlines::register(s.get(), task, deadline));
        let r = func.finish_call_concurrent(acc, call).await;
        acc.with(|mut s| deadlines::unregister(s.get(), task));
        r.map_err(|e| failed(acc, e))?;
        if !stream_results.is_empty() {
            acc.with(|mut s| pipe::take_all(&mut s, &stream_results, &mut out))
                .map_err(|e| failed(acc, e))?;
        }
        // Tickets of returned streams go back with the answer; a caller that is gone by
        // then drops their pipes with it.
        Ok(Tickets {
            vals: out,
            at: pipe::indices(&stream_results),
        })
    }
}
