//! Turning a failed guest call into a typed error that names the module, what it was doing,
//! and the limit to raise when a limit caused it.
//!
//! In order: a guest's exit; a linked provider's failure (its kind is kept, and the error
//! is marked as the provider's, not this module's); the runtime out of instance slots; a
//! stack overflow; then each capability and limit of the module is asked whether its own
//! refusal caused the failure ([`crate::unit::Unit::blame`]); anything else is a trap.

use wasmtime::Trap;
use wasmtime_wasi::I32Exit;

use crate::error::{Error, ErrorKind};
use crate::unit::{BlameCx, Policy, Slots};

/// Ends a call of a generation whose drain time is over (classified as `Unavailable`).
#[derive(Debug)]
pub struct Retired;

impl std::fmt::Display for Retired {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the module's generation was retired after its drain time")
    }
}

impl std::error::Error for Retired {}

/// Maps a wasmtime failure of module `name` to a typed error. `slots` and `policy` are the
/// instance's unit states and the module's units; `what` is what was running (an export
/// name, `instantiation`); `export` is set when it was an export.
pub fn classify(
    err: wasmtime::Error,
    name: &str,
    slots: &Slots,
    policy: &Policy,
    what: &str,
    export: Option<&str>,
) -> Error {
    let with_names = |e: Error| {
        let e = e.with_module(name);
        match export {
            Some(x) => e.with_export(x),
            None => e,
        }
    };
    if let Some(exit) = err.downcast_ref::<I32Exit>() {
        return with_names(Error::exit(exit.0, name));
    }
    if err.downcast_ref::<Retired>().is_some() {
        return with_names(Error::new(
            ErrorKind::Unavailable,
            format!(
                "module `{name}`: {what} was ended: the module was upgraded and this generation's drain time ran out; \
                 raise [modules.{name}.upgrade] drain if calls need longer"
            ),
        ));
    }
    // A linked provider failed: keep its kind, and say which call of ours it broke.
    let err = match err.downcast::<Error>() {
        Ok(inner) => {
            let mut e = Error::new(
                inner.kind(),
                format!("module `{name}`: {what} failed in a linked call"),
            );
            e.set_upstream();
            return with_names(e).with_source(inner);
        }
        Err(err) => err,
    };
    if err
        .downcast_ref::<wasmtime::PoolConcurrencyLimitError>()
        .is_some()
    {
        return with_names(Error::new(
            ErrorKind::Overloaded,
            format!(
                "module `{name}`: {what}: every instance slot of the runtime is in use; raise Config::instance_slots or lower modules' `instances`"
            ),
        ))
        .with_source(err);
    }
    let full = err.chain().any(|e| {
        matches!(
            e.downcast_ref::<wasmtime::component::ResourceTableError>(),
            Some(wasmtime::component::ResourceTableError::Full)
        )
    });
    if full {
        return with_names(Error::new(
            ErrorKind::FilesLimit,
            format!(
                "module `{name}`: {what} holds as many host handles (files, sockets, streams) as an \
                 instance may; raise [modules.{name}.limits] files if it needs more open at once"
            ),
        ))
        .with_source(err);
    }
    let trap = err.downcast_ref::<Trap>().copied();
    let cx = BlameCx {
        module: name,
        what,
        err: &err,
        trap,
    };
    let (kind, message) = match trap {
        Some(Trap::StackOverflow) => (
            ErrorKind::StackOverflow,
            format!(
                "module `{name}`: {what} overflowed its wasm stack; raise [app] stack (at most 1MiB) if the recursion is legitimate"
            ),
        ),
        _ => match policy.blame(slots, &cx) {
            Some(blamed) => blamed,
            None if trap.is_some() => (ErrorKind::Trap, format!("module `{name}`: {what} trapped")),
            None => (ErrorKind::Trap, format!("module `{name}`: {what} failed")),
        },
    };
    with_names(Error::new(kind, message)).with_source(crate::trap::guest_failure(&err))
}
