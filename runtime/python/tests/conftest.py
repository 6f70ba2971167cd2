"""Fixtures of the Python package's tests (run by tests/pytest.rs, which sets the
environment variables below to the guests that the `membrane-test-artifacts` crate built)."""

from __future__ import annotations

import os
from typing import Iterator

import pytest

import membrane


def guest(name: str) -> str:
    """The path of a guest component, from MEMBRANE_TEST_<NAME>."""
    var = f"MEMBRANE_TEST_{name.upper()}"
    path = os.environ.get(var)
    if not path:
        pytest.fail(f"{var} is not set: run these tests with `cargo test -p membrane-python`")
    return path


#: Interfaces of the guests.
ECHO = "membrane-test:types/echo"
CAPS = "membrane-test:probe/caps"
MATH = "membrane-test:placement/math"
CALC = "membrane-test:placement/calc"
TEXT = "membrane-examples:plugin/text"


def runtime(**kwargs: object) -> membrane.Runtime:
    """A runtime sharing the tests' compile cache (guests are compiled once), with few
    instance slots (each reserves address space)."""
    kwargs.setdefault("instance_slots", 64)
    return membrane.Runtime(os.environ.get("MEMBRANE_TEST_CACHE"), **kwargs)  # type: ignore[arg-type]


@pytest.fixture(scope="session")
def rt() -> Iterator[membrane.Runtime]:
    yield runtime()


@pytest.fixture(scope="session")
def types_app(rt: membrane.Runtime) -> membrane.App:
    """The guest that echoes every family of WIT values, as module `m`."""
    return rt.load_spec(membrane.AppSpec().module("m", membrane.ModuleSpec(guest("types"))))


@pytest.fixture(scope="session")
def adder_app(rt: membrane.Runtime) -> membrane.App:
    """membrane-test:placement/math (add, echo of list<u8>, nap) as module `m`."""
    return rt.load_spec({"modules": {"m": {"component": guest("adder")}}})


def probe(rt: membrane.Runtime, **settings: object) -> membrane.App:
    """A fresh app of the probe guest as module `m` with `settings` (a fresh app has its
    own circuit breaker, which tests that fail calls on purpose would otherwise open)."""
    return rt.load_spec({"modules": {"m": dict(component=guest("probe"), **settings)}})
