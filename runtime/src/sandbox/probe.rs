//! A test probe of the sandbox: locks down as a worker would, then tries what it must not.

/// Runs the probe described by `spec` (JSON); returns the process's exit status.
pub(crate) fn main(_spec: &str) -> i32 {
    70
}
