//! Per-call limits, one unit each (see [`crate::unit`] for the shape):
//!
//! | unit | limit | error kind |
//! |---|---|---|
//! | [`time`] | `timeout`: wall-clock budget of one call, enforced with epochs | `Timeout` |
//! | [`fuel`] | `fuel`: deterministic budget, when the engine meters | `OutOfFuel` |
//! | [`hostcall`] | `hostcall`: bytes handed to the host in one host call | `HostcallLimit` |
//! | [`files`] | `files`: open host files, directories and sockets of an instance | `FilesLimit` |
//! | [`output`] | `output`: bytes of stdout/stderr and log lines of one call | (dropped and counted) |
//! | [`memory`] | `memory` and the table limit, through a `ResourceLimiter` | `MemoryLimit`, `TableLimit` |
//!
//! The order is the order in which a failed call is blamed: the first unit that recognises
//! its own refusal names the failure.

pub mod blocking;
pub mod files;
pub mod fuel;
pub mod hostcall;
pub mod memory;
pub mod output;
pub mod time;

use crate::unit::UnitDef;

pub use memory::MAX_TABLE_ELEMENTS;

/// Every limit, in blame order. A new limit is one file and one line here.
pub const LIMITS: &[UnitDef] = &[
    time::DEF,
    fuel::DEF,
    hostcall::DEF,
    files::DEF,
    output::DEF,
    memory::DEF,
];
