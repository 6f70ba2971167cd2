//! `placement = "remote"`: modules served by other hosts over NATS, tested against real
//! `nats-server` processes (see [`nats`]).

mod auth;
mod example;
mod failover;
mod fake;
mod host;
mod hostile;
pub mod hostproc;
pub mod nats;
mod serving;
mod sessions;
