//! The error type of the library: one struct with a documented [`ErrorKind`].

use std::fmt;

/// What went wrong, in a form a program can match on.
///
/// New kinds may be added in minor releases, so matches need a wildcard arm.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The manifest or the builder's declaration is invalid (unknown key, bad value, missing field).
    Manifest,
    /// A module's imports cannot be satisfied: an interface is neither granted nor linked,
    /// or a link does not type-check.
    Link,
    /// A capability was not granted (reported by the host, not by WASI inside the guest).
    Denied,
    /// A module, export or file does not exist.
    NotFound,
    /// A call ran past the module's `timeout`.
    Timeout,
    /// A call used up its fuel budget.
    OutOfFuel,
    /// The module tried to grow its memory past its `memory` limit and could not go on.
    MemoryLimit,
    /// The guest overflowed its wasm stack.
    StackOverflow,
    /// The guest passed more bytes to the host in one host call than its `hostcall` limit.
    HostcallLimit,
    /// The guest tried to grow a table past the table limit.
    TableLimit,
    /// The guest tried to hold more open host files, directories or sockets than its
    /// `files` limit, and the call then failed.
    FilesLimit,
    /// The guest tried to write past the disk quota of a grant, and the call then failed.
    DiskQuota,
    /// The guest trapped (panic, unreachable, bad memory access, ...).
    Trap,
    /// The module has no capacity left for the call.
    Overloaded,
    /// The module is not available (circuit open, shutting down).
    Unavailable,
    /// Reading or writing a host file failed.
    Io,
    /// The input is not a valid component (core module, garbage bytes, unsupported features).
    InvalidComponent,
    /// Values passed to a call do not match the function's parameter types.
    InvalidArgs,
    /// The guest asked to exit with a non-zero status (`wasi:cli/exit`).
    Exit,
}

impl ErrorKind {
    /// A short lowercase name of the kind, stable for logs and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::Manifest => "manifest",
            ErrorKind::Link => "link",
            ErrorKind::Denied => "denied",
            ErrorKind::NotFound => "not-found",
            ErrorKind::Timeout => "timeout",
            ErrorKind::OutOfFuel => "out-of-fuel",
            ErrorKind::MemoryLimit => "memory-limit",
            ErrorKind::StackOverflow => "stack-overflow",
            ErrorKind::HostcallLimit => "hostcall-limit",
            ErrorKind::TableLimit => "table-limit",
            ErrorKind::FilesLimit => "files-limit",
            ErrorKind::DiskQuota => "disk-quota",
            ErrorKind::Trap => "trap",
            ErrorKind::Overloaded => "overloaded",
            ErrorKind::Unavailable => "unavailable",
            ErrorKind::Io => "io",
            ErrorKind::InvalidComponent => "invalid-component",
            ErrorKind::InvalidArgs => "invalid-args",
            ErrorKind::Exit => "exit",
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The error of every fallible Membrane operation.
///
/// `Display` prints the message only; the underlying cause, when there is one, is
/// available through [`std::error::Error::source`] so that callers can print the chain.
#[derive(Debug)]
pub struct Error {
    kind: ErrorKind,
    message: String,
    exit_code: Option<i32>,
    source: Option<Box<dyn std::error::Error + Send + Sync + 'static>>,
    /// The problems an error of several problems lists, kept so lists can be merged.
    nested: Option<Vec<Error>>,
    /// Set when the failure happened in a linked provider, not in the module that reports it.
    pub(crate) upstream: bool,
}

/// The result type of the library.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// An error of `kind` with a message meant for a person.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Error {
            kind,
            message: message.into(),
            exit_code: None,
            source: None,
            nested: None,
            upstream: false,
        }
    }

    /// Attaches the underlying cause.
    pub fn with_source(
        mut self,
        source: impl Into<Box<dyn std::error::Error + Send + Sync>>,
    ) -> Self {
        self.source = Some(source.into());
        self
    }

    pub(crate) fn exit(code: i32, module: &str) -> Self {
        let mut e = Error::new(
            ErrorKind::Exit,
            format!("module `{module}` exited with status {code}"),
        );
        e.exit_code = Some(code);
        e
    }

    pub(crate) fn manifest(message: impl Into<String>) -> Self {
        Error::new(ErrorKind::Manifest, message)
    }

    pub(crate) fn link(message: impl Into<String>) -> Self {
        Error::new(ErrorKind::Link, message)
    }

    pub(crate) fn not_found(message: impl Into<String>) -> Self {
        Error::new(ErrorKind::NotFound, message)
    }

    pub(crate) fn io(message: impl Into<String>, source: std::io::Error) -> Self {
        Error::new(ErrorKind::Io, message).with_source(source)
    }

    /// What kind of error this is.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The message, without the cause chain.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The status the guest passed to `wasi:cli/exit`, for [`ErrorKind::Exit`].
    pub fn exit_code(&self) -> Option<i32> {
        self.exit_code
    }

    /// Prepends context to the message, keeping kind and cause.
    pub(crate) fn context(mut self, context: impl fmt::Display) -> Self {
        self.message = format!("{context}: {}", self.message);
        self
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_deref()
            .map(|e| e as &(dyn std::error::Error + 'static))
    }
}

/// A list of problems found at load time, reported together so that one `check`
/// shows everything to fix.
#[derive(Debug, Default)]
pub(crate) struct Problems(Vec<Error>);

impl Problems {
    /// Adds a problem; an error that lists several problems is flattened into them.
    pub(crate) fn push(&mut self, e: Error) {
        match e.nested {
            Some(list) => self.0.extend(list),
            None => self.0.push(e),
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Ok when empty; otherwise one error of the first problem's kind listing all of them.
    pub(crate) fn into_result(self) -> Result<()> {
        let mut problems = self.0;
        match problems.len() {
            0 => Ok(()),
            1 => Err(problems.remove(0)),
            n => {
                let kind = problems[0].kind;
                let list: Vec<String> = problems
                    .iter()
                    .map(|p| format!("  - {}", chain(p)))
                    .collect();
                Err(Error::new(
                    kind,
                    format!("{n} problems:\n{}", list.join("\n")),
                ))
            }
        }
    }
}

/// The message of `e` followed by each cause, joined with ": ", safe to print: text that
/// may come from a guest is escaped (see [`escape`](crate::escape)), and every line after
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
    if e.is::<Error>() || e.is::<crate::trap::GuestFailure>() {
        crate::sanitize::escape_lines(&e.to_string(), "    ")
    } else {
        crate::sanitize::escape(&e.to_string()).into_owned()
    }
}
