//! Paths of the guest components built from `guests/` by this crate's build script.

include!(concat!(env!("OUT_DIR"), "/guests.rs"));
