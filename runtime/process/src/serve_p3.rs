//! A WASI 0.3 module in a worker: the worker's side.
//!
//! A worker serves each connection on a thread of its own, one call at a time
//! (`serve.rs`). A 0.3 call runs there too, on the 0.3 engine the worker made from the
//! host's settings, inside its instance's event loop (`run_concurrent`) on a
//! single-threaded tokio runtime of the connection's thread, until the call is answered.
//! So `limits.concurrency` does not apply in a worker: an instance runs one call at a time
//! (the host holds a connection, and so an instance, per call in flight), as for a 0.2
//! module; tasks a call leaves running go on during the instance's next call.
//!
//! The guest's linked calls go to the host over the connection as a 0.2 guest's do; an
//! `async func` import waits for the answer holding the instance (it runs one call).
//! Streams and futures never reach a worker: links passing them are refused at load.

use std::cell::RefCell;
use std::sync::Arc;

use tokio::sync::oneshot;
use wasmtime::AsContextMut;
use wasmtime::component::{Accessor, Component, Linker, Val};

use super::linked::{define_each, linked_call};
use crate::error::{Error, ErrorKind, Result};
use crate::instance::{Budget, HostState, LiveInstance, Recipe};
use crate::value::Function;
use membrane_core::classify::classify;
use membrane_core::p3::call::Call;
use membrane_core::p3::deadlines;

thread_local! {
    /// The connection thread's runtime for its 0.3 instance's event loop and the WASI 0.3
    /// functions (timers, sockets), made at its first call.
    static RUNTIME: RefCell<Option<tokio::runtime::Runtime>> = const { RefCell::new(None) };
}

/// Runs `f` on the connection thread's runtime.
fn on_runtime<T>(f: impl FnOnce(&tokio::runtime::Runtime) -> Result<T>) -> Result<T> {
    RUNTIME.with(|cell| {
        let mut cell = cell.borrow_mut();
        if cell.is_none() {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| Error::io("the worker cannot start its WASI 0.3 event loop", e))?;
            *cell = Some(rt);
        }
        f(cell.as_ref().expect("set above"))
    })
}

/// One call of `func` on `instance` (a new one when `None`) within `budget`: its results
/// and the instance, which may take the next call. A failure drops the instance.
pub(crate) fn call(
    recipe: &Arc<Recipe>,
    instance: Option<LiveInstance>,
    func: &Function,
    args: &[Val],
    budget: Budget,
) -> Result<(Vec<Val>, LiveInstance)> {
    on_runtime(|rt| rt.block_on(run(recipe, instance, func, args, budget)))
}

async fn run(
    recipe: &Arc<Recipe>,
    instance: Option<LiveInstance>,
    func: &Function,
    args: &[Val],
    budget: Budget,
) -> Result<(Vec<Val>, LiveInstance)> {
    let mut inst = match instance {
        Some(i) => i,
        None => LiveInstance::new_async(recipe, None).await?,
    };
    // The Store's own limits (memory, the epoch clock) for this call; the call's task gets
    // its deadline when it starts (`p3/call.rs`).
    inst.arm(recipe, budget)?;
    let (tx, rx) = oneshot::channel();
    let job = Call::new(recipe, func, args, budget.deadline).job(true, tx);
    let handle = inst.handle();
    let ran = tokio::time::timeout_at(
        budget.deadline.into(),
        inst.store
            .run_concurrent(async |acc: &Accessor<HostState>| job(acc, handle).await),
    )
    .await;
    match ran {
        // Waiting past its deadline (a CPU loop is interrupted by the epoch clock instead).
        Err(_) => Err(timed_out(recipe)),
        Ok(Err(e)) => {
            let slots = &inst.store.data().slots;
            Err(classify(
                e,
                &recipe.name,
                slots,
                &recipe.policy,
                &func.name,
                Some(&func.name),
            ))
        }
        Ok(Ok(())) => match rx.await {
            Ok(Ok(mut answer)) => Ok((std::mem::take(&mut answer.vals), inst)),
            Ok(Err(e)) => Err(e),
            Err(_) => Err(Error::new(
                ErrorKind::Unavailable,
                format!("module `{}`: the call ended without an answer", recipe.name),
            )
            .with_module(&*recipe.name)),
        },
    }
}

fn timed_out(recipe: &Recipe) -> Error {
    let name = &recipe.name;
    Error::new(
        ErrorKind::Timeout,
        format!(
            "module `{name}`: the call ran past its deadline (timeout {:?}); raise \
             [modules.{name}.limits] timeout if it needs longer",
            recipe.limits.timeout
        ),
    )
    .with_module(&**name)
}

/// [`super::serve`]'s links for a WASI 0.3 component: each imported function calls the
/// host over the connection; wasmtime requires plain imports of the 0.3 engine to be async
/// host functions, and `async func` imports concurrent ones.
pub(crate) fn define_links(
    linker: &mut Linker<HostState>,
    component: &Component,
    engine: &wasmtime::Engine,
    values: usize,
) -> Result<()> {
    define_each(linker, component, engine, |inst, fname, f| {
        let f = Arc::new(f);
        if f.is_async {
            inst.func_new_concurrent(fname, move |acc, _ty, args, out| {
                let deadline =
                    acc.with(|mut s| deadlines::running_deadline(&mut s.as_context_mut()));
                let f = f.clone();
                Box::pin(async move {
                    linked_call(&f.name, &f.params, &f.results, args, out, deadline, values)
                        .map_err(wasmtime::Error::new)
                })
            })
        } else {
            inst.func_new_async(fname, move |mut store, _ty, args, out| {
                let deadline = deadlines::running_deadline(&mut store);
                let f = f.clone();
                Box::new(async move {
                    linked_call(&f.name, &f.params, &f.results, args, out, deadline, values)
                        .map_err(wasmtime::Error::new)
                })
            })
        }
    })
}

#[cfg(test)]
mod tests {
    /// The runtime is made once per thread and reused.
    #[test]
    fn one_runtime_per_thread() {
        let a = super::on_runtime(|rt| Ok(rt.handle().id())).unwrap();
        let b = super::on_runtime(|rt| Ok(rt.handle().id())).unwrap();
        assert_eq!(a, b);
        let c = std::thread::spawn(|| super::on_runtime(|rt| Ok(rt.handle().id())).unwrap())
            .join()
            .unwrap();
        assert_ne!(a, c);
    }
}
