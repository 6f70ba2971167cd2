//! Integration tests: real guests built from `guests/`, a real wasmtime engine.
//! One binary, one module per area.

mod common;

/// Counts allocations per thread (`common/allocs.rs`), for the call-path tests.
#[global_allocator]
static ALLOCATOR: common::allocs::Counting = common::allocs::Counting;

mod callpath;
mod cancel;
mod cli;
mod config;
mod docs;
mod env;
mod errors;
mod fs;
mod host_resources;
mod hostile;
mod keyvalue;
mod limits;
mod links;
mod net;
mod oci;
mod p3;
mod placement;
mod plugins;
mod pools;
mod remote;
mod resources;
mod serve;
mod stdio;
mod supervision;
mod templates;
mod typed;
mod upgrade;
mod values;
