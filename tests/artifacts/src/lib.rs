//! Paths of the guest components built from `guests/` by this crate's build script, and
//! the plugins of examples/plugins in languages other than Rust (see [`plugins`]).

include!(concat!(env!("OUT_DIR"), "/guests.rs"));

pub mod plugins;
