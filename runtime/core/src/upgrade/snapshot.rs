//! Moving a module's state to its new generation: when both generations export
//! `membrane:lifecycle/snapshot@0.1.0` and the module has one instance, the old instance's
//! `save` output is given to a new instance's `restore` before the new generation takes
//! calls. The module's one slot is held from `save` until the switch, so no call changes the
//! state in between. A failed `save` or `restore` is a failed gate: the old instance goes
//! back to the pool, unchanged.

use std::sync::Arc;
use std::time::Instant;

use wasmtime::component::Type;

use crate::error::{Error, ErrorKind, Result};
use crate::exports::Exports;
use crate::generation::Generation;
use crate::instance::{Flavour, LiveInstance};
use crate::pool::{Lease, Pool};

/// The snapshot interface's functions.
pub const SAVE: &str = "membrane:lifecycle/snapshot@0.1.0#save";
pub const RESTORE: &str = "membrane:lifecycle/snapshot@0.1.0#restore";

/// The module's slot, held with the instance holding the moved state until the switch.
pub struct Held {
    lease: Lease<Arc<Pool>>,
    /// The new generation's instance, with the state restored.
    instance: LiveInstance,
    /// The old generation's instance, kept in case another module fails its gate.
    previous: LiveInstance,
}

impl Held {
    /// After the switch: the new instance becomes the module's idle one; the slot is freed.
    pub fn release(self) {
        let Held {
            mut lease,
            instance,
            previous,
        } = self;
        drop(previous);
        lease.recycle(instance);
    }

    /// The upgrade did not happen: the old instance goes back, with its state.
    pub fn abort(self) {
        let Held {
            mut lease,
            previous,
            ..
        } = self;
        lease.recycle(previous);
    }
}

/// Whether the state moves: both generations export the snapshot interface with its
/// types (see [`check`]) and the module has exactly one instance.
pub fn applies(old: &Generation, new: &Generation) -> bool {
    new.spec.limits.instances == 1
        && old.spec.limits.instances == 1
        && [old, new]
            .iter()
            .all(|g| matches!(shape(g.exports()), Ok(true)))
}

/// Refuses a component that exports the snapshot interface with other types than
/// `save: func() -> list<u8>` and `restore: func(state: list<u8>)`, or only half of it: its
/// state could not move, and calling it as if it had them would fail in the host.
pub fn check(name: &str, exports: &Exports) -> Result<()> {
    shape(exports).map(|_| ()).map_err(|(export, why)| {
        Error::link(format!(
            "module `{name}` exports {export} but {why}; membrane:lifecycle/snapshot@0.1.0 is              `save: func() -> list<u8>` and `restore: func(state: list<u8>)` (wit/membrane-lifecycle)"
        ))
        .with_module(name)
        .with_export(export)
    })
}

/// Whether the component exports the snapshot interface (`Ok(false)`: it does not), or the
/// export and what is wrong with it.
fn shape(exports: &Exports) -> std::result::Result<bool, (&'static str, String)> {
    let bytes = |t: &Type| matches!(t, Type::List(l) if l.ty() == Type::U8);
    match (exports.function(SAVE), exports.function(RESTORE)) {
        (Err(_), Err(_)) => Ok(false),
        (Ok(_), Err(_)) => Err((RESTORE, "not restore".to_string())),
        (Err(_), Ok(_)) => Err((SAVE, "not save".to_string())),
        (Ok(save), Ok(restore)) => {
            if !save.params.is_empty() || save.results.len() != 1 || !bytes(&save.results[0]) {
                return Err((SAVE, "its save has another type".to_string()));
            }
            if restore.params.len() != 1
                || !bytes(&restore.params[0].1)
                || !restore.results.is_empty()
            {
                return Err((RESTORE, "its restore has another type".to_string()));
            }
            Ok(true)
        }
    }
}

/// Saves the state of `old`'s instance and restores it into a new instance of `new`.
/// `Ok(None)` when there is no instance, so no state, to move.
pub async fn carry(old: &Arc<Generation>, new: &Arc<Generation>) -> Result<Option<Held>> {
    let deadline = Instant::now() + old.spec.limits.timeout;
    let mut lease = old
        .pool
        .acquire_any_owned_async(&old.name, deadline)
        .await?;
    let Some(mut previous) = lease.instance.take().filter(|i| i.generation == old.number) else {
        return Ok(None);
    };
    let fail = |what: &str, e: Error| {
        Error::new(
            ErrorKind::Link,
            format!(
                "module `{}`: the state could not move to the new version: {what} failed; nothing was changed",
                old.name
            ),
        )
        .with_module(&*old.name)
        .with_export(what)
        .with_source(e)
    };
    let save = old.function(SAVE)?;
    let flavour = previous.flavour();
    let saved = match flavour {
        Flavour::Sync => previous.call(old.recipe(), &save, &[], None),
        Flavour::Async | Flavour::Concurrent => {
            previous.call_async(old.recipe(), &save, &[], None).await
        }
    };
    let state = match saved {
        Ok(mut results) if results.len() == 1 => results.remove(0),
        // `applies` checked the type; should the values still disagree, nothing moves.
        Ok(results) => {
            let e = Error::new(
                ErrorKind::Trap,
                format!("save returned {} values instead of one list", results.len()),
            );
            lease.recycle(previous);
            return Err(fail(SAVE, e));
        }
        // The instance failed: it is dropped, as after any failed call.
        Err(e) => return Err(fail(SAVE, e)),
    };
    let restore = new.function(RESTORE)?;
    let restored = async {
        let mut instance = match flavour {
            Flavour::Sync => LiveInstance::new(new.recipe(), None)?,
            Flavour::Async | Flavour::Concurrent => {
                LiveInstance::new_async(new.recipe(), None).await?
            }
        };
        let args = [state];
        match flavour {
            Flavour::Sync => instance.call(new.recipe(), &restore, &args, None)?,
            Flavour::Async | Flavour::Concurrent => {
                instance
                    .call_async(new.recipe(), &restore, &args, None)
                    .await?
            }
        };
        Ok::<_, Error>(instance)
    }
    .await;
    match restored {
        Ok(instance) => Ok(Some(Held {
            lease,
            instance,
            previous,
        })),
        Err(e) => {
            lease.recycle(previous);
            Err(fail(RESTORE, e))
        }
    }
}
