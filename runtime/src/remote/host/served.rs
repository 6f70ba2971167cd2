//! One module a host serves: how a request to it is answered.
//!
//! A call without a session goes through the module's [`Target`], as a linked call does:
//! admission by the module's supervisor, an instance of its pool, its limits, its metrics.
//! A call in a resource session runs on the session's instance, supervised the same way
//! (as `link/forward.rs` drives a session with a local provider). Either way the module
//! runs under this host's manifest entry, which must be the caller's ([`Served::check`]).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Instant;

use async_nats::Message;
use wasmtime::component::Val;

use super::request::{self, Ask, Pin};
use super::sessions::{IDLE, MAX_SESSIONS, Sessions};
use crate::error::{Error, ErrorKind, Result};
use crate::generation::{Generation, Session};
use crate::module::{Module, Target};
use crate::remote::protocol::module_hash;
use crate::value::Function;
use crate::wire::table::Table;
use crate::wire::value::{self, Handles, NoHandles};

/// Distinct export names whose [`Target`] a module keeps; names beyond are resolved per
/// call (a caller cannot grow the cache without bound by spelling names differently).
const MAX_TARGETS: usize = 256;

/// A resource session's instance and the handles of its resources the caller holds.
pub(crate) struct Pinned {
    session: Session,
    table: Table,
}

/// An answer: the body (results, or nothing for a drop) and the session a call opened.
pub(crate) type Answer = Result<(Vec<u8>, Option<u64>)>;

/// What a request does in a resource session.
enum Work<'a> {
    Call {
        func: &'a str,
        body: &'a [u8],
        outer: Option<Instant>,
    },
    Drop(u32),
}

/// A module this host serves.
pub(crate) struct Served {
    pub(crate) name: Arc<str>,
    module: Arc<Module>,
    /// Resolved exports, by the name callers send.
    targets: RwLock<HashMap<String, Arc<Target>>>,
    /// The `module_hash` of the generation it was computed for (by number).
    hash: Mutex<Option<(u64, Arc<str>)>>,
    pub(crate) sessions: Sessions<Pinned>,
}

impl Served {
    pub(crate) fn new(module: Arc<Module>) -> Served {
        Served {
            name: module.name.clone(),
            module,
            targets: RwLock::new(HashMap::new()),
            hash: Mutex::new(None),
            sessions: Sessions::new(MAX_SESSIONS),
        }
    }

    /// The module's limits now: `(instances + queue, timeout)`.
    pub(crate) fn limits(&self) -> (usize, std::time::Duration) {
        let g = self.module.current();
        let l = &g.spec.limits;
        (l.instances.saturating_add(l.queue), l.timeout)
    }

    /// Answers a request.
    pub(crate) async fn answer(&self, msg: &Message) -> Answer {
        let now = Instant::now();
        let mut export = None;
        let outcome = async {
            let req = request::read(msg.headers.as_ref())?;
            let outer = req.deadline(now);
            match req.ask {
                Ask::Call { func, pin } => {
                    export = Some(func.to_string());
                    match pin {
                        Pin::None => self
                            .call(func, req.hash, &msg.payload, outer)
                            .await
                            .map(|out| (out, None)),
                        Pin::New => self
                            .open(func, req.hash, &msg.payload, outer, now)
                            .await
                            .map(|(out, id)| (out, Some(id))),
                        Pin::Id(id) => {
                            let work = Work::Call {
                                func,
                                body: &msg.payload,
                                outer,
                            };
                            self.in_session(id, req.hash, now, work)
                                .await
                                .map(|out| (out, None))
                        }
                    }
                }
                Ask::Drop { session, handle } => self
                    .in_session(session, req.hash, now, Work::Drop(handle))
                    .await
                    .map(|out| (out, None)),
                Ask::Close { session } => {
                    self.close(session);
                    Ok((Vec::new(), None))
                }
            }
        }
        .await;
        outcome.map_err(|e| {
            let mut e = e.in_module(&self.name);
            if let (None, Some(x)) = (e.export(), export) {
                e = e.with_export(x);
            }
            e
        })
    }

    /// Ends session `id` (a caller's `Membrane-Close`); an unknown one is gone already.
    pub(crate) fn close(&self, id: u64) {
        drop(self.sessions.remove(id));
    }

    /// The export `func` as the current generation has it.
    fn target(&self, func: &str) -> Result<Arc<Target>> {
        let cached = self
            .targets
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(func)
            .cloned();
        if let Some(t) = cached {
            return Ok(t);
        }
        let t = Arc::new(Target::new(self.module.clone(), func)?);
        let mut targets = self.targets.write().unwrap_or_else(|p| p.into_inner());
        if targets.len() < MAX_TARGETS {
            targets.insert(func.to_string(), t.clone());
        }
        Ok(t)
    }

    /// The `module_hash` of generation `g`, computed once per generation.
    fn hash_of(&self, g: &Generation) -> Arc<str> {
        let mut cached = self.hash.lock().unwrap_or_else(|p| p.into_inner());
        match &*cached {
            Some((number, hash)) if *number == g.number => hash.clone(),
            _ => {
                let hash: Arc<str> = module_hash(&g.hash, &g.spec).into();
                *cached = Some((g.number, hash.clone()));
                hash
            }
        }
    }

    /// Refuses a caller whose manifest entry of the module is not the one `g` runs.
    fn check(&self, g: &Generation, theirs: Option<&str>) -> Result<()> {
        let ours = self.hash_of(g);
        if theirs == Some(&*ours) {
            return Ok(());
        }
        let m = &self.name;
        let theirs = match theirs {
            Some(h) => format!("hash {:?}", clip_hash(h)),
            None => "no hash".to_string(),
        };
        Err(Error::new(
            ErrorKind::Link,
            format!(
                "module `{m}`: this host refuses the call: the caller's manifest entry of \
                 `{m}` (component, grants, limits) differs from this host's (the caller sent \
                 {theirs}, this host has hash {ours:?}); deploy the same [modules.{m}] and \
                 component to the callers and the hosts"
            ),
        )
        .with_module(&**m)
        .with_key(format!("modules.{m}")))
    }

    /// A call on any instance of the module's pool.
    async fn call(
        &self,
        func: &str,
        hash: Option<&str>,
        body: &[u8],
        outer: Option<Instant>,
    ) -> Result<Vec<u8>> {
        let r = self.target(func)?.get_full()?;
        self.check(&r.generation, hash)?;
        let args = decode_args(&r.func, body, &mut NoHandles)?;
        let mut results = vec![Val::Bool(false); r.func.results.len()];
        r.generation
            .invoke_into_async(&r.func, &args, &mut results, outer)
            .await?;
        encode_results(&r.func, &results, &mut NoHandles)
    }

    /// A call that opens a resource session, kept for the caller's later calls.
    async fn open(
        &self,
        func: &str,
        hash: Option<&str>,
        body: &[u8],
        outer: Option<Instant>,
        now: Instant,
    ) -> Result<(Vec<u8>, u64)> {
        let g = self.module.current_full();
        self.check(&g, hash)?;
        let f = g.function(func)?;
        if !self.sessions.has_room() {
            return Err(self.too_many_sessions());
        }
        let mut table = Table::default();
        let args = decode_args(&f, body, &mut table)?;
        let deadline = deadline(&g, outer, now);
        // The supervisor sees the session's first call like any call, and the session takes
        // a slot of the pool like any instance (as for a local provider).
        let (session, results) = g
            .supervised_async(&f, async {
                let mut session = g.session_async(deadline).await?;
                let out = session
                    .instance
                    .call_async(g.recipe(), &f, &args, Some(deadline))
                    .await?;
                Ok((session, out))
            })
            .await?;
        let out = encode_results(&f, &results, &mut table)?;
        let id = self
            .sessions
            .insert(Pinned { session, table }, Instant::now())
            .map_err(|_| self.too_many_sessions())?;
        Ok((out, id))
    }

    /// Runs `work` in session `id`, one at a time per session. A failure ends the session
    /// (its instance may be broken; the caller forgets it too, as with a local provider).
    async fn in_session(
        &self,
        id: u64,
        hash: Option<&str>,
        now: Instant,
        work: Work<'_>,
    ) -> Result<Vec<u8>> {
        let shared = self.sessions.get(id, now).ok_or_else(|| self.gone(id))?;
        let mut pinned = shared.lock().await;
        let outcome = match self.check(&pinned.session.generation, hash) {
            Err(e) => Err(e),
            Ok(()) => match work {
                Work::Call { func, body, outer } => {
                    call_pinned(&mut pinned, func, body, outer, now).await
                }
                Work::Drop(handle) => drop_pinned(&mut pinned, handle).await.map(|()| Vec::new()),
            },
        };
        drop(pinned);
        match &outcome {
            Ok(_) => self.sessions.touch(id, Instant::now()),
            Err(_) => self.close(id),
        }
        outcome
    }

    fn gone(&self, id: u64) -> Error {
        let m = &self.name;
        Error::new(
            ErrorKind::Crashed,
            format!(
                "module `{m}`: resource session {id} is gone from the host that opened it \
                 (the host restarted, or the session was unused for more than {} and \
                 expired); its resources are lost",
                humantime::format_duration(IDLE)
            ),
        )
        .with_module(&**m)
    }

    fn too_many_sessions(&self) -> Error {
        let m = &self.name;
        Error::new(
            ErrorKind::Overloaded,
            format!(
                "module `{m}`: this host already holds {MAX_SESSIONS} resource sessions of \
                 it; start more hosts of `{m}`, or have callers drop their resources sooner"
            ),
        )
        .with_module(&**m)
    }

    /// The answer to a request this host has no room for now.
    pub(crate) fn overloaded(&self, capacity: usize) -> Error {
        let m = &self.name;
        Error::new(
            ErrorKind::Overloaded,
            format!(
                "module `{m}` is overloaded on this host: {capacity} calls already run or wait \
                 (its instances + queue limits); raise [modules.{m}.limits] instances or queue, \
                 or start more hosts of `{m}`"
            ),
        )
        .with_module(&**m)
    }
}

/// A call in a session's instance, on the generation the session started on.
async fn call_pinned(
    p: &mut Pinned,
    func: &str,
    body: &[u8],
    outer: Option<Instant>,
    now: Instant,
) -> Result<Vec<u8>> {
    let g = p.session.generation.clone();
    let f = g.function(func)?;
    let args = decode_args(&f, body, &mut p.table)?;
    let deadline = deadline(&g, outer, now);
    let results = g
        .supervised_async(
            &f,
            p.session
                .instance
                .call_async(g.recipe(), &f, &args, Some(deadline)),
        )
        .await?;
    encode_results(&f, &results, &mut p.table)
}

/// Drops a resource of a session in its instance (its destructor runs there).
async fn drop_pinned(p: &mut Pinned, handle: u32) -> Result<()> {
    let r = p.table.take(handle).map_err(|_| {
        Error::new(
            ErrorKind::InvalidArgs,
            format!("the resource session holds no resource with handle {handle}"),
        )
    })?;
    let g = p.session.generation.clone();
    p.session.instance.drop_resource_async(g.recipe(), r).await
}

/// When a session call must end: the caller's deadline, never past the module's timeout.
fn deadline(g: &Generation, outer: Option<Instant>, now: Instant) -> Instant {
    let own = now + g.recipe().limits.timeout;
    outer.map_or(own, |o| o.min(own))
}

/// At most 64 characters of a hash a caller sent, for the message.
fn clip_hash(h: &str) -> &str {
    match h.char_indices().nth(64) {
        Some((i, _)) => &h[..i],
        None => h,
    }
}

/// The arguments of `f` from a request's body. Bytes that do not decode are the caller's
/// mistake (`InvalidArgs`), never this host's failure, and never a panic.
fn decode_args(f: &Function, body: &[u8], h: &mut dyn Handles) -> Result<Vec<Val>> {
    let bad = |why: &str| {
        Error::new(
            ErrorKind::InvalidArgs,
            format!(
                "the arguments of `{}` do not decode as its parameter types: {why}",
                f.name
            ),
        )
    };
    let mut input = body;
    let mut args = Vec::with_capacity(f.params.len());
    for (name, ty) in &f.params {
        let v = value::decode(&mut input, ty, h)
            .map_err(|e| bad(&format!("parameter `{name}`: {}", e.message())))?;
        args.push(v);
    }
    if !input.is_empty() {
        return Err(bad(&format!(
            "{} bytes are left after the last parameter",
            input.len()
        )));
    }
    Ok(args)
}

/// The encoding of a call's results.
fn encode_results(f: &Function, results: &[Val], h: &mut dyn Handles) -> Result<Vec<u8>> {
    let mut out = Vec::with_capacity(16);
    for (v, ty) in results.iter().zip(&f.results) {
        value::encode(v, ty, &mut out, h)?;
    }
    Ok(out)
}
