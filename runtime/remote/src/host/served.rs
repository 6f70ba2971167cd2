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

use super::request::{self, Ask, Pin, SessionRef};
use super::sessions::{Full, IDLE, MAX_SESSIONS, Refusal, Sessions, caller_of, per_caller};
use crate::error::{Error, ErrorKind, Result};
use crate::generation::{Generation, Session};
use crate::metrics::Capability;
use crate::module::{Module, Target};
use crate::protocol::{SessionId, SessionKey, module_hash};
use crate::sanitize::escape;
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
pub(crate) type Answer = Result<(Vec<u8>, Option<(SessionId, SessionKey)>)>;

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
        let caller = msg.reply.as_deref().map(caller_of).unwrap_or_default();
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
                            .open(func, req.hash, &msg.payload, outer, now, caller)
                            .await
                            .map(|(out, opened)| (out, Some(opened))),
                        Pin::Id(session) => {
                            let work = Work::Call {
                                func,
                                body: &msg.payload,
                                outer,
                            };
                            self.in_session(session, req.hash, now, work, caller)
                                .await
                                .map(|out| (out, None))
                        }
                    }
                }
                Ask::Drop { session, handle } => self
                    .in_session(session, req.hash, now, Work::Drop(handle), caller)
                    .await
                    .map(|out| (out, None)),
                Ask::Close { session } => self
                    .close(session, Some(caller))
                    .map(|()| (Vec::new(), None)),
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

    /// Ends a session for a caller's `Membrane-Close` (`caller` is its reply subject's
    /// prefix when it asked for an answer). An unknown session is gone already; a close
    /// without the session's key is refused (`Denied`) and audited.
    pub(crate) fn close(&self, s: SessionRef, caller: Option<&str>) -> Result<()> {
        match self.sessions.close(s.id, s.key.as_ref()) {
            Ok(state) => {
                drop(state);
                Ok(())
            }
            Err(Refusal::Gone) => Ok(()),
            Err(why) => Err(self.refused(s.id, why, "close", None, caller)),
        }
    }

    /// Refuses a request in session `id` that is not its opener's: an audit event (module,
    /// session, reason, what was asked and by which caller), one more in
    /// `membrane_denials_total`, and the `Denied` error to answer.
    fn refused(
        &self,
        id: SessionId,
        why: Refusal,
        asked: &str,
        export: Option<&str>,
        caller: Option<&str>,
    ) -> Error {
        let m = &self.name;
        self.module.metrics.count_denial(Capability::Session);
        // The reply subject and the export name are the requester's text: escaped, and
        // clipped so that one request cannot make a line of any length.
        tracing::info!(
            target: "membrane::audit",
            module = %m,
            session = %id,
            reason = why.reason(),
            request = asked,
            export = %escape(clip(export.unwrap_or(""), 256)),
            caller = %escape(clip(caller.unwrap_or(""), 256)),
            "remote session refused"
        );
        let mut e = Error::new(
            ErrorKind::Denied,
            format!(
                "module `{m}`: this host refuses the {asked} in resource session {id}: \
                 {}; only the caller that opened a session may use or close it",
                why.reason()
            ),
        )
        .with_module(&**m);
        if let Some(x) = export {
            e = e.with_export(x);
        }
        e
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
            Some(h) => format!("hash {:?}", clip(h, 64)),
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
        let args = decode_args(&r.func, body, &mut NoHandles, &r.generation)?;
        let mut results = vec![Val::Bool(false); r.func.results.len()];
        r.generation
            .invoke_into_async(&r.func, &args, &mut results, outer)
            .await?;
        encode_results(&r.func, &results, &mut NoHandles)
    }

    /// A call that opens a resource session for `caller`, kept for its later calls.
    async fn open(
        &self,
        func: &str,
        hash: Option<&str>,
        body: &[u8],
        outer: Option<Instant>,
        now: Instant,
        caller: &str,
    ) -> Result<(Vec<u8>, (SessionId, SessionKey))> {
        let g = self.module.current_full();
        self.check(&g, hash)?;
        let f = g.function(func)?;
        let share = per_caller(g.spec.limits.instances);
        self.sessions
            .room(caller, share)
            .map_err(|full| self.too_many_sessions(full, share))?;
        let mut table = Table::default();
        let args = decode_args(&f, body, &mut table, &g)?;
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
        let opened = self
            .sessions
            .insert(Pinned { session, table }, caller, share, Instant::now())
            .map_err(|(pinned, full)| {
                // The session's instance ends here, outside the table's lock.
                drop(pinned);
                self.too_many_sessions(full, share)
            })?;
        Ok((out, opened))
    }

    /// Runs `work` in session `s`, one at a time per session, when the request has its key
    /// (else `Denied`, and the session is untouched). A failure ends the session (its
    /// instance may be broken; the caller forgets it too, as with a local provider).
    async fn in_session(
        &self,
        s: SessionRef,
        hash: Option<&str>,
        now: Instant,
        work: Work<'_>,
        caller: &str,
    ) -> Result<Vec<u8>> {
        let id = s.id;
        let shared = match self.sessions.get(id, s.key.as_ref(), now) {
            Ok(shared) => shared,
            Err(Refusal::Gone) => return Err(self.gone(id)),
            Err(why) => {
                let (asked, export) = match &work {
                    Work::Call { func, .. } => ("call", Some(*func)),
                    Work::Drop(_) => ("drop", None),
                };
                return Err(self.refused(id, why, asked, export, Some(caller)));
            }
        };
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
            Err(_) => drop(self.sessions.remove(id)),
        }
        outcome
    }

    fn gone(&self, id: SessionId) -> Error {
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

    fn too_many_sessions(&self, full: Full, share: usize) -> Error {
        let m = &self.name;
        let (kind, why) = match full {
            Full::Total => (
                ErrorKind::Overloaded,
                format!(
                    "this host already holds {MAX_SESSIONS} resource sessions of it; start \
                     more hosts of `{m}`, or have callers drop their resources sooner"
                ),
            ),
            Full::Caller => (
                ErrorKind::Overloaded,
                format!(
                    "this caller (NATS connection) already holds {share} resource sessions \
                     of it on this host, half of what the host holds (each holds an \
                     instance); raise [modules.{m}.limits] instances, start more hosts of \
                     `{m}`, or drop resources sooner"
                ),
            ),
            Full::NoRandom => (
                ErrorKind::Unavailable,
                "the operating system gave this host no random bytes for a session's id \
                 and key"
                    .to_string(),
            ),
        };
        Error::new(kind, format!("module `{m}`: {why}")).with_module(&**m)
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
    let args = decode_args(&f, body, &mut p.table, &g)?;
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

/// At most `n` characters of `text`, which a caller sent, for a message or a log line.
fn clip(text: &str, n: usize) -> &str {
    match text.char_indices().nth(n) {
        Some((i, _)) => &text[..i],
        None => text,
    }
}

/// The arguments of `f` from a request's body. Bytes that do not decode are the caller's
/// mistake (`InvalidArgs`), never this host's failure, and never a panic.
fn decode_args(f: &Function, body: &[u8], h: &mut dyn Handles, g: &Generation) -> Result<Vec<Val>> {
    let budget = usize::try_from(g.spec.limits.hostcall).unwrap_or(usize::MAX);
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
        let v = value::decode(&mut input, ty, h, budget)
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
