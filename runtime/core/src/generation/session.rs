//! What a resource session holds: an instance in this process, or a connection pinned to
//! an instance in the module's worker process (`placement = "process"`).

use std::time::Instant;

use wasmtime::component::{ResourceAny, Val};

use crate::error::{Error, ErrorKind, Result};
use crate::instance::{Budget, LiveInstance, Recipe};
use crate::transport::PinnedSession;
use crate::value::Function;

/// A session's provider instance.
pub enum SessionInstance {
    Local(LiveInstance),
    Remote(Box<dyn PinnedSession>),
}

impl SessionInstance {
    /// Calls one export, within `outer` (the importer's deadline).
    pub fn call(
        &mut self,
        recipe: &Recipe,
        func: &Function,
        args: &[Val],
        outer: Option<Instant>,
    ) -> Result<Vec<Val>> {
        match self {
            SessionInstance::Local(i) => i.call(recipe, func, args, outer),
            SessionInstance::Remote(r) => {
                let budget = Budget::new(recipe, Instant::now(), outer)?;
                r.call(func, args, budget.deadline)
            }
        }
    }

    /// [`SessionInstance::call`] on the caller's task.
    pub async fn call_async(
        &mut self,
        recipe: &Recipe,
        func: &Function,
        args: &[Val],
        outer: Option<Instant>,
    ) -> Result<Vec<Val>> {
        match self {
            SessionInstance::Local(i) => i.call_async(recipe, func, args, outer).await,
            SessionInstance::Remote(r) => {
                let budget = Budget::new(recipe, Instant::now(), outer)?;
                r.call_async(func, args, budget.deadline).await
            }
        }
    }

    /// Drops a resource the session's instance owns.
    pub fn drop_resource(&mut self, recipe: &Recipe, handle: ResourceAny) -> Result<()> {
        match self {
            SessionInstance::Local(i) => i.drop_resource(recipe, handle),
            SessionInstance::Remote(r) => {
                let budget = Budget::new(recipe, Instant::now(), None)?;
                r.drop_resource(handle, budget.deadline)
            }
        }
    }

    /// [`SessionInstance::drop_resource`] on the caller's task.
    pub async fn drop_resource_async(
        &mut self,
        recipe: &Recipe,
        handle: ResourceAny,
    ) -> Result<()> {
        match self {
            SessionInstance::Local(i) => i.drop_resource_async(recipe, handle).await,
            SessionInstance::Remote(r) => {
                let budget = Budget::new(recipe, Instant::now(), None)?;
                r.drop_resource_async(handle, budget.deadline).await
            }
        }
    }

    /// The instance in this process (typed calls need one).
    pub fn local(&mut self) -> Result<&mut LiveInstance> {
        match self {
            SessionInstance::Local(i) => Ok(i),
            SessionInstance::Remote(_) => Err(Error::new(
                ErrorKind::Unavailable,
                "a typed call of a module in a worker process is not supported",
            )),
        }
    }
}
