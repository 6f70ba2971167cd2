//! One module per command: its arguments (`Args`, parsed by clap) and its `run`.

pub mod build;
pub mod call;
pub mod check;
pub mod compile;
pub mod graph;
pub mod host;
pub mod inspect;
pub mod lock;
pub mod new;
pub mod push;
pub mod reload;
pub mod run;
pub mod serve;
