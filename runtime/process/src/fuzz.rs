//! The host's side of the worker protocol on arbitrary bytes, for the fuzz target
//! `worker_protocol` (`fuzz/`): not part of the API.

use std::io::Write;
use std::os::unix::net::UnixStream;
use std::time::Duration;

use wasmtime::component::types::Type;

use super::channel::{Accept, Channel, RecvError};
use super::relog::Relog;
use crate::wire::message::{
    CALLBACK, ERR, FAILED, LOG, OK, PROBED, READY, SPAN, parse_error, read_call, read_span,
};
use crate::wire::sizes::max_values;
use crate::wire::value::{self, NoHandles};

/// The most bytes one run feeds the host: what a socket buffer takes without a reader.
const MAX_INPUT: usize = 128 << 10;

/// Feeds `data` to the host as a worker's bytes on a real socket and handles every frame
/// that comes out as the host does: log events through the host's budgets and escaping,
/// errors, reports, and values decoded as `types` (results, and a linked call's
/// arguments). Whatever the bytes, this returns; it never panics.
#[doc(hidden)]
pub fn host_side(data: &[u8], types: &[Type]) {
    let Ok((mut worker, host)) = UnixStream::pair() else {
        return;
    };
    if worker
        .write_all(&data[..data.len().min(MAX_INPUT)])
        .is_err()
    {
        return;
    }
    drop(worker);
    let metrics = crate::metrics::Metrics::new(false).module("fuzz");
    let relog = Relog::new("fuzz".into(), metrics, 1 << 10);
    let mut call = relog.call();
    // Small bounds, so that the fuzzer reaches them.
    let mut ch = Channel::new(
        host,
        Accept::FromWorker {
            values: max_values(0),
        },
    );
    loop {
        match ch.recv(None, Duration::ZERO) {
            Ok((LOG, body)) => {
                relog.in_call(body, &mut call);
                relog.outside(body);
            }
            Ok((OK, body)) => {
                let _ = value::decode_all(body, types, &mut NoHandles, 64 << 20);
            }
            Ok((CALLBACK, body)) => {
                if let Ok(head) = read_call(body) {
                    let _ = value::decode_all(head.args, types, &mut NoHandles, 64 << 20);
                }
            }
            Ok((ERR | FAILED, body)) => {
                let _ = parse_error(body);
            }
            Ok((SPAN, body)) => {
                let _ = read_span(body);
            }
            Ok((READY | PROBED, body)) => {
                let _ = serde_json::from_slice::<serde_json::Value>(body);
            }
            Ok(_) => {}
            Err(RecvError::Closed | RecvError::Broken(_) | RecvError::TimedOut) => break,
        }
    }
    relog.end_call(call);
    relog.flush();
}
