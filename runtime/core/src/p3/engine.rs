//! The engine WASI 0.3 modules compile and run on, and its linker.
//!
//! Component-model async needs wasmtime's concurrency support, which is a setting of the
//! whole engine and costs every call made with it: with it on, every host-to-guest call and
//! every guest-to-host call does the async bookkeeping. WASI 0.2 modules keep the runtime's
//! first engine, with it off, so their calls cost what they did; WASI 0.3 modules get this
//! second engine. Links do not need a shared engine (every linked call goes through the
//! host), so a 0.2 module and a 0.3 module link as two 0.2 modules do
//! (docs/decisions/0013-wasi-p3.md).
//!
//! The engine uses wasmtime's on-demand instance allocator: a 0.3 instance serves many calls
//! over its life, so instantiation is rare and the pooling allocator's reservation per slot
//! would only take address space from the 0.2 modules' pool.

use std::sync::Arc;

use wasmtime::component::Linker;
use wasmtime::{Engine, InstanceAllocationStrategy};

use crate::cache::Cache;
use crate::capability::hooks;
use crate::error::{Error, ErrorKind, Result};
use crate::instance::HostState;
use crate::limits::blocking;

/// The second engine, its linker (everything a 0.3 module may import), and its cache.
#[derive(Clone)]
pub struct P3Engine {
    pub engine: Engine,
    pub linker: Linker<HostState>,
    pub cache: Option<Arc<Cache>>,
}

impl P3Engine {
    /// An engine with the settings of the runtime's first (`epoch_tick` clocked by the same
    /// thread, the same stack limit and fuel metering) and concurrency support.
    pub fn new(config: &crate::Config) -> Result<P3Engine> {
        let mut wasm = wasmtime::Config::new();
        wasm.epoch_interruption(true);
        wasm.max_wasm_stack(config.max_wasm_stack);
        wasm.concurrency_support(true);
        wasm.consume_fuel(config.fuel);
        wasm.allocation_strategy(InstanceAllocationStrategy::OnDemand);
        let engine = Engine::new(&wasm).map_err(|e| {
            Error::new(ErrorKind::Io, "cannot create the WASI 0.3 engine").with_source(e)
        })?;
        let cache = match &config.cache_dir {
            Some(dir) => Some(Arc::new(Cache::open(dir, &engine)?)),
            None => None,
        };
        let linker = linker(&engine)
            .map_err(|e| Error::new(ErrorKind::Link, "cannot link WASI 0.3").with_source(e))?;
        Ok(P3Engine {
            engine,
            linker,
            cache,
        })
    }
}

/// WASI 0.3 (cli, clocks, filesystem, random, sockets, http types and client), WASI 0.2 on
/// the async path (Rust's standard library in a 0.3 guest still imports it), and the
/// interfaces capabilities serve, with Membrane's wrappers of the 0.2 functions.
fn linker(engine: &Engine) -> wasmtime::Result<Linker<HostState>> {
    let mut linker = Linker::new(engine);
    wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
    wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker)?;
    hooks::async_::add_to_linker(&mut linker)?;
    blocking::add_to_linker_async(&mut linker)?;
    wasmtime_wasi::p3::add_to_linker(&mut linker)?;
    hooks::p3::add_to_linker(&mut linker)?;
    wasmtime_wasi_http::p3::add_to_linker(&mut linker)?;
    crate::capability::config::add_to_linker(&mut linker)?;
    crate::capability::keyvalue::add_to_linker(&mut linker)?;
    crate::capability::keyvalue_draft2::add_to_linker(&mut linker)?;
    Ok(linker)
}
