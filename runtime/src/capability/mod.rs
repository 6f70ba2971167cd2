//! Capabilities: each grant of the manifest is one self-contained unit with the same
//! two-step lifecycle.
//!
//! 1. `prepare` (once, when the app loads): validate the grant, resolve host paths, report
//!    every problem with the module name and the manifest key to change.
//! 2. [`Capability::apply`] (for every new instance): put exactly what was granted into that
//!    instance's WASI context, which starts out empty.
//!
//! WASI interfaces themselves are always linked (the guest may import them); what a guest can
//! do through them is decided here. Clocks and random numbers need no grant: every module
//! gets the host's wall and monotonic clocks and a per-instance random generator.

pub(crate) mod env;
pub(crate) mod fs;
pub(crate) mod hooks;
pub(crate) mod network;
pub(crate) mod quota;
pub(crate) mod stdio;

use std::fmt;
use std::sync::Arc;

use wasmtime_wasi::{WasiCtx, WasiCtxBuilder};

use fs::{Filesystem, OpenedDir};
use quota::Quota;

use crate::error::{Problems, Result};
use crate::spec::Grants;

/// What differs between two instances of the same module.
pub(crate) struct InstanceCx<'a> {
    /// The module's name, carried by log lines.
    pub module: &'a Arc<str>,
    /// Set when the instance runs as the entry of `membrane run`.
    pub run: Option<&'a RunContext>,
    /// The instance's output budget, reset before every call.
    pub output: &'a Arc<stdio::OutputBudget>,
}

/// The extra authority the entry module of `membrane run` gets.
#[derive(Debug, Clone, Default)]
pub struct RunContext {
    /// Command-line arguments after `argv[0]`, which is the module name.
    pub args: Vec<String>,
    /// Whether the guest reads the host's stdin (otherwise stdin is closed).
    pub inherit_stdin: bool,
}

/// One granted capability, validated and ready to apply to new instances.
pub(crate) trait Capability: Send + Sync + fmt::Debug {
    /// Adds this capability to the WASI context of one new instance.
    fn apply(&self, wasi: &mut WasiCtxBuilder, cx: &InstanceCx<'_>) -> Result<()>;

    /// Completes the built context (for what the builder cannot express).
    fn finish(&self, _ctx: &mut WasiCtx) {}
}

impl<C: Capability> Capability for Arc<C> {
    fn apply(&self, wasi: &mut WasiCtxBuilder, cx: &InstanceCx<'_>) -> Result<()> {
        (**self).apply(wasi, cx)
    }

    fn finish(&self, ctx: &mut WasiCtx) {
        (**self).finish(ctx)
    }
}

/// Every capability of one module.
#[derive(Debug)]
pub(crate) struct Policy {
    caps: Vec<Box<dyn Capability>>,
    fs: Arc<Filesystem>,
}

impl Policy {
    /// Validates a module's grants, reporting every problem at once.
    pub(crate) fn prepare(module: &str, grants: &Grants) -> Result<Policy> {
        let mut problems = Problems::default();
        let fs = Arc::new(Filesystem::prepare(module, grants, &mut problems));
        let caps: Vec<Box<dyn Capability>> = vec![
            Box::new(fs.clone()),
            Box::new(env::Environment::prepare(module, grants, &mut problems)),
            Box::new(stdio::Stdio::prepare(module, grants, &mut problems)),
            Box::new(network::Network::prepare(module, grants, &mut problems)),
        ];
        problems.into_result()?;
        Ok(Policy { caps, fs })
    }

    /// The module's read-write grants, for the overlap checks.
    pub(crate) fn writable_dirs(&self) -> impl Iterator<Item = &OpenedDir> {
        self.fs.writable()
    }

    /// The module's grants with a disk quota, by guest path.
    pub(crate) fn quotas(&self) -> &Arc<Vec<(String, Arc<Quota>)>> {
        self.fs.quotas()
    }

    /// Builds the WASI context of one new instance.
    pub(crate) fn wasi_ctx(&self, cx: &InstanceCx<'_>) -> Result<WasiCtx> {
        let mut builder = WasiCtxBuilder::new();
        // Blocking WASI calls run on the calling thread: calls already run on a blocking
        // thread of their own, so bouncing through tokio's blocking pool would only add cost.
        builder.allow_blocking_current_thread(true);
        for cap in &self.caps {
            cap.apply(&mut builder, cx)?;
        }
        let mut ctx = builder.build();
        for cap in &self.caps {
            cap.finish(&mut ctx);
        }
        Ok(ctx)
    }
}
