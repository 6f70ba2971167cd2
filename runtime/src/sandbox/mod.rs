//! The OS-level sandbox of a worker process (`placement = "process"`).

pub(crate) mod probe;
