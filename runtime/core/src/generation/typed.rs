//! Calls of a generation with Rust values instead of `Val`s: typed handles
//! ([`crate::Typed`]), typed link forwarders and typed resource methods. Rust types are
//! checked once per generation against a live instance (`check`, a `OnceLock` the caller
//! keeps with its resolution of the export).

use std::sync::OnceLock;
use std::time::Instant;

use wasmtime::component::{ComponentNamedList, Lift, Lower};

use super::{Generation, Session};
use crate::error::{Error, ErrorKind, Result};
use crate::instance::{Budget, Flavour, LiveInstance};
use crate::value::Function;

impl Generation {
    /// Calls an export with Rust values on a pooled synchronous instance (see
    /// [`crate::Typed`]). Blocks the thread.
    /// `outer` is the caller's deadline when the call comes through a link; `check`, when
    /// given, is set after the types were checked on a live instance (once per link).
    pub fn invoke_typed<P, R>(
        &self,
        func: &Function,
        params: P,
        outer: Option<Instant>,
        check: Option<&OnceLock<()>>,
    ) -> Result<R>
    where
        P: ComponentNamedList + Lower,
        R: ComponentNamedList + Lift,
    {
        let guard = self.admit(func)?;
        let now = guard.started();
        let outcome = guard.in_scope(|| {
            let budget = Budget::new(&self.recipe, now, outer)?;
            let mut lease = self
                .pool
                .acquire(&self.name, budget.deadline, Flavour::Sync)?;
            let mut instance = self.instance(&mut lease)?;
            if let Some(check) = check {
                self.check_once::<P, R>(&mut instance, func, check)?;
            }
            let r = instance.call_typed(&self.recipe, func, params, budget)?;
            self.keep(&mut lease, instance);
            Ok(r)
        });
        guard.record(&outcome);
        outcome
    }

    /// [`Generation::invoke_typed`] on the caller's task.
    pub async fn invoke_typed_async<P, R>(
        &self,
        func: &Function,
        params: P,
        outer: Option<Instant>,
        check: Option<&OnceLock<()>>,
    ) -> Result<R>
    where
        P: ComponentNamedList + Lower + Send + Sync,
        R: ComponentNamedList + Lift + Send + Sync + 'static,
    {
        let guard = self.admit(func)?;
        let call = async {
            let budget = Budget::new(&self.recipe, guard.started(), outer)?;
            let mut lease = self.pool.acquire_async(&self.name, budget.deadline).await?;
            let mut instance = self.instance_async(&mut lease).await?;
            if let Some(check) = check {
                self.check_once::<P, R>(&mut instance, func, check)?;
            }
            let r = instance
                .call_typed_async(&self.recipe, func, params, budget)
                .await?;
            self.keep(&mut lease, instance);
            Ok(r)
        };
        let outcome = super::in_span(&guard, call).await;
        guard.record(&outcome);
        outcome
    }

    /// Calls `func` with Rust values on a session's instance (a resource method through a
    /// link), within `outer`. `check` is the link's once-only type check.
    pub fn call_session_typed<P, R>(
        &self,
        session: &mut Session,
        func: &Function,
        params: P,
        outer: Instant,
        check: &OnceLock<()>,
    ) -> Result<R>
    where
        P: ComponentNamedList + Lower,
        R: ComponentNamedList + Lift,
    {
        let budget = Budget::new(&self.recipe, Instant::now(), Some(outer))?;
        let instance = session.instance.local()?;
        self.check_once::<P, R>(instance, func, check)?;
        instance.call_typed(&self.recipe, func, params, budget)
    }

    /// [`Generation::call_session_typed`] on the caller's task.
    pub async fn call_session_typed_async<P, R>(
        &self,
        session: &mut Session,
        func: &Function,
        params: P,
        outer: Instant,
        check: &OnceLock<()>,
    ) -> Result<R>
    where
        P: ComponentNamedList + Lower + Send + Sync,
        R: ComponentNamedList + Lift + Send + Sync + 'static,
    {
        let budget = Budget::new(&self.recipe, Instant::now(), Some(outer))?;
        let instance = session.instance.local()?;
        self.check_once::<P, R>(instance, func, check)?;
        instance
            .call_typed_async(&self.recipe, func, params, budget)
            .await
    }

    /// Checks `P` and `R` against `func` on a live instance, the first time only.
    fn check_once<P, R>(
        &self,
        instance: &mut LiveInstance,
        func: &Function,
        check: &OnceLock<()>,
    ) -> Result<()>
    where
        P: ComponentNamedList + Lower,
        R: ComponentNamedList + Lift,
    {
        if check.get().is_some() {
            return Ok(());
        }
        instance
            .check_typed::<P, R>(&self.recipe, func)?
            .map_err(|e| {
                Error::new(
                    ErrorKind::Link,
                    format!(
                        "module `{}`: {} cannot be called with the link's types",
                        self.name, func.name
                    ),
                )
                .with_module(&*self.name)
                .with_export(&func.name)
                .with_source(e)
            })?;
        let _ = check.set(());
        Ok(())
    }
}
