"""Apps declared in code: :class:`AppSpec` and :class:`ModuleSpec`, the Python face of
``membrane::AppSpec`` and ``membrane::ModuleSpec``.

``Runtime.load_spec`` takes an :class:`AppSpec` or a plain dict of the same shape
(``{"entry": ..., "modules": {"name": {"component": ..., ...}}}``; a module's keys may
also be grouped under ``grants`` and ``limits`` as in ``membrane.toml``). Everything not
granted is denied; an unset limit keeps Membrane's default (64 MiB of memory, 10 s per
call, 32 instances, 128 waiting callers, ...).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Dict, List, Optional, Tuple, Union

__all__ = ["AppSpec", "ModuleSpec", "Dir"]

#: A size: bytes as an int, or text such as ``"64MiB"``.
Size = Union[int, str]
#: A duration: seconds as an int or float, a ``timedelta``, or text such as ``"500ms"``.
Duration = Union[int, float, str, timedelta]
PathLike = Union[str, "os.PathLike[str]"]


@dataclass
class Dir:
    """A host directory granted at ``guest`` (an absolute guest path); ``mode`` is
    ``"ro"`` (the default: read and list only) or ``"rw"``."""

    host: PathLike
    guest: str
    mode: str = "ro"

    def to_dict(self) -> Dict[str, Any]:
        return {"host": os.fspath(self.host), "guest": self.guest, "mode": self.mode}


@dataclass
class ModuleSpec:
    """One module: its component (a path, or the component's bytes), grants, limits and
    links. ``None`` leaves a setting at its default (nothing granted, default limits).

    Grants: ``env`` (environment variables), ``config`` (``wasi:config`` keys), ``dirs``
    (:class:`Dir` or ``(host, guest[, mode])``), ``network`` (``"host:port"``
    destinations), ``http`` (outbound origins, ``"https://api.example.com"``), ``stdout``
    and ``stderr`` (``"log"``, the default, ``"inherit"`` or ``"discard"``).

    Limits: ``memory``, ``hostcall`` and ``output`` (sizes), ``timeout`` (a duration),
    ``fuel`` (needs ``Runtime(fuel=True)``), ``files``, ``instances`` and ``queue``
    (counts), ``lifecycle`` (``"reuse"`` or ``"per-call"``).

    ``links`` maps an import (``"acme:kv/store"``) to the module that provides it, or to
    ``"host"`` for an interface given with ``Runtime.provide``.
    """

    component: Union[PathLike, bytes]
    env: Optional[Dict[str, str]] = None
    config: Optional[Dict[str, str]] = None
    dirs: Optional[List[Union[Dir, Tuple[Any, ...], Dict[str, Any]]]] = None
    network: Optional[List[str]] = None
    http: Optional[List[str]] = None
    stdout: Optional[str] = None
    stderr: Optional[str] = None
    memory: Optional[Size] = None
    timeout: Optional[Duration] = None
    fuel: Optional[int] = None
    hostcall: Optional[Size] = None
    output: Optional[Size] = None
    files: Optional[int] = None
    instances: Optional[int] = None
    queue: Optional[int] = None
    lifecycle: Optional[str] = None
    links: Optional[Dict[str, str]] = None

    def link(self, interface: str, provider: str) -> "ModuleSpec":
        """Links the import ``interface`` to the module ``provider`` (or ``"host"``)."""
        self.links = dict(self.links or {}, **{interface: provider})
        return self

    def to_dict(self) -> Dict[str, Any]:
        out: Dict[str, Any] = {}
        for name in self.__dataclass_fields__:
            value = getattr(self, name)
            if value is None:
                continue
            if name == "component" and not isinstance(value, (bytes, bytearray)):
                value = os.fspath(value)
            elif name == "component":
                value = bytes(value)
            elif name == "dirs":
                value = [d.to_dict() if isinstance(d, Dir) else d for d in value]
            out[name] = value
        return out


@dataclass
class AppSpec:
    """An app: its modules by name, and the ``entry`` module ``App.run`` starts."""

    modules: Dict[str, Union[ModuleSpec, Dict[str, Any]]] = field(default_factory=dict)
    entry: Optional[str] = None
    name: Optional[str] = None

    def module(self, name: str, module: Union[ModuleSpec, Dict[str, Any]]) -> "AppSpec":
        """Adds (or replaces) the module ``name``; returns the spec, for chaining."""
        self.modules[name] = module
        return self

    def to_dict(self) -> Dict[str, Any]:
        out: Dict[str, Any] = {
            "modules": {
                n: m.to_dict() if isinstance(m, ModuleSpec) else m
                for n, m in self.modules.items()
            }
        }
        if self.entry is not None:
            out["entry"] = self.entry
        if self.name is not None:
            out["name"] = self.name
        return out
