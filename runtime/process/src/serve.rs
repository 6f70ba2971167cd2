//! The worker's side: read what to run, lock down, then serve calls.
//!
//! Order matters. While the process has one thread it reads its start message, opens its
//! granted directories (the capability layer holds them as handles), and locks itself down
//! ([`crate::sandbox::lock_down`]). Only then does it create the engine (which starts the
//! epoch thread) and load the compiled component it was sent. Each connection the host
//! passes over fd 4 is served by a thread of its own with an instance of its own; the
//! guest's linked calls go back to the host over the same connection.

use std::os::fd::{FromRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::sync::Arc;
use std::time::{Duration, Instant};

use wasmtime::component::{Component, Linker, Val};

use super::channel::{Accept, Channel, RecvError, SPIN};
use super::connection::{CONNECTION, send_on_connection};
use super::hello::Hello;
use super::linked::{linked_call, startup, too_large};
use super::log;
use super::ring::Rings;
use crate::capability::CAPABILITIES;
use crate::error::{Error, ErrorKind, Result};
use crate::exports::Exports;
use crate::instance::{Budget, HostState, LiveInstance, Recipe};
use crate::limits::LIMITS;
use crate::spec::{Lifecycle, ModuleSpec};
use crate::unit::{ModuleCx, Policy};
use crate::wire::message::{
    CALL, DROP, ERR, FAILED, HELLO, OK, PROBE, READY, SPAN, put_error, put_span, read_call,
};
use crate::wire::sizes::max_values;
use crate::wire::table::Table;
use crate::wire::value;
use membrane_core::p3::Wasi;

/// How long a connection's thread spins for the next call after answering one.
const IDLE_SPIN: Duration = SPIN;

/// What every connection's thread shares.
pub(crate) struct Served {
    pub(crate) recipe: Arc<Recipe>,
    exports: Exports,
    lifecycle: Lifecycle,
    /// The largest values the host accepts from this worker (`wire/sizes.rs`).
    values: usize,
    /// Each export's shape for the typed path (`typed.rs`), found on its first call.
    shapes: std::sync::RwLock<std::collections::HashMap<usize, Option<Arc<str>>>>,
}

impl Served {
    fn shape(&self, func: &crate::value::Function) -> Option<Arc<str>> {
        if let Some(k) = self
            .shapes
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(&func.id)
        {
            return k.clone();
        }
        let k: Option<Arc<str>> = super::typed::key(func).map(Into::into);
        self.shapes
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(func.id, k.clone());
        k
    }
}

/// Connections being served, for a clean exit.
static ACTIVE: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// Runs the worker on the control socket `control` (fd 3) and the fd-passing socket (fd 4).
/// Returns the process's exit status.
pub(crate) fn main(control: i32, fdpass: i32) -> i32 {
    // SAFETY: the host passed these descriptors for the worker to own.
    let control = unsafe { UnixStream::from_raw_fd(control) };
    let fdpass = unsafe { UnixStream::from_raw_fd(fdpass) };
    let Ok(writer) = control.try_clone() else {
        return 2;
    };
    let mut ch = Channel::new(control, Accept::FromHost);
    let out = Arc::new(std::sync::Mutex::new(Channel::new(
        writer,
        Accept::FromHost,
    )));
    let served = match start(&mut ch, &out) {
        Ok(s) => Arc::new(s),
        Err(e) => {
            let mut body = Vec::new();
            put_error(&mut body, &e);
            let _ = out.lock().map(|mut o| o.send(FAILED, &body));
            return 3;
        }
    };
    // Connections arrive over fd 4 until the host goes away.
    let fds = std::thread::Builder::new()
        .name("membrane-worker-accept".into())
        .spawn(move || accept(fdpass, served));
    if fds.is_err() {
        return 2;
    }
    // The control socket ends when the host ends or drops the worker: then exit, once the
    // connections (which the host closes first) have ended their instances.
    while ch.recv(None, Duration::ZERO).is_ok() {}
    let until = Instant::now() + Duration::from_millis(150);
    while ACTIVE.load(std::sync::atomic::Ordering::Acquire) > 0 && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(1));
    }
    0
}

/// Reads the start message, locks down, loads the component.
fn start(ch: &mut Channel, out: &Arc<std::sync::Mutex<Channel>>) -> Result<Served> {
    let (hello, code) = match ch.recv(None, Duration::ZERO) {
        Ok((HELLO, body)) => {
            let (hello, code) = Hello::read(body).map_err(|e| startup(&e))?;
            (hello, code.to_vec())
        }
        Ok((tag, _)) => return Err(startup(&format!("expected the start message, got {tag}"))),
        Err(e) => return Err(startup(&format!("no start message: {e:?}"))),
    };
    let name = hello.name.clone();
    let mut spec = ModuleSpec::from_bytes(Vec::new());
    spec.grants = hello.grants.clone();
    spec.limits = hello.limits.clone();
    spec.lifecycle = hello.lifecycle;
    let cx = ModuleCx {
        name: &name,
        spec: &spec,
        metered: hello.fuel,
        epoch_tick: hello.epoch_tick,
        // The worker reads no component file: the host sends the compiled code.
        max_component: 0,
        // Buckets are the host's: the guest's operations go to it (`keyvalue.rs`).
        keyvalue: (!hello.grants.keyvalue.is_empty()).then(|| {
            Arc::new(super::keyvalue::ThroughHost)
                as Arc<dyn membrane_core::keyvalue::backend::Backend>
        }),
    };
    // Granted directories are opened (as handles) before the lockdown; everything after
    // it happens inside the sandbox.
    let policy = Policy::prepare(&[LIMITS, CAPABILITIES], &cx)?;
    let applied = crate::sandbox::lock_down(&hello.sandbox)?;
    log::install(out.clone(), hello.log_level, send_on_connection);
    let mut config = membrane_core::Config::default();
    config.epoch_tick = hello.epoch_tick;
    config.max_wasm_stack = hello.max_wasm_stack;
    config.instance_slots = u32::try_from(hello.limits.instances).unwrap_or(u32::MAX);
    config.fuel = hello.fuel;
    config.cache_dir = None;
    config.metrics = false;
    let rt = membrane_core::Runtime::new(config)?;
    // A WASI 0.3 component was compiled by the host's 0.3 engine: this worker's loads it.
    let (engine, mut linker, wasi) = if hello.p3 {
        #[cfg(feature = "p3")]
        {
            let p3 = &rt.inner.p3;
            (p3.engine.clone(), p3.linker.clone(), Wasi::P3)
        }
        #[cfg(not(feature = "p3"))]
        return Err(startup(
            "the module is a WASI 0.3 module and this worker was built without the `p3` feature",
        ));
    } else {
        (
            rt.inner.engine.clone(),
            rt.inner.linkers.sync.clone(),
            Wasi::P2,
        )
    };
    // SAFETY: the bytes are the host's serialization of a component it compiled with an
    // engine of the same settings; the host is trusted, the guest never sees them.
    let component = unsafe { Component::deserialize(&engine, &code) }.map_err(|e| {
        Error::new(
            ErrorKind::InvalidComponent,
            format!("module `{name}`: the worker cannot load the compiled component"),
        )
        .with_source(e)
    })?;
    let values = max_values(hello.limits.hostcall);
    #[cfg(feature = "p3")]
    if wasi == Wasi::P3 {
        super::serve_p3::define_links(&mut linker, &component, &engine, values)?;
    } else {
        define_links(&mut linker, &component, &engine, values)?;
    }
    #[cfg(not(feature = "p3"))]
    define_links(&mut linker, &component, &engine, values)?;
    let pre = linker.instantiate_pre(&component).map_err(|e| {
        Error::link(format!(
            "module `{name}`: its imports cannot be satisfied in the worker"
        ))
        .with_source(e)
    })?;
    let metrics = crate::metrics::Metrics::new(false).module(&name);
    let name: Arc<str> = name.into();
    let served = Served {
        recipe: Arc::new(Recipe {
            name: name.clone(),
            generation: 1,
            retired: Arc::new(std::sync::atomic::AtomicBool::new(false)),
            sync_pre: pre.clone(),
            async_pre: pre,
            wasi,
            policy,
            limits: hello.limits,
            link_slots: 0,
            metrics,
            elsewhere: false,
        }),
        exports: Exports::new(name, component, engine),
        lifecycle: hello.lifecycle,
        shapes: Default::default(),
        values,
    };
    // The runtime's epoch thread must keep ticking for as long as the worker lives.
    std::mem::forget(rt);
    let report = serde_json::to_vec(&applied).unwrap_or_default();
    out.lock()
        .unwrap_or_else(|p| p.into_inner())
        .send(READY, &report)
        .map_err(|e| Error::io("cannot tell the host the worker is ready", e))?;
    Ok(served)
}

/// Every non-WASI import the component has is a link the host planned and checked: each
/// of its functions becomes a call back to the host over the thread's connection, with
/// arguments of at most `values` bytes.
fn define_links(
    linker: &mut Linker<HostState>,
    component: &Component,
    engine: &wasmtime::Engine,
    values: usize,
) -> Result<()> {
    super::linked::define_each(linker, component, engine, |inst, fname, f| {
        inst.func_new(fname, move |store, _ty, args, out| {
            let deadline = store.data().deadline;
            linked_call(&f.name, &f.params, &f.results, args, out, deadline, values)
                .map_err(wasmtime::Error::new)
        })
    })
}

/// Receives connections over fd 4, each with a thread of its own.
fn accept(fdpass: UnixStream, served: Arc<Served>) {
    loop {
        let mut byte = [0u8; 1];
        let mut space = [std::mem::MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(2))];
        let mut control = rustix::net::RecvAncillaryBuffer::new(&mut space);
        let got = rustix::net::recvmsg(
            &fdpass,
            &mut [std::io::IoSliceMut::new(&mut byte)],
            &mut control,
            rustix::net::RecvFlags::CMSG_CLOEXEC,
        );
        match got {
            Ok(m) if m.bytes == 0 => return,
            Ok(_) => {}
            Err(rustix::io::Errno::INTR) => continue,
            Err(_) => return,
        }
        let fds: Vec<OwnedFd> = control
            .drain()
            .filter_map(|m| match m {
                rustix::net::RecvAncillaryMessage::ScmRights(fds) => Some(fds),
                _ => None,
            })
            .flatten()
            .collect();
        // A connection is its socket and its rings' memfd; anything else is dropped (the
        // host, which sees the socket closed, then fails the call).
        let mut fds = fds.into_iter();
        let (Some(sock), Some(memfd), None) = (fds.next(), fds.next(), fds.next()) else {
            continue;
        };
        let Ok(rings) = Rings::open(memfd) else {
            continue;
        };
        let served = served.clone();
        let sock = UnixStream::from(sock);
        // Calls run on this thread's stack: room for the wasm stack and the host's.
        let _ = std::thread::Builder::new()
            .name("membrane-worker-call".into())
            .stack_size(8 << 20)
            .spawn(move || serve(Channel::with_rings(sock, Accept::FromHost, rings), &served));
    }
}

/// Serves one connection: a call at a time on an instance of its own.
fn serve(ch: Channel, served: &Served) {
    ACTIVE.fetch_add(1, std::sync::atomic::Ordering::AcqRel);
    CONNECTION.with(|c| *c.borrow_mut() = Some(ch));
    let mut instance: Option<LiveInstance> = None;
    serve_calls(served, &mut instance);
    // The instance ends (its last output logged over the control socket) before the
    // connection counts as done.
    drop(instance);
    CONNECTION.with(|c| *c.borrow_mut() = None);
    ACTIVE.fetch_sub(1, std::sync::atomic::Ordering::AcqRel);
}

fn serve_calls(served: &Served, instance: &mut Option<LiveInstance>) {
    let mut table = Table::default();
    loop {
        // Take the call out of the connection's buffer before running it: the guest's
        // linked calls use the connection meanwhile.
        let request = CONNECTION.with(|c| {
            let mut c = c.borrow_mut();
            let ch = c.as_mut().expect("set above");
            match ch.recv(None, IDLE_SPIN) {
                Ok((tag, body)) => Ok((tag, body.to_vec())),
                Err(e) => Err(e),
            }
        });
        let (tag, body) = match request {
            Ok(r) => r,
            Err(RecvError::Closed | RecvError::Broken(_) | RecvError::TimedOut) => return,
        };
        let reply = match tag {
            CALL => call(served, instance, &mut table, &body),
            DROP => drop_resource(served, instance, &mut table, &body),
            #[cfg(feature = "test-hooks")]
            PROBE => Reply::Probe(crate::sandbox::probe::check(&String::from_utf8_lossy(
                &body,
            ))),
            #[cfg(not(feature = "test-hooks"))]
            PROBE => Reply::Err(Error::new(
                crate::error::ErrorKind::NotFound,
                "this worker has no sandbox self-check (membrane-process's feature `test-hooks`)",
            )),
            _ => return,
        };
        let sent = CONNECTION.with(|c| {
            let mut c = c.borrow_mut();
            let ch = c.as_mut().expect("set above");
            let reply = match reply {
                Reply::Spanned(id, start, reply) => {
                    put_span(
                        ch.begin(SPAN),
                        id,
                        start,
                        unix_ns(std::time::SystemTime::now()),
                    );
                    if ch.finish().is_err() {
                        return Err(());
                    }
                    *reply
                }
                other => other,
            };
            match reply {
                Reply::Spanned(..) => {}
                Reply::Err(e) => put_error(ch.begin(ERR), &e),
                Reply::Encoded(results) => ch.begin(OK).extend_from_slice(&results),
                #[cfg(feature = "test-hooks")]
                Reply::Probe(text) => {
                    ch.begin(crate::wire::message::PROBED)
                        .extend_from_slice(text.as_bytes());
                }
            }
            ch.finish().map_err(|_| ())
        });
        if sent.is_err() {
            return;
        }
    }
}

enum Reply {
    /// Results written to the wire.
    Encoded(Vec<u8>),
    Err(Error),
    /// A reply after the worker's span of the call (its id and start).
    Spanned(u64, u64, Box<Reply>),
    /// The sandbox self-check's answer.
    #[cfg(feature = "test-hooks")]
    Probe(String),
}

/// Runs one call on the connection's instance (a new one after a failure, or per call
/// unless it holds resources the host has handles of).
fn call(
    served: &Served,
    instance: &mut Option<LiveInstance>,
    table: &mut Table,
    body: &[u8],
) -> Reply {
    let head = match read_call(body) {
        Ok(head) => head,
        Err(e) => return Reply::Err(e),
    };
    // The worker's span of the call, when its trace is sampled: made current so that the
    // guest's linked calls carry it, and sent to the host (which exports it) before the
    // answer. An unsampled trace is passed on as it came.
    let span = head.trace.map(|t| if t.sampled { t.child() } else { t });
    let _current = crate::telemetry::enter(span);
    let start = std::time::SystemTime::now();
    let mut run = || -> Result<Vec<u8>> {
        let (left, name, args) = (head.left, head.name, head.args);
        let func = served.exports.function(name)?;
        let now = Instant::now();
        let budget = Budget::new(&served.recipe, now, Some(now + left))?;
        let hostcall = usize::try_from(served.recipe.limits.hostcall).unwrap_or(usize::MAX);
        if instance.is_none() {
            // Handles of a discarded instance mean nothing.
            table.clear();
        }
        #[cfg(feature = "p3")]
        if served.recipe.wasi == Wasi::P3 {
            let args = decode_args(&func, args, table, hostcall)?;
            let (results, inst) =
                super::serve_p3::call(&served.recipe, instance.take(), &func, &args, budget)?;
            let mut out = Vec::new();
            for (v, ty) in results.iter().zip(&func.results) {
                value::encode(v, ty, &mut out, table)?;
            }
            if served.lifecycle == Lifecycle::Reuse || table.live > 0 {
                *instance = Some(inst);
            }
            if out.len() > served.values {
                return Err(too_large("the results", out.len(), served.values));
            }
            return Ok(out);
        }
        let mut inst = match instance.take() {
            Some(i) => i,
            None => LiveInstance::new(&served.recipe, None)?,
        };
        let mut out = Vec::new();
        let shape = served.shape(&func);
        match shape.as_deref().and_then(|k| {
            super::typed::call(k, &mut inst, &served.recipe, &func, args, budget, &mut out)
        }) {
            Some(done) => done?,
            None => {
                let args = decode_args(&func, args, table, hostcall)?;
                let mut results = vec![Val::Bool(false); func.results.len()];
                inst.call_into(&served.recipe, &func, &args, &mut results, budget)?;
                for (v, ty) in results.iter().zip(&func.results) {
                    value::encode(v, ty, &mut out, table)?;
                }
            }
        }
        if served.lifecycle == Lifecycle::Reuse || table.live > 0 {
            *instance = Some(inst);
        }
        if out.len() > served.values {
            return Err(too_large("the results", out.len(), served.values));
        }
        Ok(out)
    };
    let reply = match run() {
        Ok(out) => Reply::Encoded(out),
        Err(e) => {
            if instance.is_none() {
                table.clear();
            }
            Reply::Err(e)
        }
    };
    match span {
        Some(s) if s.sampled => Reply::Spanned(s.span_id, unix_ns(start), Box::new(reply)),
        _ => reply,
    }
}

/// Nanoseconds since the Unix epoch.
fn unix_ns(t: std::time::SystemTime) -> u64 {
    t.duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

/// A call's arguments, every byte of them.
fn decode_args(
    func: &crate::value::Function,
    mut input: &[u8],
    table: &mut Table,
    hostcall: usize,
) -> Result<Vec<Val>> {
    let args = func
        .params
        .iter()
        .map(|(_, t)| value::decode(&mut input, t, table, hostcall))
        .collect::<Result<Vec<_>>>()?;
    if !input.is_empty() {
        return Err(crate::wire::message::malformed(
            "trailing bytes after the arguments",
        ));
    }
    Ok(args)
}

/// Drops a resource the host no longer holds, in the connection's instance.
fn drop_resource(
    served: &Served,
    instance: &mut Option<LiveInstance>,
    table: &mut Table,
    body: &[u8],
) -> Reply {
    let mut run = || -> Result<()> {
        let handle = body
            .try_into()
            .map(u32::from_le_bytes)
            .map_err(|_| crate::wire::message::malformed("a drop message is not a handle"))?;
        let r = table.take(handle)?;
        let inst = instance
            .as_mut()
            .ok_or_else(|| crate::wire::message::malformed("a drop without an instance"))?;
        inst.drop_resource(&served.recipe, r)
    };
    match run() {
        Ok(()) => Reply::Encoded(Vec::new()),
        Err(e) => {
            // A failed destructor poisons the instance, as a failed call does.
            *instance = None;
            table.clear();
            Reply::Err(e)
        }
    }
}
