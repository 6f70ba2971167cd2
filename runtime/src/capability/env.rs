//! Environment and arguments: only the variables listed in the grant, never the host's.
//! Arguments exist only for the entry module of `membrane run`; `argv[0]` is the module name.

use std::collections::BTreeMap;

use wasmtime_wasi::WasiCtxBuilder;

use super::{Capability, InstanceCx};
use crate::error::{Error, Problems, Result};
use crate::spec::Grants;

#[derive(Debug)]
pub(crate) struct Environment {
    vars: Vec<(String, String)>,
}

impl Environment {
    pub(crate) fn prepare(module: &str, grants: &Grants, problems: &mut Problems) -> Self {
        let mut vars = BTreeMap::new();
        for (key, value) in &grants.env {
            if key.is_empty() || key.contains('=') || key.contains('\0') || value.contains('\0') {
                problems.push(Error::manifest(format!(
                    "module `{module}`: grants.env: {key:?} is not a valid variable name (no '=', no NUL, not empty)"
                )));
                continue;
            }
            vars.insert(key.clone(), value.clone());
        }
        Environment {
            vars: vars.into_iter().collect(),
        }
    }
}

impl Capability for Environment {
    fn apply(&self, wasi: &mut WasiCtxBuilder, cx: &InstanceCx<'_>) -> Result<()> {
        wasi.envs(&self.vars);
        let mut args = vec![cx.module.to_string()];
        if let Some(run) = cx.run {
            args.extend(run.args.iter().cloned());
        }
        wasi.args(&args);
        Ok(())
    }
}
