//! The error type of the library: a documented [`ErrorKind`] and the fields a program needs
//! (module, export, manifest key and location, the list of problems), plus a message for a
//! person.

use std::fmt;
use std::path::PathBuf;

/// Defines [`ErrorKind`] from one list: each kind's doc, variant and stable name, from which
/// the enum, [`ErrorKind::as_str`] and [`ErrorKind::ALL`] are all made (adding a kind is one
/// entry).
macro_rules! error_kinds {
    ($($(#[doc = $doc:literal])* $kind:ident = $name:literal,)*) => {
        /// What went wrong, in a form a program can match on.
        ///
        /// New kinds may be added in minor releases, so matches need a wildcard arm.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        #[non_exhaustive]
        pub enum ErrorKind {
            $($(#[doc = $doc])* $kind,)*
        }

        impl ErrorKind {
            /// Every kind, for reading a kind's name back (errors that cross from a worker
            /// or another host).
            pub const ALL: &[ErrorKind] = &[$(ErrorKind::$kind,)*];

            /// A short lowercase name of the kind, stable for logs and metrics.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(ErrorKind::$kind => $name,)*
                }
            }
        }
    };
}

error_kinds! {
    /// The manifest or the builder's declaration is invalid (unknown key, bad value, missing field).
    Manifest = "manifest",
    /// A module's imports cannot be satisfied: an interface is neither granted nor linked,
    /// or a link does not type-check.
    Link = "link",
    /// The host refused a grant: a path through a symbolic link, a read-write grant that
    /// would reach code the host runs.
    Denied = "denied",
    /// A module, export or file does not exist.
    NotFound = "not-found",
    /// A call ran past the module's `timeout`.
    Timeout = "timeout",
    /// A call used up its fuel budget.
    OutOfFuel = "out-of-fuel",
    /// The module tried to grow its memory past its `memory` limit and could not go on.
    MemoryLimit = "memory-limit",
    /// The guest overflowed its wasm stack.
    StackOverflow = "stack-overflow",
    /// The guest passed more bytes to the host in one host call than its `hostcall` limit.
    HostcallLimit = "hostcall-limit",
    /// The guest tried to grow a table past the table limit.
    TableLimit = "table-limit",
    /// The guest tried to hold more open host files, directories or sockets than its
    /// `files` limit, and the call then failed.
    FilesLimit = "files-limit",
    /// The guest tried to write past the disk quota of a grant, and the call then failed.
    DiskQuota = "disk-quota",
    /// The guest trapped (panic, unreachable, bad memory access, ...).
    Trap = "trap",
    /// The module has no capacity left for the call.
    Overloaded = "overloaded",
    /// The module is not available (circuit open, shutting down).
    Unavailable = "unavailable",
    /// Reading or writing a host file failed.
    Io = "io",
    /// The input is not a valid component (core module, garbage bytes, unsupported features).
    InvalidComponent = "invalid-component",
    /// Values passed to a call do not match the function's parameter types.
    InvalidArgs = "invalid-args",
    /// The guest asked to exit with a non-zero status (`wasi:cli/exit`).
    Exit = "exit",
    /// The request conflicts with one in progress: an upgrade of a module that is being
    /// upgraded already. Try again when it has finished.
    Conflict = "conflict",
    /// The host itself failed while serving a call (a bug in Membrane or in a host
    /// interface of the embedding application), not the guest.
    HostPanic = "host-panic",
    /// The worker process that ran the call (`placement = "process"`) died: killed, aborted,
    /// out of memory, or it sent something malformed and was stopped. It is restarted for
    /// the next call.
    Crashed = "crashed",
    /// Bytes fetched from outside the host (a component or manifest from an OCI registry)
    /// do not match the digest they were pinned to or announced with; none of them was used.
    Integrity = "integrity",
}

impl ErrorKind {
    /// The kind whose [`ErrorKind::as_str`] is `name`.
    pub fn from_name(name: &str) -> Option<ErrorKind> {
        Self::ALL.iter().copied().find(|k| k.as_str() == name)
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where in a manifest a problem is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    /// The manifest file.
    pub file: PathBuf,
    /// The line, from 1.
    pub line: usize,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.file.display(), self.line)
    }
}

/// The error of every fallible Membrane operation.
///
/// `Display` prints the message (with the manifest location when there is one, and the
/// list when the error is several problems); the underlying cause, when there is one, is
/// available through [`std::error::Error::source`], and [`chain`] prints both safely.
pub struct Error {
    // Boxed: a `Result<T, Error>` stays one pointer wide on the happy path.
    inner: Box<Inner>,
}

#[derive(Debug)]
struct Inner {
    kind: ErrorKind,
    message: String,
    module: Option<String>,
    export: Option<String>,
    key: Option<String>,
    location: Option<Location>,
    /// More than one problem: the whole list, flat.
    problems: Vec<Error>,
    exit_code: Option<i32>,
    source: Option<Box<dyn std::error::Error + Send + Sync + 'static>>,
    /// Set when the failure happened in a linked provider, not in the module that reports it.
    upstream: bool,
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.inner.fmt(f)
    }
}

/// The result type of the library.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// An error of `kind` with a message meant for a person.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Error {
            inner: Box::new(Inner {
                kind,
                message: message.into(),
                module: None,
                export: None,
                key: None,
                location: None,
                problems: Vec::new(),
                exit_code: None,
                source: None,
                upstream: false,
            }),
        }
    }

    /// Whether the failure happened in a linked provider, not in the module that reports it.
    pub fn upstream(&self) -> bool {
        self.inner.upstream
    }

    /// Marks the failure as a linked provider's.
    pub fn set_upstream(&mut self) {
        self.inner.upstream = true;
    }

    /// Attaches the underlying cause.
    pub fn with_source(
        mut self,
        source: impl Into<Box<dyn std::error::Error + Send + Sync>>,
    ) -> Self {
        self.inner.source = Some(source.into());
        self
    }

    /// Names the module the error is about.
    pub fn with_module(mut self, module: impl Into<String>) -> Self {
        self.inner.module = Some(module.into());
        self
    }

    /// Names the export (`ns:pkg/iface#func`) the error is about.
    pub fn with_export(mut self, export: impl Into<String>) -> Self {
        self.inner.export = Some(export.into());
        self
    }

    /// Names the manifest key to change (`modules.api.limits.memory`).
    pub fn with_key(mut self, key: impl Into<String>) -> Self {
        self.inner.key = Some(key.into());
        self
    }

    /// Sets where in the manifest the problem is, unless it is known already.
    pub fn at(mut self, location: Option<Location>) -> Self {
        if self.inner.location.is_none() {
            self.inner.location = location;
        }
        self
    }

    /// `module` exited with status `code` (kind `Exit`).
    pub fn exit(code: i32, module: &str) -> Self {
        let mut e = Error::new(
            ErrorKind::Exit,
            format!("module `{module}` exited with status {code}"),
        )
        .with_module(module);
        e.inner.exit_code = Some(code);
        e
    }

    /// A problem of the declaration (kind `Manifest`).
    pub fn manifest(message: impl Into<String>) -> Self {
        Error::new(ErrorKind::Manifest, message)
    }

    /// A problem of a link (kind `Link`).
    pub fn link(message: impl Into<String>) -> Self {
        Error::new(ErrorKind::Link, message)
    }

    /// Something named does not exist (kind `NotFound`).
    pub fn not_found(message: impl Into<String>) -> Self {
        Error::new(ErrorKind::NotFound, message)
    }

    /// An I/O failure of the host (kind `Io`), with its cause.
    pub fn io(message: impl Into<String>, source: std::io::Error) -> Self {
        Error::new(ErrorKind::Io, message).with_source(source)
    }

    /// What kind of error this is (for several problems, the kind of the first).
    pub fn kind(&self) -> ErrorKind {
        self.inner.kind
    }

    /// The message, without the location, the list or the cause chain.
    pub fn message(&self) -> &str {
        &self.inner.message
    }

    /// The module the error is about, if it is about one.
    pub fn module(&self) -> Option<&str> {
        self.inner.module.as_deref()
    }

    /// The export the error is about, if any.
    pub fn export(&self) -> Option<&str> {
        self.inner.export.as_deref()
    }

    /// The manifest key to change, if the error is about one (`modules.api.limits.memory`).
    pub fn key(&self) -> Option<&str> {
        self.inner.key.as_deref()
    }

    /// Where in the manifest the problem is, when the app came from a manifest.
    pub fn location(&self) -> Option<&Location> {
        self.inner.location.as_ref()
    }

    /// Every problem this error reports: the list when there are several, else the error
    /// itself. Never nested, never empty.
    pub fn problems(&self) -> &[Error] {
        if self.inner.problems.is_empty() {
            std::slice::from_ref(self)
        } else {
            &self.inner.problems
        }
    }

    /// The status the guest passed to `wasi:cli/exit`, for [`ErrorKind::Exit`].
    pub fn exit_code(&self) -> Option<i32> {
        self.inner.exit_code
    }

    /// Prepends context to the message, keeping kind, fields and cause.
    pub fn context(mut self, context: impl fmt::Display) -> Self {
        self.inner.message = format!("{context}: {}", self.inner.message);
        self
    }

    /// Names the module, unless the error names one already.
    pub fn set_module(&mut self, module: &str) {
        if self.inner.module.is_none() {
            self.inner.module = Some(module.to_string());
        }
    }

    /// Sets where in the manifest the problem is, unless it is known already.
    pub fn set_location(&mut self, at: Location) {
        if self.inner.location.is_none() {
            self.inner.location = Some(at);
        }
    }

    /// Fills in the module when the error does not name one yet (on every problem).
    pub fn in_module(mut self, module: &str) -> Self {
        if self.inner.module.is_none() {
            self.inner.module = Some(module.to_string());
        }
        for p in &mut self.inner.problems {
            if p.inner.module.is_none() {
                p.inner.module = Some(module.to_string());
            }
        }
        self
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if !self.inner.problems.is_empty() {
            write!(f, "{} problems:", self.inner.problems.len())?;
            for p in &self.inner.problems {
                write!(f, "\n  - {}", chain(p))?;
            }
            return Ok(());
        }
        if let Some(at) = &self.inner.location {
            write!(f, "{at}: ")?;
        }
        f.write_str(&self.inner.message)
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.inner
            .source
            .as_deref()
            .map(|e| e as &(dyn std::error::Error + 'static))
    }
}

/// Problems found at load time, reported together so that one `check` shows everything
/// to fix.
#[derive(Debug, Default)]
pub struct Problems(Vec<Error>);

impl Problems {
    /// Adds a problem; an error that lists several problems adds each of them.
    pub fn push(&mut self, mut e: Error) {
        if e.inner.problems.is_empty() {
            self.0.push(e);
        } else {
            self.0.append(&mut e.inner.problems);
        }
    }

    /// How many problems so far.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there is none so far.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The problems so far.
    pub fn iter_mut(&mut self) -> impl Iterator<Item = &mut Error> {
        self.0.iter_mut()
    }

    /// Ok when empty; otherwise the one problem, or one error of the first problem's kind
    /// listing all of them.
    pub fn into_result(self) -> Result<()> {
        let mut problems = self.0;
        match problems.len() {
            0 => Ok(()),
            1 => Err(problems.remove(0)),
            n => {
                let mut e = Error::new(problems[0].inner.kind, format!("{n} problems"));
                e.inner.problems = problems;
                Err(e)
            }
        }
    }
}

/// The message of `e` followed by each cause, joined with ": ", safe to print: text that
/// may come from a guest is escaped (see [`escape`](crate::sanitize::escape)), and every line after
/// the first is indented.
pub fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = describe(e);
    let mut cur = e.source();
    while let Some(s) = cur {
        let text = describe(s);
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        cur = s.source();
    }
    out
}

/// One error's text, made safe to print. Membrane's own messages may list problems on
/// several lines (guest-chosen parts in them are escaped where they are put in); any other
/// error's text is escaped whole.
pub fn describe(e: &(dyn std::error::Error + 'static)) -> String {
    if e.is::<Error>() || e.is::<GuestFailure>() {
        crate::sanitize::escape_lines(&e.to_string(), "    ")
    } else {
        crate::sanitize::escape(&e.to_string()).into_owned()
    }
}

/// The cause of a failed guest call: what the engine said, and where in the guest it
/// happened, every part already escaped (the names in a backtrace are chosen by the
/// guest's binary).
#[derive(Debug)]
pub struct GuestFailure {
    /// The engine's messages, outermost first, each escaped.
    messages: Vec<String>,
    /// One escaped line per frame, innermost first.
    frames: Vec<String>,
}

impl GuestFailure {
    /// A failure from escaped `messages` (outermost first) and backtrace `frames`
    /// (innermost first).
    pub fn new(messages: Vec<String>, frames: Vec<String>) -> Self {
        GuestFailure { messages, frames }
    }
}

impl std::fmt::Display for GuestFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.messages.is_empty() {
            f.write_str("the guest failed")?;
        } else {
            f.write_str(&self.messages.join(": "))?;
        }
        if !self.frames.is_empty() {
            f.write_str("\nwasm backtrace:")?;
            for frame in &self.frames {
                write!(f, "\n{frame}")?;
            }
        }
        Ok(())
    }
}

impl std::error::Error for GuestFailure {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn problem_lists_stay_flat() {
        let mut inner = Problems::default();
        inner.push(Error::manifest("a").with_module("x"));
        inner.push(Error::link("b"));
        let nested = inner.into_result().unwrap_err();
        let mut outer = Problems::default();
        outer.push(Error::not_found("c"));
        outer.push(nested);
        let e = outer.into_result().unwrap_err();
        assert_eq!(e.problems().len(), 3);
        assert!(e.problems().iter().all(|p| p.problems().len() == 1));
        assert_eq!(e.kind(), ErrorKind::NotFound);
        assert_eq!(e.problems()[1].module(), Some("x"));
        assert_eq!(e.to_string().matches("problems").count(), 1, "{e}");
    }

    #[test]
    fn a_single_error_is_its_own_problem() {
        let e = Error::manifest("m").with_key("modules.a.limits.memory");
        assert_eq!(e.problems().len(), 1);
        assert_eq!(e.problems()[0].key(), Some("modules.a.limits.memory"));
    }
}
