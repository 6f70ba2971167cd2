//! The host's side of a `process` module: calls go to its worker process, one connection
//! per concurrent call; the worker's linked calls come back on the same connection and are
//! served here like any linked call. A worker that dies fails only the calls in flight on it
//! (`Crashed`) and is started again by the next call; a worker that does not answer by the
//! call's deadline plus [`GRACE`] is killed (`Timeout`).

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use wasmtime::component::Val;

use super::channel::{Channel, RecvError, SPIN};
use super::keyvalue::HostBuckets;
use super::process::Process;
use super::relog::{CallLog, Relog};
use crate::error::{Error, ErrorKind, Result};
use crate::metrics::ModuleMetrics;
use crate::spec::Limits;
use crate::telemetry::{SpanContext, SpanKind, SpanRecord};
use crate::transport::{Links, Transport};
use crate::value::Function;
use crate::wire::keyvalue::{Request, put_answer};
use crate::wire::message::{
    CALL, CALLBACK, CALLBACK_OK, ERR, KV, KV_OK, LOG, OK, SPAN, malformed, parse_error, put_call,
    put_error, read_call, read_span,
};
#[cfg(feature = "test-hooks")]
use crate::wire::message::{PROBE, PROBED, read_error};
use crate::wire::sizes::max_values;
use crate::wire::value::{self, Handles, NoHandles};
use wasmtime::component::types::Type;

/// How long after a call's deadline the host waits for the worker's answer before it kills
/// the worker. The worker stops the call at the deadline itself; this covers a worker that
/// cannot (stopped, stuck in the kernel, hostile).
pub(crate) const GRACE: Duration = Duration::from_millis(100);

/// A `process` module's workers: one process at a time, restarted when it dies.
pub(crate) struct Worker {
    name: Arc<str>,
    program: PathBuf,
    /// The start message (instructions and compiled code).
    hello: Vec<u8>,
    links: Arc<dyn Links>,
    /// The app's buckets as the module's grants allow them, when it has any.
    buckets: Option<Arc<HostBuckets>>,
    /// What its workers log and write, budgeted and counted across restarts.
    relog: Arc<Relog>,
    /// The largest results (and linked calls' arguments) a worker may send.
    values: usize,
    current: Mutex<Option<Arc<Process>>>,
}

impl Worker {
    /// The worker of `name`, started now so that a sandbox the kernel cannot apply fails
    /// the load, not the first call.
    pub(crate) fn start(
        name: Arc<str>,
        program: PathBuf,
        hello: Vec<u8>,
        links: Arc<dyn Links>,
        buckets: Option<Arc<HostBuckets>>,
        metrics: Arc<ModuleMetrics>,
        limits: &Limits,
    ) -> Result<Worker> {
        let w = Worker {
            buckets,
            relog: Arc::new(Relog::new(name.clone(), metrics, limits.output)),
            values: max_values(limits.hostcall),
            name,
            program,
            hello,
            links,
            current: Mutex::new(None),
        };
        w.process()?;
        Ok(w)
    }

    /// The running process, started (again) if there is none.
    pub(crate) fn process(&self) -> Result<Arc<Process>> {
        let mut current = self.current.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(p) = current.as_ref()
            && !p.is_dead()
        {
            return Ok(p.clone());
        }
        let p = Arc::new(Process::start(
            &self.program,
            &self.name,
            &self.hello,
            &self.relog,
            self.values,
        )?);
        *current = Some(p.clone());
        Ok(p)
    }

    /// The running process's id, if one runs.
    pub(crate) fn pid(&self) -> Option<u32> {
        let current = self.current.lock().unwrap_or_else(|p| p.into_inner());
        current.as_ref().filter(|p| !p.is_dead()).map(|p| p.pid)
    }

    /// Log events and output lines of its workers dropped past their budgets, since the
    /// module loaded.
    pub(crate) fn log_dropped(&self) -> u64 {
        self.relog.dropped()
    }

    /// Sends the call; the connection is then waited on for the answer.
    pub(crate) fn send_call(
        &self,
        p: &Process,
        ch: &mut Channel,
        func: &Function,
        args: &[Val],
        deadline: Instant,
        h: &mut dyn Handles,
    ) -> Result<()> {
        let body = ch.begin(CALL);
        put_call(
            body,
            deadline.saturating_duration_since(Instant::now()),
            crate::telemetry::propagated(),
            &func.name,
        );
        for (v, (_, ty)) in args.iter().zip(&func.params) {
            value::encode(v, ty, body, h)?;
        }
        ch.finish()
            .map_err(|e| p.crashed(&format!("cannot be written to ({e})")))
    }

    /// What one frame of the answer means: `Some` ends the call.
    fn answer(
        &self,
        p: &Process,
        tag: u8,
        body: &[u8],
        types: &[Type],
        results: &mut [Val],
        h: &mut dyn Handles,
    ) -> Option<Result<()>> {
        match tag {
            OK => Some(
                value::decode_into(body, types, results, h, self.values)
                    .map_err(|e| p.crashed(&format!("sent malformed results: {e}"))),
            ),
            // A worker sends well-formed errors; anything else is a broken protocol.
            ERR => Some(Err(parse_error(body).unwrap_or_else(|why| {
                p.crashed(&format!("sent a malformed error ({why})"))
            }))),
            _ => None,
        }
    }

    /// The error of a connection that broke while waiting.
    fn lost(&self, p: &Process, e: RecvError) -> Error {
        match e {
            RecvError::TimedOut => {
                p.kill();
                Error::new(
                    ErrorKind::Timeout,
                    format!(
                        "module `{}`: its worker process (pid {}) did not answer by the call's deadline \
                         plus {GRACE:?}; it was killed and is restarted for the next call \
                         (raise [modules.{}.limits] timeout if calls need longer)",
                        self.name, p.pid, self.name
                    ),
                )
                .with_module(&*self.name)
            }
            RecvError::Closed => p.crashed("died during the call"),
            RecvError::Broken(why) => p.crashed(&format!("broke the protocol ({why})")),
        }
    }

    /// A key-value request of the worker, checked against the module's grants; a request
    /// it may not make (or cannot, holding no buckets) kills it.
    fn bucket_request(&self, p: &Process, body: &[u8]) -> Result<(Arc<HostBuckets>, Request)> {
        let Some(buckets) = self.buckets.clone() else {
            p.kill();
            return Err(p.crashed("sent a key-value request, but the module holds no buckets"));
        };
        match buckets.request(body) {
            Ok(req) => Ok((buckets, req)),
            Err(why) => {
                p.kill();
                Err(p.crashed(&why))
            }
        }
    }

    /// Decodes a linked call from the worker: its name, deadline, arguments and the span
    /// it is made in (the worker's, when it is in the call's trace; the host's call's
    /// otherwise: a worker cannot move a linked call into another trace).
    fn callback_args(&self, body: &[u8], deadline: Instant) -> Result<Callback> {
        let head = read_call(body)?;
        let (left, name, args) = (head.left, head.name, head.args);
        let ours = crate::telemetry::current();
        let trace = match (ours, head.trace) {
            (Some(o), Some(t)) if o.trace_id == t.trace_id && o.sampled == t.sampled => Some(t),
            _ => ours,
        };
        let (params, _) = self.links.types(name).ok_or_else(|| {
            malformed(&format!(
                "the worker called `{name}`, which it does not import"
            ))
        })?;
        let args = value::decode_all(args, params, &mut NoHandles, self.values)?;
        Ok(Callback {
            name: name.to_string(),
            until: (Instant::now() + left).min(deadline),
            args,
            trace,
        })
    }

    /// Records the worker's span of the call (one per call; the call's own is its
    /// parent). What a worker says of it is bounded to the call: its times are clamped to
    /// the host's view of the call, and a second span is ignored.
    fn worker_span(&self, p: &Process, body: &[u8], func: &str, spanned: &mut bool) -> Result<()> {
        let (span_id, start, end) = read_span(body).map_err(|why| {
            p.kill();
            p.crashed(&format!("sent a malformed span ({why})"))
        })?;
        let Some(call) = crate::telemetry::current().filter(|c| c.sampled) else {
            return Ok(());
        };
        if std::mem::replace(spanned, true) {
            return Ok(());
        }
        let now = SystemTime::now();
        let at = |ns: u64| (UNIX_EPOCH + Duration::from_nanos(ns)).min(now);
        crate::telemetry::queue::span(SpanRecord {
            context: SpanContext { span_id, ..call },
            // The host's call span, in another process than the worker's.
            parent: Some((call.span_id, true)),
            kind: SpanKind::Server,
            name: format!("{}/{func}", self.name).into(),
            start: at(start),
            end: at(end),
            attributes: vec![
                ("rpc.system.name", "membrane".into()),
                ("rpc.method", format!("{}/{func}", self.name).into()),
                ("membrane.module", self.name.clone().into()),
                ("membrane.function", func.to_owned().into()),
                ("membrane.placement", "process".into()),
                ("membrane.side", "worker".into()),
                ("process.pid", i64::from(p.pid).into()),
            ],
            error: None,
        });
        Ok(())
    }

    /// Sends a linked call's outcome back to the worker.
    fn reply(
        &self,
        p: &Process,
        ch: &mut Channel,
        name: &str,
        outcome: Result<Vec<Val>>,
    ) -> Result<()> {
        match outcome {
            Ok(results) => {
                let (_, tys) = self.links.types(name).expect("looked up before the call");
                let body = ch.begin(CALLBACK_OK);
                let mut encoded = Ok(());
                for (v, ty) in results.iter().zip(tys) {
                    encoded = value::encode(v, ty, body, &mut NoHandles);
                    if encoded.is_err() {
                        break;
                    }
                }
                if let Err(e) = encoded {
                    put_error(ch.begin(ERR), &e);
                }
            }
            Err(e) => put_error(ch.begin(ERR), &e),
        }
        ch.finish()
            .map_err(|e| p.crashed(&format!("cannot be written to ({e})")))
    }

    fn results_for(&self, name: &str) -> Vec<Val> {
        let n = self.links.types(name).map_or(0, |(_, r)| r.len());
        vec![Val::Bool(false); n]
    }

    /// Runs the sandbox self-check in the worker (tests): what the kernel refused.
    #[cfg(feature = "test-hooks")]
    pub(crate) fn probe(&self, request: &str) -> Result<String> {
        let p = self.process()?;
        let mut ch = p.channel()?;
        ch.send(PROBE, request.as_bytes())
            .map_err(|e| p.crashed(&format!("cannot be written to ({e})")))?;
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut log = self.relog.call();
        let answer = loop {
            match ch.recv(Some(deadline), SPIN) {
                Ok((LOG, body)) => self.relog.in_call(body, &mut log),
                other => break other.map(|(t, b)| (t, b.to_vec())),
            }
        };
        self.relog.end_call(log);
        match answer.as_ref().map(|(t, b)| (*t, b.as_slice())) {
            Ok((PROBED, body)) => {
                let text = String::from_utf8_lossy(body).into_owned();
                p.put(ch);
                Ok(text)
            }
            Ok((ERR, body)) => Err(read_error(body)),
            Ok((tag, _)) => Err(p.crashed(&format!("answered a probe with message {tag}"))),
            Err(_) => Err(self.lost(&p, answer.expect_err("an error"))),
        }
    }
}

impl Worker {
    /// Sends a request (`request` writes it) and waits for its answer, serving the
    /// worker's linked calls meanwhile; decodes results of `types` into `results`. The
    /// worker's log events meanwhile draw on the call's budget.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn exchange(
        &self,
        p: &Process,
        ch: &mut Channel,
        func: &str,
        request: impl FnOnce(&mut Channel, &mut dyn Handles) -> Result<()>,
        types: &[Type],
        results: &mut [Val],
        deadline: Instant,
        h: &mut dyn Handles,
    ) -> Result<()> {
        let mut log = self.relog.call();
        let r = self.answered(p, ch, func, request, types, results, deadline, h, &mut log);
        self.relog.end_call(log);
        r
    }

    #[allow(clippy::too_many_arguments)]
    fn answered(
        &self,
        p: &Process,
        ch: &mut Channel,
        func: &str,
        request: impl FnOnce(&mut Channel, &mut dyn Handles) -> Result<()>,
        types: &[Type],
        results: &mut [Val],
        deadline: Instant,
        h: &mut dyn Handles,
        log: &mut CallLog,
    ) -> Result<()> {
        request(ch, h)?;
        let mut spanned = false;
        loop {
            let callback = match ch.recv(Some(deadline + GRACE), SPIN) {
                Ok((CALLBACK, body)) => self.callback_args(body, deadline),
                Ok((LOG, body)) => {
                    self.relog.in_call(body, log);
                    continue;
                }
                Ok((SPAN, body)) => {
                    self.worker_span(p, body, func, &mut spanned)?;
                    continue;
                }
                Ok((KV, body)) => {
                    let (buckets, req) = self.bucket_request(p, body)?;
                    let out = ch.begin(KV_OK);
                    buckets.answer_blocking(req, deadline, out);
                    ch.finish()
                        .map_err(|e| p.crashed(&format!("cannot be written to ({e})")))?;
                    continue;
                }
                Ok((tag, body)) => match self.answer(p, tag, body, types, results, h) {
                    Some(outcome) => return outcome,
                    None => return Err(p.crashed(&format!("sent an unexpected message ({tag})"))),
                },
                Err(e) => return Err(self.lost(p, e)),
            };
            let Callback {
                name,
                until,
                args,
                trace,
            } = callback.inspect_err(|_| p.kill())?;
            let mut out = self.results_for(&name);
            let outcome = {
                let _span = crate::telemetry::enter(trace);
                self.links.call(&name, &args, &mut out, until).map(|()| out)
            };
            self.reply(p, ch, &name, outcome)?;
        }
    }

    /// [`Worker::exchange`] on the caller's task.
    #[allow(clippy::too_many_arguments)]
    pub(crate) async fn exchange_async(
        &self,
        p: &Process,
        ch: &mut Channel,
        func: &str,
        request: impl FnOnce(&mut Channel, &mut dyn Handles) -> Result<()>,
        types: &[Type],
        results: &mut [Val],
        deadline: Instant,
        h: &mut (dyn Handles + Send),
    ) -> Result<()> {
        let mut log = self.relog.call();
        let r = self
            .answered_async(p, ch, func, request, types, results, deadline, h, &mut log)
            .await;
        self.relog.end_call(log);
        r
    }

    #[allow(clippy::too_many_arguments)]
    async fn answered_async(
        &self,
        p: &Process,
        ch: &mut Channel,
        func: &str,
        request: impl FnOnce(&mut Channel, &mut dyn Handles) -> Result<()>,
        types: &[Type],
        results: &mut [Val],
        deadline: Instant,
        h: &mut (dyn Handles + Send),
        log: &mut CallLog,
    ) -> Result<()> {
        request(ch, h)?;
        let mut spanned = false;
        loop {
            let callback = match ch.recv_async(Some(deadline + GRACE), SPIN).await {
                Ok((CALLBACK, body)) => self.callback_args(body, deadline),
                Ok((LOG, body)) => {
                    self.relog.in_call(body, log);
                    continue;
                }
                Ok((SPAN, body)) => {
                    self.worker_span(p, body, func, &mut spanned)?;
                    continue;
                }
                Ok((KV, body)) => {
                    let (buckets, req) = self.bucket_request(p, body)?;
                    let answer = buckets.run(req).await;
                    put_answer(ch.begin(KV_OK), &answer);
                    ch.finish()
                        .map_err(|e| p.crashed(&format!("cannot be written to ({e})")))?;
                    continue;
                }
                Ok((tag, body)) => match self.answer(p, tag, body, types, results, h) {
                    Some(outcome) => return outcome,
                    None => return Err(p.crashed(&format!("sent an unexpected message ({tag})"))),
                },
                Err(e) => return Err(self.lost(p, e)),
            };
            let Callback {
                name,
                until,
                args,
                trace,
            } = callback.inspect_err(|_| p.kill())?;
            let mut out = self.results_for(&name);
            let outcome = crate::telemetry::scope(
                trace,
                self.links.call_async(&name, &args, &mut out, until),
            )
            .await
            .map(|()| out);
            self.reply(p, ch, &name, outcome)?;
        }
    }
}

impl Worker {
    /// The transport's worker, if it is one.
    pub(crate) fn of(t: &dyn Transport) -> Option<&Worker> {
        t.as_any().downcast_ref::<Worker>()
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        if let Some(p) = self
            .current
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
        {
            // Let it end its instances (and log their last output) first.
            p.stop(Duration::from_millis(200));
        }
    }
}

/// A linked call the worker's guest makes.
struct Callback {
    name: String,
    until: Instant,
    args: Vec<Val>,
    /// The span it is made in.
    trace: Option<SpanContext>,
}
