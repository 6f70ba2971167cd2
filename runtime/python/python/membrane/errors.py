"""Membrane's exceptions: one class per error kind, all subclasses of :class:`Error`.

Every failure of Membrane itself (a load, a call, a limit) raises a subclass of
:class:`Error` chosen by the error's kind (``Timeout`` for ``"timeout"``, ``MemoryLimit``
for ``"memory-limit"``, ...), so a program can catch what it handles and let the rest
through. :class:`ResultError` is different: it is not a failure of Membrane but the
``err`` value of a WIT ``result`` that a guest returned.
"""

from __future__ import annotations

from typing import Any, Dict, List, Optional, Type

__all__ = [
    "Error",
    "Manifest",
    "Link",
    "Denied",
    "NotFound",
    "Timeout",
    "OutOfFuel",
    "MemoryLimit",
    "StackOverflow",
    "HostcallLimit",
    "TableLimit",
    "FilesLimit",
    "DiskQuota",
    "Trap",
    "Overloaded",
    "Unavailable",
    "Io",
    "InvalidComponent",
    "InvalidArgs",
    "Exit",
    "Conflict",
    "HostPanic",
    "Crashed",
    "Integrity",
    "ResultError",
    "BY_KIND",
]


class Error(Exception):
    """A failure of Membrane: the base class of every kind below.

    Attributes:
        kind: the kind's stable name (``"timeout"``, ``"memory-limit"``, ...), as
            ``membrane::ErrorKind::as_str`` writes it in Rust.
        message: the message with its causes, escaped and safe to print (also ``str(e)``).
        module: the module the error is about, if any.
        export: the export (``ns:pkg/iface#func``) the error is about, if any.
        key: the manifest key to change (``modules.api.limits.memory``), if any.
        location: ``"file:line"`` in the manifest, if known.
        problems: when a load found several problems, one exception per problem (each an
            :class:`Error` subclass with its own attributes); else empty.
    """

    kind: str = "error"

    def __init__(
        self,
        message: str,
        *,
        kind: Optional[str] = None,
        module: Optional[str] = None,
        export: Optional[str] = None,
        key: Optional[str] = None,
        location: Optional[str] = None,
        problems: Optional[List["Error"]] = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        if kind is not None:
            self.kind = kind
        self.module = module
        self.export = export
        self.key = key
        self.location = location
        self.problems: List[Error] = list(problems or [])

    def __str__(self) -> str:
        return self.message


class Manifest(Error):
    """The manifest or the spec is invalid (unknown key, bad value, missing field)."""

    kind = "manifest"


class Link(Error):
    """An import is neither granted nor linked, or a link (to a module or to a host
    function) does not type-check."""

    kind = "link"


class Denied(Error):
    """The host refused a grant."""

    kind = "denied"


class NotFound(Error):
    """A module, export or file does not exist."""

    kind = "not-found"


class Timeout(Error):
    """A call ran past the module's ``timeout``."""

    kind = "timeout"


class OutOfFuel(Error):
    """A call used up its fuel budget."""

    kind = "out-of-fuel"


class MemoryLimit(Error):
    """The module tried to grow its memory past its ``memory`` limit."""

    kind = "memory-limit"


class StackOverflow(Error):
    """The guest overflowed its wasm stack."""

    kind = "stack-overflow"


class HostcallLimit(Error):
    """The guest passed more bytes to the host in one host call than its ``hostcall`` limit."""

    kind = "hostcall-limit"


class TableLimit(Error):
    """The guest tried to grow a table past the table limit."""

    kind = "table-limit"


class FilesLimit(Error):
    """The guest tried to hold more open host files than its ``files`` limit."""

    kind = "files-limit"


class DiskQuota(Error):
    """The guest tried to write past the disk quota of a grant."""

    kind = "disk-quota"


class Trap(Error):
    """The guest trapped (panic, unreachable, bad memory access, ...)."""

    kind = "trap"


class Overloaded(Error):
    """The module has no capacity left for the call."""

    kind = "overloaded"


class Unavailable(Error):
    """The module is not available (circuit open, shutting down)."""

    kind = "unavailable"


class Io(Error):
    """Reading or writing a host file failed."""

    kind = "io"


class InvalidComponent(Error):
    """The input is not a valid component."""

    kind = "invalid-component"


class InvalidArgs(Error):
    """Values passed to a call do not fit the function's parameter types (the message
    names the argument and where inside it)."""

    kind = "invalid-args"


class Exit(Error):
    """The guest asked to exit with a non-zero status."""

    kind = "exit"


class Conflict(Error):
    """The request conflicts with one in progress."""

    kind = "conflict"


class HostPanic(Error):
    """The host failed while serving a call: a bug in Membrane, or a host function (one
    written in Python included) that raised."""

    kind = "host-panic"


class Crashed(Error):
    """The worker process of a ``process`` module died during the call."""

    kind = "crashed"


class Integrity(Error):
    """Fetched bytes do not match the digest they were pinned to."""

    kind = "integrity"


#: The class of each kind, by the kind's name.
BY_KIND: Dict[str, Type[Error]] = {
    cls.kind: cls
    for cls in (
        Manifest,
        Link,
        Denied,
        NotFound,
        Timeout,
        OutOfFuel,
        MemoryLimit,
        StackOverflow,
        HostcallLimit,
        TableLimit,
        FilesLimit,
        DiskQuota,
        Trap,
        Overloaded,
        Unavailable,
        Io,
        InvalidComponent,
        InvalidArgs,
        Exit,
        Conflict,
        HostPanic,
        Crashed,
        Integrity,
    )
}


class ResultError(Exception):
    """The ``err`` case of a WIT ``result`` returned by a call: ``value`` is the error
    payload (``None`` for ``result<T>`` without an error type).

    A call whose single result is a ``result<T, E>`` returns the ``ok`` payload or raises
    this. A host function written in Python raises it to return ``err(value)``.
    """

    def __init__(
        self, value: Any = None, *, module: Optional[str] = None, export: Optional[str] = None
    ) -> None:
        super().__init__(value)
        self.value = value
        self.module = module
        self.export = export

    def __str__(self) -> str:
        where = f"{self.export}: " if self.export else ""
        return f"{where}err({self.value!r})"
