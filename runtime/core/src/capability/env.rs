//! Environment and arguments: only the variables listed in the grant, never the host's.
//! Arguments exist only for the entry module of `membrane run`; `argv[0]` is the module name.

use std::any::Any;

use wasmtime_wasi::WasiCtxBuilder;

use crate::error::{Error, Problems, Result};
use crate::unit::{InstanceCx, ModuleCx, Unit, UnitDef};

pub const DEF: UnitDef = UnitDef { validate, prepare };

fn validate(cx: &ModuleCx<'_>, problems: &mut Problems) {
    for (key, value) in &cx.spec.grants.env {
        if key.is_empty() || key.contains('=') || key.contains('\0') || value.contains('\0') {
            problems.push(
                Error::manifest(format!(
                    "module `{}`: grants.env: {:?} is not a valid variable (no '=' or NUL in the name, no NUL in the value, not empty)",
                    cx.name,
                    crate::sanitize::escape(key)
                ))
                .with_key(cx.key(&format!("grants.env.{key}"))),
            );
        }
    }
}

fn prepare(cx: &ModuleCx<'_>, _: &mut Problems) -> Option<Box<dyn Unit>> {
    Some(Box::new(Environment {
        vars: cx
            .spec
            .grants
            .env
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
    }))
}

#[derive(Debug)]
struct Environment {
    vars: Vec<(String, String)>,
}

impl Unit for Environment {
    fn apply(&self, wasi: &mut WasiCtxBuilder, cx: &InstanceCx<'_>) -> Result<()> {
        wasi.envs(&self.vars);
        let mut args = vec![cx.module.to_string()];
        if let Some(run) = cx.run {
            args.extend(run.args.iter().cloned());
        }
        wasi.args(&args);
        Ok(())
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}
