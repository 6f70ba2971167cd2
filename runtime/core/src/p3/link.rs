//! A WASI 0.3 importer's side of a link to another module (`link/forward.rs` defines the
//! rest): each linked function becomes a host function of the 0.3 engine's linker.
//!
//! An `async func` import waits without holding the importer's Store, so the importer's
//! other calls go on meanwhile; its `stream<u8>` and `future` values cross as pipes ([`super::pipe`]). A
//! plain (synchronous) import waits holding the Store, as wasmtime requires: the importer's
//! other calls wait with it.

use std::sync::Arc;

use wasmtime::AsContextMut;
use wasmtime::component::{LinkerInstance, Val};

use super::{deadlines, pipe};
use crate::error::Result;
use crate::instance::HostState;
use crate::link::LinkedFunc;
use crate::module::{Resolved, Target};

/// Defines `f` in `inst`, forwarding every call to `target` within the deadline of the
/// importer's call that made it.
pub fn define(
    inst: &mut LinkerInstance<'_, HostState>,
    f: &LinkedFunc,
    target: Arc<Target>,
) -> wasmtime::Result<()> {
    if !f.is_async {
        return inst.func_new_async(&f.name, move |mut store, _ty, params, results| {
            let deadline = deadlines::running_deadline(&mut store);
            Box::new(forward(target.get_full(), params, results, deadline))
        });
    }
    let streams = Arc::new((pipe::positions(&f.params), pipe::positions(&f.results)));
    inst.func_new_concurrent(&f.name, move |acc, _ty, params, results| {
        let deadline = acc.with(|mut s| deadlines::running_deadline(&mut s.as_context_mut()));
        let streams = streams.clone();
        // Stream and future arguments leave the importer's Store as pipes...
        let piped = (!streams.0.is_empty()).then(|| {
            let mut vals = params.to_vec();
            acc.with(|mut s| pipe::take_all(&mut s, &streams.0, &mut vals))
                .map(|()| pipe::Tickets {
                    vals,
                    at: pipe::indices(&streams.0),
                })
        });
        let r = target.get_full();
        Box::pin(async move {
            let piped = piped.transpose()?;
            let args = piped.as_ref().map_or(params, |t| &t.vals[..]);
            forward(r, args, results, deadline).await?;
            // ...and returned ones come back into it.
            if !streams.1.is_empty() {
                acc.with(|mut s| pipe::give_all(&mut s, &pipe::indices(&streams.1), results))?;
            }
            Ok(())
        })
    })
}

/// One linked call, within `deadline`.
async fn forward(
    r: Result<Arc<Resolved>>,
    params: &[Val],
    results: &mut [Val],
    deadline: std::time::Instant,
) -> wasmtime::Result<()> {
    let r = r.map_err(wasmtime::Error::new)?;
    r.generation
        .invoke_into_async(&r.func, params, results, Some(deadline))
        .await
        .map_err(wasmtime::Error::new)
}
