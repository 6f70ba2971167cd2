//! `limits.hostcall`: the bytes a guest may hand the host in one host call (default 32 MiB):
//! a string or list passed through a link, a buffer passed to WASI. wasmtime counts them
//! (`Store::set_hostcall_fuel`), re-armed before every call.

use std::any::Any;

use crate::error::{ErrorKind, Problems};
use crate::unit::{BlameCx, CallCx, Controls, ModuleCx, Slots, Unit, UnitDef};

pub const DEF: UnitDef = UnitDef {
    validate: |_, _| {},
    prepare,
};

fn prepare(cx: &ModuleCx<'_>, _: &mut Problems) -> Option<Box<dyn Unit>> {
    Some(Box::new(Hostcall {
        bytes: cx.spec.limits.hostcall,
    }))
}

#[derive(Debug)]
struct Hostcall {
    bytes: u64,
}

impl Unit for Hostcall {
    fn arms(&self) -> bool {
        true
    }

    fn arm(&self, store: &mut dyn Controls, _: &CallCx) -> crate::Result<()> {
        store.set_hostcall_fuel(usize::try_from(self.bytes).unwrap_or(usize::MAX));
        Ok(())
    }

    fn blame(&self, _: &Slots, cx: &BlameCx<'_>) -> Option<(ErrorKind, String)> {
        // wasmtime's error type for this is private; its message is the stable part.
        let exhausted = cx.err.chain().any(|c| {
            c.to_string()
                .contains("fuel allocated for hostcalls has been exhausted")
        });
        exhausted.then(|| {
            (
                ErrorKind::HostcallLimit,
                format!(
                    "module `{}`: {} tried to pass more than {} to the host in one call; raise [modules.{}.limits] hostcall if it must",
                    cx.module,
                    cx.what,
                    crate::units::format_size(self.bytes),
                    cx.module
                ),
            )
        })
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}
