//! `limits.fuel`: a deterministic budget of one call, in wasm instructions (roughly). Only
//! when the engine meters fuel (`Config::fuel`; metering slows all wasm code, so it is off
//! by default and the `membrane` command turns it on when a module sets fuel). The budget
//! also covers instantiation.

use std::any::Any;

use crate::error::{Error, ErrorKind, Problems};
use crate::unit::{BlameCx, CallCx, Controls, ModuleCx, Slots, Unit, UnitDef};

pub const DEF: UnitDef = UnitDef { validate, prepare };

fn validate(cx: &ModuleCx<'_>, problems: &mut Problems) {
    if cx.spec.limits.fuel.is_some() && !cx.metered {
        problems.push(
            Error::manifest(format!(
                "module `{}` sets limits.fuel, but the runtime does not meter fuel; set Config::fuel = true \
                 (the membrane command does this by itself when a module sets fuel)",
                cx.name
            ))
            .with_key(cx.key("limits.fuel")),
        );
    }
}

fn prepare(cx: &ModuleCx<'_>, _: &mut Problems) -> Option<Box<dyn Unit>> {
    // A metering engine needs fuel in every store, even of modules without a budget.
    cx.metered.then(|| {
        Box::new(Fuel {
            fuel: cx.spec.limits.fuel.unwrap_or(u64::MAX),
        }) as Box<dyn Unit>
    })
}

#[derive(Debug)]
struct Fuel {
    fuel: u64,
}

impl Fuel {
    fn set(&self, store: &mut dyn Controls) -> crate::Result<()> {
        store.set_fuel(self.fuel).map_err(|e| {
            Error::new(ErrorKind::OutOfFuel, "cannot set the call's fuel").with_source(e)
        })
    }
}

impl Unit for Fuel {
    fn instance(&self, store: &mut dyn Controls) -> crate::Result<()> {
        self.set(store)
    }

    fn arms(&self) -> bool {
        true
    }

    fn arm(&self, store: &mut dyn Controls, _: &CallCx) -> crate::Result<()> {
        self.set(store)
    }

    fn blame(&self, _: &Slots, cx: &BlameCx<'_>) -> Option<(ErrorKind, String)> {
        (cx.trap == Some(wasmtime::Trap::OutOfFuel)).then(|| {
            (
                ErrorKind::OutOfFuel,
                format!(
                    "module `{}`: {} ran out of fuel ({} per call); raise [modules.{}.limits] fuel if it needs more",
                    cx.module, cx.what, self.fuel, cx.module
                ),
            )
        })
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}
