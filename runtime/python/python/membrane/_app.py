"""Runtime and App: the package's front over the native module."""

from __future__ import annotations

import asyncio
import os
import weakref
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple, Union

from . import _native
from .host import HostInterface
from .spec import AppSpec

__all__ = ["Runtime", "App", "default_cache_dir"]

PathLike = Union[str, "os.PathLike[str]"]


def default_cache_dir() -> Optional[str]:
    """The compile cache of the user's account (``$MEMBRANE_CACHE_DIR``, else
    ``$XDG_CACHE_HOME/membrane``, else
    ``~/.cache/membrane``), which the ``membrane`` command uses too: pass it as
    ``Runtime(cache_dir=...)`` so that later runs start without compiling."""
    path = _native.default_cache_dir()
    return None if path is None else os.fspath(path)


class Runtime:
    """The engine: compiles and loads apps, and holds the host interfaces they may link to.

    Arguments (each defaults to ``membrane::Config``'s default):
        cache_dir: where compiled components are kept between runs; ``None`` compiles
            every time.
        fuel: meter fuel, so that modules can set a ``fuel`` limit (slower wasm code).
        instance_slots: how many instances may be live at once across this runtime's apps
            (1000); each reserves address space up front.
        max_wasm_stack: the most wasm stack one call may use, in bytes (512 KiB).
        metrics: count every call (on by default).

    A runtime owns a tokio runtime of two worker threads, which loads apps and runs the
    calls awaited with :meth:`App.call_async`.
    """

    def __init__(
        self,
        cache_dir: Optional[PathLike] = None,
        *,
        fuel: bool = False,
        instance_slots: Optional[int] = None,
        max_wasm_stack: Optional[int] = None,
        metrics: bool = True,
    ) -> None:
        self._native = _native.Runtime(
            None if cache_dir is None else os.fspath(cache_dir),
            fuel=fuel,
            instance_slots=instance_slots,
            max_wasm_stack=max_wasm_stack,
            metrics=metrics,
        )

    def load(self, manifest: PathLike) -> "App":
        """Reads a ``membrane.toml`` (or the one in a directory), compiles, links and
        checks every module, and returns the ready app. Every problem found is reported
        in one :class:`membrane.Error` (its ``problems`` list them)."""
        return App(self._native.load(os.fspath(manifest)))

    def load_spec(self, spec: Union[AppSpec, Mapping[str, Any]]) -> "App":
        """Loads an app declared in code (an :class:`AppSpec` or a dict of its shape)."""
        if isinstance(spec, AppSpec):
            spec = spec.to_dict()
        else:
            spec = _plain(spec)
        return App(self._native.load_spec(spec))

    def provide(
        self,
        interface: Union[HostInterface, str],
        funcs: Optional[Mapping[str, Tuple[str, Callable[..., Any]]]] = None,
    ) -> None:
        """Registers a host interface for the apps loaded afterwards: a
        :class:`HostInterface`, or its name and ``{"func": (signature, callable)}``::

            rt.provide("acme:kv/store@0.1.0", {
                "get": ("func(key: string) -> option<string>", data.get),
            })

        Modules reach it only through a link to ``host`` (``links = {"acme:kv/store":
        "host"}``). Providing the same name again replaces it for later loads. Resources
        need a :class:`HostInterface` (:meth:`HostInterface.resource`).
        """
        resources: List[Tuple[str, type]] = []
        if isinstance(interface, HostInterface):
            if funcs is not None:
                raise TypeError("give either a HostInterface or a name and its functions")
            name, entries = interface.name, interface._entries()
            resources = interface._resources()
        else:
            name = interface
            entries = [(n, sig, f) for n, (sig, f) in (funcs or {}).items()]
        for n, _sig, f in entries:
            if not callable(f):
                raise TypeError(f"host function {name}#{n} is not callable")
        self._native.provide(name, entries, resources)


class App:
    """A loaded app. Calls of its exports may come from any thread, and from asyncio."""

    __slots__ = ("_native", "__dict__")

    def __init__(self, native: "_native.App") -> None:
        self._native = native
        # The fast path: ``app.call`` is the native bound method itself, found in the
        # instance's dict before the documented method below (a function is a non-data
        # descriptor), so a call costs no Python frame. The native method raises the
        # package's exception classes itself (src/errors.rs).
        self.__dict__["call"] = native.call

    def call(self, module: str, export: str, *args: Any) -> Any:
        """Calls ``export`` of ``module`` with ``args`` and returns its result.

        ``export`` is ``ns:pkg/iface#func`` (optionally with ``@version`` after the
        interface) or a root-level function's bare name. Arguments are checked against
        the export's WIT types before any guest code runs (:class:`membrane.InvalidArgs`
        names the one that does not fit). One result is returned as is, none as ``None``;
        a ``result<T, E>`` returns its ``ok`` payload or raises
        :class:`membrane.ResultError` with its ``err`` payload.

        The guest runs on this thread with the GIL released, so other Python threads go
        on meanwhile; it stops at the module's ``timeout``
        (:class:`membrane.Timeout`). Do not call this from an asyncio task: use
        :meth:`call_async`.

        (Each instance's ``call`` is the native method, with this signature and behaviour;
        this definition documents it and serves the class-level ``App.call(app, ...)``.)
        """
        return self._native.call(module, export, *args)

    async def call_async(self, module: str, export: str, *args: Any) -> Any:
        """:meth:`call` for asyncio: the guest runs on the runtime's worker threads and
        the event loop goes on meanwhile. Cancelling the awaiting task stops the guest
        at once, wherever it is, and frees its instance for the next call."""
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        call = self._native.start_call(module, export, args, _inbox(loop), future)
        try:
            return await future
        except asyncio.CancelledError:
            call.cancel()
            raise

    def run(self, args: Sequence[str] = ()) -> int:
        """Runs the entry module's ``wasi:cli/run`` with ``args`` (after ``argv[0]``)
        and returns its exit status; the guest's stdin is closed."""
        return self._native.run(list(args))

    def modules(self) -> List[str]:
        """The names of the app's modules, sorted."""
        return self._native.modules()

    def signature(self, module: str, export: str) -> str:
        """The WIT type of an export: ``func(a: u32, b: u32) -> u32``."""
        return self._native.signature(module, export)

    def export_name(self, module: str, export: str) -> str:
        """The full name an export is found under (``ns:pkg/iface@1.0.0#func``)."""
        return self._native.export_name(module, export)


def _plain(spec: Mapping[str, Any]) -> Dict[str, Any]:
    """A dict spec with any ModuleSpec values turned into dicts."""
    out = dict(spec)
    modules = out.get("modules")
    if isinstance(modules, Mapping):
        out["modules"] = {
            n: m.to_dict() if hasattr(m, "to_dict") else m for n, m in modules.items()
        }
    return out


#: The inbox of each event loop that awaited a call: the native module queues the outcomes
#: of its calls there, and the loop completes their futures when woken.
_inboxes: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _native.Inbox]" = (
    weakref.WeakKeyDictionary()
)


def _inbox(loop: asyncio.AbstractEventLoop) -> "_native.Inbox":
    """The inbox of ``loop``, made on its first call: the loop watches its descriptor
    (``add_reader``), or, for a loop that cannot, is woken with ``call_soon_threadsafe``."""
    try:
        inbox = _inboxes.get(loop)
    except TypeError:
        # A loop that cannot be weakly referenced keeps no inbox: each call gets its own,
        # woken with call_soon_threadsafe.
        inbox = _native.Inbox()
        inbox.use_call_soon()
        return inbox
    if inbox is None:
        inbox = _native.Inbox()
        fd = inbox.fileno()
        try:
            if fd is None:
                raise NotImplementedError
            loop.add_reader(fd, inbox.drain)
        except NotImplementedError:
            inbox.use_call_soon()
        _inboxes[loop] = inbox
    return inbox
