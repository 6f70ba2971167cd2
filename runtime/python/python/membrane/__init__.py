"""Membrane for Python: run WebAssembly components as isolated modules, each with only the
capabilities it was granted and its own limits, and call them from Python.

    import membrane

    app = membrane.Runtime().load("membrane.toml")
    app.call("api", "acme:notes/api#add", "x")          # from any thread
    await app.call_async("api", "acme:notes/api#add", "x")  # from asyncio

Values map to WIT values by the export's types (:mod:`membrane.values`); failures raise a
subclass of :class:`membrane.Error` per kind (:mod:`membrane.errors`); host interfaces are
written in Python with :class:`HostInterface` and ``Runtime.provide`` (resources as
classes whose members are marked with :func:`wit`); apps can be declared in code with
:class:`AppSpec` and :class:`ModuleSpec`.
"""

from . import errors as _errors
from ._app import App, Runtime, default_cache_dir
from .errors import *  # noqa: F403 (the exception classes, one per kind; errors.__all__)
from .host import HostInterface, wit
from .spec import AppSpec, Dir, ModuleSpec
from .values import Err, Ok, Some, Variant

__all__ = [
    "Runtime",
    "App",
    "default_cache_dir",
    "AppSpec",
    "ModuleSpec",
    "Dir",
    "HostInterface",
    "wit",
    "Some",
    "Ok",
    "Err",
    "Variant",
    *_errors.__all__,
]
