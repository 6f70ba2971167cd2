//! The C API of Membrane: the shared library `libmembrane_c` and its header,
//! `include/membrane.h`, which documents every function.
//!
//! Each file holds the entry points of one C type: errors (`error.rs`), settings and
//! runtimes (`runtime.rs`), app declarations (`spec.rs`), apps (`app.rs`), host interfaces
//! (`host.rs`); `ffi.rs` has what they share (the panic guard, strings and buffers), and
//! `report.rs` the JSON of statuses and reports. `tests/header.rs` checks that the header
//! declares exactly these functions, with the same types.

mod app;
mod error;
mod ffi;
mod host;
mod report;
mod runtime;
mod spec;
