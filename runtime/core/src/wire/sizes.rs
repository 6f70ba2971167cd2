//! How large each message between a host and its worker may be.
//!
//! The host treats its worker as hostile (its threat model is a compromised worker), so it
//! accepts from it only the messages a worker sends, each no larger than the largest one an
//! honest worker can produce. A frame over its bound is refused from its header, before any
//! of its body is held, and ends the worker (`crashed`). The worker trusts its host and
//! accepts any frame up to [`MAX_FRAME`].
//!
//! | from the worker | largest body | why |
//! |---|---|---|
//! | [`OK`], [`CALLBACK`], [`KV`] | the module's `limits.hostcall` + 1 MiB, at most [`MAX_FRAME`] | values the guest handed its host: wasmtime lifts at most `hostcall` bytes of strings and lists per call, and charges at least a `Val` (more than any scalar's encoding) per element; 1 MiB covers the fixed-size rest of a signature. The worker refuses larger values itself (`hostcall-limit`) |
//! | [`ERR`], [`FAILED`] | [`MAX_ERROR`] (1 MiB) | [`put_error`](super::message::put_error) shortens a longer error |
//! | [`LOG`] | [`MAX_LOG`] (64 KiB) | one event; a guest's line is at most `MAX_LINE` (4 KiB) before escaping, and the worker shortens a longer event |
//! | [`READY`], [`PROBED`] | [`MAX_REPORT`] (1 MiB) | what the sandbox applied; the self-check's findings |
//! | anything else | refused | the host's messages, or none |

pub use super::message::MAX_ERROR;
use super::message::{CALLBACK, ERR, FAILED, KV, LOG, OK, PROBED, READY, SPAN};

/// The largest frame body either side sends or accepts.
pub const MAX_FRAME: usize = 64 << 20;

/// The largest log event a worker sends.
pub const MAX_LOG: usize = 64 << 10;

/// The largest report (ready, self-check) a worker sends.
pub const MAX_REPORT: usize = 1 << 20;

/// Room for the fixed-size part of a signature's values, over `limits.hostcall`.
const VALUES_SLACK: u64 = 1 << 20;

/// The largest encoded values (results, or a linked call's arguments) that a worker of a
/// module with `limits.hostcall = hostcall` sends.
pub fn max_values(hostcall: u64) -> usize {
    let bound = hostcall.saturating_add(VALUES_SLACK);
    usize::try_from(bound).map_or(MAX_FRAME, |b| b.min(MAX_FRAME))
}

/// What a receiving side accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Accept {
    /// Frames from the host, which a worker trusts: any message up to [`MAX_FRAME`].
    FromHost,
    /// Frames from a worker: only its messages, each within its bound (the module doc),
    /// values within `values` bytes ([`max_values`]).
    FromWorker { values: usize },
}

impl Accept {
    /// The largest body of a frame tagged `tag`; `None` when the other side never sends it.
    pub fn max_body(self, tag: u8) -> Option<usize> {
        match self {
            Accept::FromHost => Some(MAX_FRAME),
            Accept::FromWorker { values } => match tag {
                OK | CALLBACK | KV => Some(values),
                ERR | FAILED => Some(MAX_ERROR),
                LOG => Some(MAX_LOG),
                READY | PROBED => Some(MAX_REPORT),
                SPAN => Some(24),
                _ => None,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::message::{CALL, CALLBACK_OK, DROP, HELLO, KV_OK, PROBE};

    #[test]
    fn a_worker_sends_only_its_messages_within_their_bounds() {
        let from = Accept::FromWorker {
            values: max_values(32 << 20),
        };
        assert_eq!(from.max_body(OK), Some(33 << 20));
        assert_eq!(from.max_body(KV), Some(33 << 20));
        assert_eq!(from.max_body(LOG), Some(64 << 10));
        assert_eq!(from.max_body(SPAN), Some(24));
        for tag in [CALL, CALLBACK_OK, KV_OK, DROP, PROBE, HELLO, 0, 0xff] {
            assert_eq!(from.max_body(tag), None, "tag {tag}");
        }
        assert_eq!(max_values(u64::MAX), MAX_FRAME);
        assert_eq!(Accept::FromHost.max_body(HELLO), Some(MAX_FRAME));
    }
}
