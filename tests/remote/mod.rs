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
mod p3;
mod serving;
mod sessions;

pub(crate) use host::app_name;

/// Starts `membrane ARGS` as the tests start it ([`membrane_command`](crate::common::membrane_command)) and waits for the
/// line that says it hosts.
pub fn host_proc(args: &[&str]) -> hostproc::HostProc {
    let mut cmd = crate::common::membrane_command();
    cmd.args(args);
    hostproc::HostProc::spawn(cmd)
}
