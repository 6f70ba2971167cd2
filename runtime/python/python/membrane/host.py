"""Host interfaces written in Python: functions that modules call through a link to
``host``.

Each function declares its WIT signature (``"func(key: string) -> option<string>"``,
parameter names optional). When an app loads, the signature is checked against the type
the importing module expects; a mismatch is a :class:`membrane.Link` error naming both.

A host function gets its parameters as Python values (see :mod:`membrane.values`) and
returns its result (``None`` when it has none). For a ``result<T, E>`` it returns the
``ok`` payload and raises :class:`membrane.ResultError` ``(e)`` for ``err(e)``. Any
other exception fails the guest's call: the caller gets :class:`membrane.HostPanic` (or
the error of the call that the guest's failure broke) with the exception as
``__cause__``; the host and the interpreter go on.

Host functions run on the guest's thread, with the GIL held for the time of the call:
keep them short, and never wait in one for another call of the same app.
"""

from __future__ import annotations

from typing import Any, Callable, Dict, List, Optional, Tuple, TypeVar

__all__ = ["HostInterface"]

F = TypeVar("F", bound=Callable[..., Any])


class HostInterface:
    """A WIT interface implemented by Python functions::

        kv = membrane.HostInterface("acme:kv/store@0.1.0")

        @kv.func("func(key: string) -> option<string>")
        def get(key):
            return data.get(key)

        kv.add("keys", "func() -> list<string>", lambda: sorted(data))
        runtime.provide(kv)

    A function's WIT name is ``name`` when given, else the Python name without leading and
    trailing ``_`` and with ``_`` turned into ``-`` (``line_count`` is ``line-count``,
    ``set_`` is ``set``).
    """

    def __init__(self, name: str) -> None:
        self.name = name
        self.funcs: Dict[str, Tuple[str, Callable[..., Any]]] = {}

    def add(self, name: str, signature: str, function: Callable[..., Any]) -> "HostInterface":
        """Adds (or replaces) the function ``name`` with its WIT ``signature``."""
        if not callable(function):
            raise TypeError(f"host function {self.name}#{name} is not callable")
        self.funcs[name] = (signature, function)
        return self

    def func(self, signature: str, *, name: Optional[str] = None) -> Callable[[F], F]:
        """Decorator form of :meth:`add`."""

        def register(function: F) -> F:
            self.add(name or function.__name__.strip("_").replace("_", "-"), signature, function)
            return function

        return register

    def _entries(self) -> List[Tuple[str, str, Callable[..., Any]]]:
        return [(n, sig, f) for n, (sig, f) in self.funcs.items()]
