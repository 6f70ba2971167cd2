//! A worker guest's linked calls, sent to the host over the calling thread's connection
//! (shared by the WASI 0.2 and 0.3 links of `serve.rs` and `serve_p3.rs`), and the errors a
//! worker answers with.

use std::sync::Arc;
use std::time::Instant;

use wasmtime::component::types::{ComponentItem, Type};
use wasmtime::component::{Component, Linker, LinkerInstance, Val};

use super::channel::SPIN;
use super::connection::CONNECTION;
use crate::error::{Error, ErrorKind, Result};
use crate::instance::HostState;
use crate::wire::message::{CALLBACK, CALLBACK_OK, ERR, put_call, read_error};
use crate::wire::value::{self, NoHandles};

/// Values larger than the host accepts from a worker: refused here, as the guest's own
/// error, rather than sent and taken for a broken protocol.
pub(crate) fn too_large(what: &str, len: usize, max: usize) -> Error {
    Error::new(
        ErrorKind::HostcallLimit,
        format!(
            "{what} take {len} bytes, more than the {max} a worker may send its host; \
             lower what crosses, or raise the module's limits.hostcall"
        ),
    )
}

pub(crate) fn startup(what: &str) -> Error {
    Error::new(
        ErrorKind::Unavailable,
        format!("the worker could not start: {what}"),
    )
}

/// A linked call of the guest: sent to the host on this thread's connection, answered there.
pub(crate) fn linked_call(
    name: &str,
    params: &[wasmtime::component::types::Type],
    results: &[wasmtime::component::types::Type],
    args: &[Val],
    out: &mut [Val],
    deadline: Instant,
    values: usize,
) -> Result<()> {
    CONNECTION.with(|c| {
        let mut c = c.borrow_mut();
        let ch = c
            .as_mut()
            .ok_or_else(|| startup("a linked call outside a call"))?;
        let body = ch.begin(CALLBACK);
        put_call(
            body,
            deadline.saturating_duration_since(Instant::now()),
            crate::telemetry::current(),
            name,
        );
        let start = body.len();
        for (v, ty) in args.iter().zip(params) {
            value::encode(v, ty, body, &mut NoHandles)?;
        }
        if body.len() - start > values {
            return Err(too_large(
                "a linked call's arguments",
                body.len() - start,
                values,
            ));
        }
        ch.finish()
            .map_err(|e| Error::io("the host connection failed", e))?;
        match ch.recv(None, SPIN) {
            Ok((CALLBACK_OK, body)) => {
                value::decode_into(body, results, out, &mut NoHandles, values)
            }
            Ok((ERR, body)) => {
                let mut e = read_error(body);
                // The failure is the provider's, as for an in-process link.
                e.set_upstream();
                Err(e)
            }
            Ok((tag, _)) => Err(startup(&format!(
                "unexpected message {tag} during a linked call"
            ))),
            Err(e) => Err(startup(&format!("the host connection ended: {e:?}"))),
        }
    })
}

/// One function of a link a worker defines: its `import#name`, its parameter and result
/// types, and whether the guest imports it as an `async func`.
pub(crate) struct LinkedFn {
    pub name: Arc<str>,
    pub params: Arc<[Type]>,
    pub results: Arc<[Type]>,
    #[cfg_attr(
        not(feature = "p3"),
        allow(dead_code, reason = "only 0.3 links tell them apart")
    )]
    pub is_async: bool,
}

/// Defines, with `define`, each function of the component's imports other than WASI's:
/// links the host planned and checked, each a call back to it.
pub(crate) fn define_each(
    linker: &mut Linker<HostState>,
    component: &Component,
    engine: &wasmtime::Engine,
    mut define: impl FnMut(&mut LinkerInstance<'_, HostState>, &str, LinkedFn) -> wasmtime::Result<()>,
) -> Result<()> {
    let cannot = |import: &str, e: wasmtime::Error| {
        Error::link(format!("cannot link `{import}` in the worker")).with_source(e)
    };
    let ty = component.component_type();
    for (import, item) in ty.imports(engine) {
        if import.starts_with("wasi:") {
            continue;
        }
        let ComponentItem::ComponentInstance(inst_ty) = item.ty else {
            continue;
        };
        let mut inst = linker.instance(import).map_err(|e| cannot(import, e))?;
        for (fname, fitem) in inst_ty.exports(engine) {
            let ComponentItem::ComponentFunc(f) = fitem.ty else {
                continue;
            };
            let linked = LinkedFn {
                name: format!("{import}#{fname}").into(),
                params: f.params().map(|(_, t)| t).collect(),
                results: f.results().collect(),
                is_async: f.async_(),
            };
            define(&mut inst, fname, linked).map_err(|e| cannot(import, e))?;
        }
    }
    Ok(())
}
