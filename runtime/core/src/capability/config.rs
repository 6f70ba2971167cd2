//! `grants.config`: what `wasi:config/store` answers a module. Exactly the granted keys, with
//! values from the manifest, or secrets read from the host's environment or a file when the
//! app loads (a missing or empty one is a load error naming its key). A module without the
//! grant gets no key.
//!
//! Both versions guests are built against are linked: `wasi:config@0.2.0-rc.1` (wasmtime's
//! and wasmCloud's) and `wasi:config@0.2.0-draft-2024-09-27` (Spin's); the interface is the
//! same in both (`get`, `get-all`, an `error` of `upstream` or `io` that is never returned
//! here: every value is known before the first call).
//!
//! Values never leave the guest's view: the unit's `Debug` shows keys only, and what the
//! manifest shows elsewhere is [`ConfigValue::shown`] (a secret as where it comes from).

use std::any::Any;
use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use wasmtime::component::{ComponentType, Lift, Linker, Lower};

use crate::error::{Error, Problems};
use crate::instance::HostState;
use crate::spec::ConfigValue;
use crate::unit::{ModuleCx, Unit, UnitDef};

pub const DEF: UnitDef = UnitDef { validate, prepare };

/// The interface names linked, one per version guests are built against.
pub const INTERFACES: [&str; 2] = [
    "wasi:config/store@0.2.0-rc.1",
    "wasi:config/store@0.2.0-draft-2024-09-27",
];

/// The longest key a grant may name (keys are identifiers, not data).
pub const MAX_KEY: usize = 256;

fn validate(cx: &ModuleCx<'_>, problems: &mut Problems) {
    for key in cx.spec.grants.config.keys() {
        if key.is_empty() || key.len() > MAX_KEY || key.contains('\0') {
            problems.push(
                Error::manifest(format!(
                    "module `{}`: grants.config: {:?} is not a valid key (1 to {MAX_KEY} bytes, no NUL)",
                    cx.name,
                    crate::sanitize::escape(key)
                ))
                .with_key(cx.key(&format!("grants.config.{key}"))),
            );
        }
    }
}

fn prepare(cx: &ModuleCx<'_>, problems: &mut Problems) -> Option<Box<dyn Unit>> {
    let mut values = BTreeMap::new();
    for (key, value) in &cx.spec.grants.config {
        match value.resolve() {
            Ok(v) => {
                values.insert(key.clone(), v);
            }
            Err(why) => problems.push(
                Error::manifest(format!(
                    "module `{}`: grants.config.{key}: {why}; set it before starting, or give the key another source",
                    cx.name,
                ))
                .with_key(cx.key(&format!("grants.config.{key}"))),
            ),
        }
    }
    Some(Box::new(Config {
        values: Arc::new(Values(values)),
    }))
}

/// The resolved values of one module, shared by its instances.
pub struct Values(BTreeMap<String, String>);

impl fmt::Debug for Values {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Keys only: values may be secrets.
        f.debug_set().entries(self.0.keys()).finish()
    }
}

#[derive(Debug)]
struct Config {
    values: Arc<Values>,
}

impl Unit for Config {
    fn new_state(&self) -> Option<Box<dyn Any + Send>> {
        // A module without keys keeps no state (and its calls do not visit this unit).
        (!self.values.0.is_empty()).then(|| Box::new(self.values.clone()) as Box<dyn Any + Send>)
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}

/// The interface's `error`: never returned (every value is resolved at load), but part of
/// the functions' types, which the linker checks against the guest's.
#[derive(ComponentType, Lift, Lower, Debug, Clone)]
#[component(variant)]
enum StoreError {
    #[component(name = "upstream")]
    Upstream(String),
    #[component(name = "io")]
    Io(String),
}

/// What `get` and `get-all` return, as the guest lifts it.
type Answer<T> = wasmtime::Result<(Result<T, StoreError>,)>;

fn values(state: &HostState) -> Option<&Values> {
    state.slots.get::<Arc<Values>>().map(|v| &**v)
}

/// Links both versions of `wasi:config/store` into `linker`: `get` and `get-all` answer from
/// the calling instance's grant.
pub fn add_to_linker(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    for name in INTERFACES {
        let mut inst = linker.instance(name)?;
        inst.func_wrap(
            "get",
            |store, (key,): (String,)| -> Answer<Option<String>> {
                let value = values(store.data()).and_then(|v| v.0.get(&key).cloned());
                Ok((Ok(value),))
            },
        )?;
        inst.func_wrap(
            "get-all",
            |store, (): ()| -> Answer<Vec<(String, String)>> {
                let all = values(store.data())
                    .map(|v| v.0.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
                    .unwrap_or_default();
                Ok((Ok(all),))
            },
        )?;
    }
    Ok(())
}

/// The grants with every secret replaced by its value, for a worker process, which cannot
/// read the host's environment or files (its environment is cleared, Landlock closes the
/// files): the host reads them at load, as for its own instances.
pub fn resolved(config: &BTreeMap<String, ConfigValue>) -> BTreeMap<String, ConfigValue> {
    config
        .iter()
        .filter_map(|(k, v)| Some((k.clone(), ConfigValue::Value(v.resolve().ok()?))))
        .collect()
}
