//! The one shape of capabilities and limits.
//!
//! Every grant (a directory, the environment, a socket allowlist, ...) and every per-call
//! limit (time, memory, fuel, ...) is a unit that goes through the same phases:
//!
//! | phase | when | what |
//! |---|---|---|
//! | [`UnitDef::validate`] | the one validation pass, before anything is opened | pure checks of the module's declaration; every problem names the manifest key |
//! | [`UnitDef::prepare`] | once per module, when it loads | open what must be opened (directories), build what every instance shares |
//! | [`Unit::new_state`], [`Unit::apply`], [`Unit::finish`], [`Unit::instance`] | once per instance | the unit's state in the instance, its part of the WASI context, its setup of the Store |
//! | [`Unit::reset_state`], [`Unit::arm`] | before every call | reset the unit's state in the instance, arm the Store for this call |
//! | [`Unit::after_call`] | after every call | report what the call used |
//! | [`Unit::blame`] | after a failed call | whether this unit's limit caused the failure, and the error kind and message to report |
//!
//! A unit keeps its per-instance state in the instance's [`Slots`], found by its type, so
//! nothing else needs to know its shape. Adding a capability or a limit is one file that
//! defines a [`UnitDef`] and one line in the list of capabilities (`capability/mod.rs`) or
//! of limits (`limits/mod.rs`).

use std::any::{Any, TypeId};
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use wasmtime_wasi::{WasiCtx, WasiCtxBuilder};

use crate::error::{ErrorKind, Problems, Result};
use crate::spec::ModuleSpec;

/// How a unit is checked and made.
pub struct UnitDef {
    /// Pure checks of a module's declaration, every problem reported.
    pub validate: fn(&ModuleCx<'_>, &mut Problems),
    /// Builds the unit for one module, or `None` when the module does not use it.
    pub prepare: fn(&ModuleCx<'_>, &mut Problems) -> Option<Box<dyn Unit>>,
}

/// A module as its units see it.
pub struct ModuleCx<'a> {
    pub name: &'a str,
    pub spec: &'a ModuleSpec,
    /// Whether the engine meters fuel.
    pub metered: bool,
    /// How often the epoch clock ticks.
    pub epoch_tick: Duration,
    /// The largest component file read.
    pub max_component: u64,
    /// The app's key-value store, when it has buckets and this process keeps them.
    pub keyvalue: Option<std::sync::Arc<dyn crate::keyvalue::backend::Backend>>,
}

impl ModuleCx<'_> {
    /// The manifest key of `rest` in this module (`modules.api.limits.memory`).
    pub fn key(&self, rest: &str) -> String {
        format!("modules.{}.{rest}", self.name)
    }
}

/// The extra authority the entry module of `membrane run` gets.
#[derive(Debug, Clone, Default)]
pub struct RunContext {
    /// Command-line arguments after `argv[0]`, which is the module name.
    pub args: Vec<String>,
    /// Whether the guest reads the host's stdin (otherwise stdin is closed).
    pub inherit_stdin: bool,
}

/// What differs between two instances of the same module.
pub struct InstanceCx<'a> {
    /// The module's name, carried by log lines.
    pub module: &'a Arc<str>,
    /// Set when the instance runs as the entry of `membrane run`.
    pub run: Option<&'a RunContext>,
    /// The states of the instance's units, made before `apply`.
    pub slots: &'a Slots,
    /// The module's metrics, where denials are counted.
    pub metrics: &'a Arc<crate::metrics::ModuleMetrics>,
}

/// One call, as the limits see it.
pub struct CallCx {
    /// How long it may run: the module's timeout, or less when its caller's deadline is nearer.
    pub budget: Duration,
}

/// What a failed call looked like, for [`Unit::blame`].
pub struct BlameCx<'a> {
    /// The module.
    pub module: &'a str,
    /// What was running (`acme:kv/store#get`, `instantiation`).
    pub what: &'a str,
    /// wasmtime's error.
    pub err: &'a wasmtime::Error,
    /// The trap code, when the failure was a trap.
    pub trap: Option<wasmtime::Trap>,
}

/// The Store-level controls a unit may use; implemented by the instance.
pub trait Controls {
    /// For an instance whose calls run on a fiber: the epoch ticks between two yields to
    /// the executor (the deadline is then checked at each yield). `None` for synchronous
    /// instances, whose epoch deadline is the call's deadline.
    fn yields(&self) -> Option<u64>;
    /// Arms the epoch deadline, in ticks from now.
    fn set_epoch_deadline(&mut self, ticks: u64);
    /// Sets the fuel of the next call.
    fn set_fuel(&mut self, fuel: u64) -> wasmtime::Result<()>;
    /// Caps the bytes the guest may hand the host in one host call.
    fn set_hostcall_fuel(&mut self, bytes: usize);
}

/// A capability or a limit, prepared for one module. Every phase has a default that does
/// nothing, so a unit implements only what it needs.
pub trait Unit: Send + Sync + fmt::Debug + 'static {
    /// The unit's state in a new instance, if it keeps one.
    fn new_state(&self) -> Option<Box<dyn Any + Send>> {
        None
    }

    /// Adds what the unit grants to a new instance's WASI context (which starts empty).
    fn apply(&self, _wasi: &mut WasiCtxBuilder, _cx: &InstanceCx<'_>) -> Result<()> {
        Ok(())
    }

    /// Completes the built WASI context, for what the builder cannot express.
    fn finish(&self, _ctx: &mut WasiCtx) {}

    /// Sets up a new instance's Store.
    fn instance(&self, _store: &mut dyn Controls) -> Result<()> {
        Ok(())
    }

    /// Before every call: resets the unit's state in the instance (flags, budgets).
    fn reset_state(&self, _state: &mut (dyn Any + Send)) {}

    /// Whether [`Unit::arm`] does anything (the call path skips the rest).
    fn arms(&self) -> bool {
        false
    }

    /// Before every call: arms Store-level controls (epoch deadline, fuel, host-call bytes).
    fn arm(&self, _store: &mut dyn Controls, _call: &CallCx) -> Result<()> {
        Ok(())
    }

    /// Whether [`Unit::after_call`] does anything (the call path skips the rest).
    fn reports(&self) -> bool {
        false
    }

    /// After every call: reports what the call used (output dropped, say).
    fn after_call(&self, _state: &mut (dyn Any + Send), _module: &str) {}

    /// After a failed call: the kind and message when this unit's limit caused it.
    fn blame(&self, _slots: &Slots, _cx: &BlameCx<'_>) -> Option<(ErrorKind, String)> {
        None
    }

    /// The unit itself, for the few places that need its type (the overlap checks).
    fn as_any(&self) -> &dyn Any;
}

/// The states of one instance's units, in the order of the units that keep one; found by
/// type by anyone else.
#[derive(Default)]
pub struct Slots(Vec<(TypeId, Box<dyn Any + Send>)>);

impl Slots {
    pub fn push(&mut self, state: Box<dyn Any + Send>) {
        let id = (*state).type_id();
        self.0.push((id, state));
    }

    /// The state of type `T`, if a unit keeps one.
    pub fn get<T: 'static>(&self) -> Option<&T> {
        let id = TypeId::of::<T>();
        self.0
            .iter()
            .find(|(t, _)| *t == id)
            .and_then(|(_, s)| s.downcast_ref())
    }

    /// The states of types `A` and `B`, mutably, at once.
    pub fn pair_mut<A: 'static, B: 'static>(&mut self) -> (Option<&mut A>, Option<&mut B>) {
        let (mut a, mut b) = (None, None);
        for (id, s) in self.0.iter_mut() {
            if *id == TypeId::of::<A>() {
                a = s.downcast_mut();
            } else if *id == TypeId::of::<B>() {
                b = s.downcast_mut();
            }
        }
        (a, b)
    }

    /// The state of type `T`, mutably.
    pub fn get_mut<T: 'static>(&mut self) -> Option<&mut T> {
        let id = TypeId::of::<T>();
        self.0
            .iter_mut()
            .find(|(t, _)| *t == id)
            .and_then(|(_, s)| s.downcast_mut())
    }
}

/// Every unit of one module: its capabilities, then its limits.
#[derive(Debug, Default)]
pub struct Policy {
    units: Vec<Box<dyn Unit>>,
    /// The units that keep a state in each instance, with the index of their slot.
    stateful: Vec<(usize, usize)>,
    /// Indexes of the units whose `arm` does something.
    arming: Vec<usize>,
    /// The stateful units (unit, slot) whose `after_call` does something.
    reporting: Vec<(usize, usize)>,
}

impl Policy {
    /// Validates a module against every unit of `defs` (pure; all problems reported).
    pub fn validate(defs: &[&[UnitDef]], cx: &ModuleCx<'_>, problems: &mut Problems) {
        for def in defs.iter().flat_map(|d| d.iter()) {
            (def.validate)(cx, problems);
        }
    }

    /// Prepares every unit of `defs` for one module.
    pub fn prepare(defs: &[&[UnitDef]], cx: &ModuleCx<'_>) -> Result<Policy> {
        let mut problems = Problems::default();
        let units: Vec<Box<dyn Unit>> = defs
            .iter()
            .flat_map(|d| d.iter())
            .filter_map(|def| (def.prepare)(cx, &mut problems))
            .collect();
        problems.into_result()?;
        let stateful: Vec<(usize, usize)> = (0..units.len())
            .filter(|i| units[*i].new_state().is_some())
            .enumerate()
            .map(|(slot, unit)| (unit, slot))
            .collect();
        let arming = (0..units.len()).filter(|i| units[*i].arms()).collect();
        let reporting = stateful
            .iter()
            .copied()
            .filter(|(u, _)| units[*u].reports())
            .collect();
        Ok(Policy {
            units,
            stateful,
            arming,
            reporting,
        })
    }

    /// The unit of type `T`, if the module has one.
    pub fn get<T: 'static>(&self) -> Option<&T> {
        self.units.iter().find_map(|u| u.as_any().downcast_ref())
    }

    /// The states of a new instance's units, one slot per stateful unit, in order.
    pub fn new_slots(&self) -> Slots {
        let mut slots = Slots::default();
        for (unit, _) in &self.stateful {
            if let Some(s) = self.units[*unit].new_state() {
                slots.push(s);
            }
        }
        slots
    }

    /// Builds a new instance's WASI context.
    pub fn wasi_ctx(&self, cx: &InstanceCx<'_>) -> Result<WasiCtx> {
        let mut builder = WasiCtxBuilder::new();
        // Blocking WASI calls run on the calling thread: calls already run on a blocking
        // thread of their own, so bouncing through tokio's blocking pool would only add cost.
        builder.allow_blocking_current_thread(true);
        for u in &self.units {
            u.apply(&mut builder, cx)?;
        }
        let mut ctx = builder.build();
        for u in &self.units {
            u.finish(&mut ctx);
        }
        Ok(ctx)
    }

    /// Sets up a new instance's Store.
    pub fn instance(&self, store: &mut dyn Controls) -> Result<()> {
        self.units.iter().try_for_each(|u| u.instance(store))
    }

    /// Resets every unit's state for one call.
    pub fn reset_states(&self, slots: &mut Slots) {
        for (unit, slot) in &self.stateful {
            if let Some((_, state)) = slots.0.get_mut(*slot) {
                self.units[*unit].reset_state(&mut **state);
            }
        }
    }

    /// Arms every Store-level limit for one call.
    pub fn arm(&self, store: &mut dyn Controls, call: &CallCx) -> Result<()> {
        for i in &self.arming {
            self.units[*i].arm(store, call)?;
        }
        Ok(())
    }

    /// Lets every unit report what the call used.
    pub fn after_call(&self, slots: &mut Slots, module: &str) {
        for (unit, slot) in &self.reporting {
            if let Some((_, state)) = slots.0.get_mut(*slot) {
                self.units[*unit].after_call(&mut **state, module);
            }
        }
    }

    /// The first unit that takes the blame for a failed call.
    pub fn blame(&self, slots: &Slots, cx: &BlameCx<'_>) -> Option<(ErrorKind, String)> {
        self.units.iter().find_map(|u| u.blame(slots, cx))
    }
}
