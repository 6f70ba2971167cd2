"""The Python side of WIT values that have no exact Python counterpart.

How values map, both ways (arguments and results of calls, and of host functions):

=====================  ==============================================================
WIT                    Python
=====================  ==============================================================
bool                   ``bool``
s8 ... u64             ``int``, range-checked per type (an int out of range is
                       ``membrane.InvalidArgs`` naming the argument)
f32, f64               ``float`` (an ``int`` is accepted)
char                   a ``str`` of one character
string                 ``str``
list<u8>               ``bytes`` (``bytearray``, ``memoryview`` and lists of ints are
                       accepted)
list<T>                ``list`` (any iterable but ``str``, ``bytes`` and ``dict`` is accepted)
tuple<...>             ``tuple`` (a ``list`` of the right length is accepted)
record                 ``dict`` keyed by the WIT field names (``"max-size"``); keys in
                       snake_case (``"max_size"``) and objects with such attributes
                       (dataclasses) are accepted
variant                :class:`Variant` ``(case, value)``; a plain tuple
                       ``("circle", 3)`` or, for a case without payload, its name
                       ``"empty"`` are accepted
enum                   ``str``, the case's name
flags                  ``set`` of ``str`` (any iterable of names is accepted)
option<T>              ``None`` or the value; for ``option<option<T>>`` the outer
                       ``some`` is :class:`Some` (``Some(None)`` is ``some(none)``)
result<T, E>           at the top of a call's result: the ``ok`` value, or
                       :class:`membrane.ResultError` raised with the ``err`` value;
                       anywhere else: :class:`Ok` or :class:`Err`
own<r>, borrow<r>      in host functions, for a resource ``r`` of the interface: the
                       instance of its class (:meth:`HostInterface.resource`)
=====================  ==============================================================

Case, flag and field names are the WIT names (kebab-case); names in snake_case are
accepted on the way in.
"""

from __future__ import annotations

from typing import Any, NamedTuple

__all__ = ["Some", "Ok", "Err", "Variant"]


class _Box:
    __slots__ = ("value",)

    def __init__(self, value: Any = None) -> None:
        self.value = value

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Box) and type(other) is type(self) and other.value == self.value

    def __hash__(self) -> int:
        return hash((type(self).__name__, self.value))

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.value!r})"


class Some(_Box):
    """``some(value)`` of an ``option``, where ``None`` alone would be ambiguous:
    ``option<option<T>>`` returns ``Some(None)`` for ``some(none)`` and ``Some(x)`` for
    ``some(some(x))``. Accepted for any option on the way in."""

    __slots__ = ()


class Ok(_Box):
    """``ok(value)`` of a ``result`` (``Ok()`` when the ``ok`` case has no payload)."""

    __slots__ = ()


class Err(_Box):
    """``err(value)`` of a ``result`` (``Err()`` when the ``err`` case has no payload)."""

    __slots__ = ()


class Variant(NamedTuple):
    """A case of a WIT ``variant`` and its payload (``None`` for a case without one).

    A ``Variant`` is a tuple, so ``Variant("circle", 3) == ("circle", 3)``.
    """

    case: str
    value: Any = None
