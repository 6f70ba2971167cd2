//! The links of a module that runs in a worker process: the worker's guest calls an
//! imported function, the call comes back over the worker's connection, and the host
//! forwards it to the provider like any linked call (under the provider's grants and
//! limits, never past the caller's deadline). The reverse of `link/forward.rs`, behind the
//! small interface ([`Links`]) of the transports.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use wasmtime::component::Val;
use wasmtime::component::types::Type;

use crate::error::Result;
use crate::link::{Link, LinkedFunc};
use crate::module::{Module, Target};
use crate::transport::{BoxFuture, Links};

/// A process module's linked functions, by `import#func`.
pub(crate) struct WorkerLinks {
    funcs: HashMap<String, (LinkedFunc, Arc<Target>)>,
}

impl WorkerLinks {
    /// The links of one importer, each served by its provider module.
    pub(crate) fn new(links: &[(&Link, Arc<Module>)]) -> Result<WorkerLinks> {
        let mut funcs = HashMap::new();
        for (link, provider) in links {
            for f in &link.funcs {
                let target = Arc::new(Target::new(
                    provider.clone(),
                    &format!("{}#{}", link.export, f.name),
                )?);
                funcs.insert(format!("{}#{}", link.import, f.name), (f.clone(), target));
            }
        }
        Ok(WorkerLinks { funcs })
    }
}

impl WorkerLinks {
    fn target(&self, name: &str) -> Result<&Arc<Target>> {
        self.funcs
            .get(name)
            .map(|(_, t)| t)
            .ok_or_else(|| crate::error::Error::not_found(format!("no linked function `{name}`")))
    }
}

impl Links for WorkerLinks {
    fn types(&self, name: &str) -> Option<(&[Type], &[Type])> {
        self.funcs
            .get(name)
            .map(|(f, _)| (f.params.as_slice(), f.results.as_slice()))
    }

    fn call(&self, name: &str, args: &[Val], results: &mut [Val], deadline: Instant) -> Result<()> {
        let r = self.target(name)?.get()?;
        r.generation
            .invoke_into(&r.func, args, results, Some(deadline))
    }

    fn call_async<'a>(
        &'a self,
        name: &'a str,
        args: &'a [Val],
        results: &'a mut [Val],
        deadline: Instant,
    ) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            let r = self.target(name)?.get_full()?;
            r.generation
                .invoke_into_async(&r.func, args, results, Some(deadline))
                .await
        })
    }
}
