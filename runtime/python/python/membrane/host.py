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

WIT resources are implemented by Python classes (:meth:`HostInterface.resource`): a
guest's handle stands for an instance of the class, and host functions get and return the
instances themselves wherever their signature has the resource (``document`` or
``own<document>``, ``borrow<document>``).
"""

from __future__ import annotations

import inspect
from typing import Any, Callable, Dict, List, Optional, Tuple, TypeVar

__all__ = ["HostInterface", "wit"]

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
        self.resources: Dict[str, type] = {}

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

    def resource(self, name: str, cls: type) -> "HostInterface":
        """Implements the WIT resource ``name`` with the class ``cls``: its members marked
        with :func:`wit` become the resource's functions, by the Python name in kebab-case
        (``line_count`` is ``line-count``) unless the mark names one::

            class Document:
                @membrane.wit("func(text: string)")         # [constructor]document
                def __init__(self, text):
                    self.text = text

                @membrane.wit("func() -> string", name="text")  # [method]document.text
                def read(self):
                    return self.text

                @staticmethod
                @membrane.wit("func(name: string) -> document")  # [static]document.open
                def open(name):
                    return Document(f"# {name}")

            docs.resource("document", Document)

        ``__init__`` is the constructor (its signature lists the parameters only; it
        returns the new handle), a ``staticmethod`` or ``classmethod`` a static function, any
        other function a method (its signature leaves out ``self``, which is the handle's
        object). A guest's handle stands for the instance: a function whose signature has
        ``document`` (or ``own<document>``) gets or returns an instance of ``cls``, and one
        with ``borrow<document>`` gets one. Returning anything else where a handle is
        expected fails the guest's call (:class:`membrane.HostPanic`).

        The runtime keeps a reference to an instance while a guest holds a handle to it, and
        drops it when the guest drops the handle (or passes it as an ``own`` to a function,
        which then has the object), or when the guest's instance ends; Python then frees
        the object as usual (``__del__``, ``weakref.finalize``) once nothing else refers
        to it.
        """
        if not inspect.isclass(cls):
            raise TypeError(f"resource {self.name}#{name}: {cls!r} is not a class")
        for attr in dir(cls):
            member = inspect.getattr_static(cls, attr)
            function = member.__func__ if isinstance(member, (staticmethod, classmethod)) else member
            mark = getattr(function, "__wit__", None)
            if mark is None:
                continue
            signature, wit_name = mark
            wit_name = wit_name or attr.strip("_").replace("_", "-")
            if attr == "__init__":
                if "->" in signature:
                    raise TypeError(
                        f"resource {self.name}#{name}: a constructor returns its handle; "
                        f"declare its parameters only, not {signature!r}"
                    )
                self.add(f"[constructor]{name}", f"{signature} -> {name}", cls)
            elif isinstance(member, (staticmethod, classmethod)):
                self.add(f"[static]{name}.{wit_name}", signature, getattr(cls, attr))
            else:
                self.add(f"[method]{name}.{wit_name}", _with_self(signature, name), function)
        self.resources[name] = cls
        return self

    def _entries(self) -> List[Tuple[str, str, Callable[..., Any]]]:
        return [(n, sig, f) for n, (sig, f) in self.funcs.items()]

    def _resources(self) -> List[Tuple[str, type]]:
        return list(self.resources.items())


def wit(signature: str, *, name: Optional[str] = None) -> Callable[[F], F]:
    """Marks a member of a resource class as one of the resource's WIT functions, with its
    ``signature`` (see :meth:`HostInterface.resource`) and, if given, its WIT ``name``.
    Works above or below ``@staticmethod``."""

    def mark(member: F) -> F:
        function = member.__func__ if isinstance(member, (staticmethod, classmethod)) else member
        function.__wit__ = (signature, name)  # type: ignore[attr-defined]
        return member

    return mark


def _with_self(signature: str, resource: str) -> str:
    """A method's signature with its ``self: borrow<resource>`` parameter in front."""
    text = signature.strip()
    if not text.startswith("func("):
        raise TypeError(f"not a WIT function signature: {signature!r}")
    rest = text[len("func(") :]
    sep = "" if rest.lstrip().startswith(")") else ", "
    return f"func(self: borrow<{resource}>{sep}{rest}"
