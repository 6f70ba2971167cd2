"""Fixtures of the Python package's tests (run by tests/pytest.rs, which sets the
environment variables below to the guests that the `membrane-test-artifacts` crate built)."""

from __future__ import annotations

import asyncio
import os
import queue
import threading
import time
from typing import Any, Iterator, Optional

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


#: Seconds after which a wait that should end on an event fails instead of hanging. It only
#: turns a hang into a failure: no test relies on how long anything takes.
HANG = 60


async def spin(app: membrane.App) -> None:
    """Calls the probe's `spin` (module `m`) from asyncio until cancelled, again whenever
    another call has the module's instance (`Overloaded`). Give the module a timeout far
    past the test: the guest then holds an instance until the task is cancelled."""
    while True:
        try:
            await app.call_async("m", f"{CAPS}#spin")
        except membrane.Overloaded:
            await asyncio.sleep(0)


class Spinner:
    """:func:`spin` on a thread of its own, with its own event loop, until :meth:`stop`."""

    def __init__(self, app: membrane.App) -> None:
        self._loop = asyncio.new_event_loop()
        self._task = self._loop.create_task(spin(app))
        self._ended: "queue.Queue[Optional[BaseException]]" = queue.Queue()
        self._thread = threading.Thread(target=self._run, name="spinner", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            self._loop.run_until_complete(self._task)
        except BaseException as e:  # noqa: BLE001 - handed to stop()
            self._ended.put(e)
        else:
            self._ended.put(None)

    def stop(self) -> Optional[BaseException]:
        """Cancels the spin and returns how it ended (a `CancelledError` when it was still
        going)."""
        self._loop.call_soon_threadsafe(self._task.cancel)
        ended = self._ended.get(timeout=HANG)
        self._thread.join()
        self._loop.close()
        return ended


def refused(app: membrane.App) -> membrane.Overloaded:
    """Calls the probe's `length` until it is refused because every instance of the module
    is taken; returns the refusal."""
    deadline = time.monotonic() + HANG
    while True:
        try:
            app.call("m", f"{CAPS}#length", "a")
        except membrane.Overloaded as e:
            return e
        assert time.monotonic() < deadline, "the module never turned busy"
        time.sleep(0.001)


def answer(app: membrane.App, text: str) -> Any:
    """The probe's `length` of `text`, called again while the module is busy."""
    deadline = time.monotonic() + HANG
    while True:
        try:
            return app.call("m", f"{CAPS}#length", text)
        except membrane.Overloaded:
            assert time.monotonic() < deadline, "the module stayed busy"
            time.sleep(0.001)


async def refused_async(app: membrane.App) -> membrane.Overloaded:
    """:func:`refused` from asyncio."""
    deadline = time.monotonic() + HANG
    while True:
        try:
            await app.call_async("m", f"{CAPS}#length", "a")
        except membrane.Overloaded as e:
            return e
        assert time.monotonic() < deadline, "the module never turned busy"
        await asyncio.sleep(0.001)


async def answer_async(app: membrane.App, text: str) -> Any:
    """:func:`answer` from asyncio."""
    deadline = time.monotonic() + HANG
    while True:
        try:
            return await app.call_async("m", f"{CAPS}#length", text)
        except membrane.Overloaded:
            assert time.monotonic() < deadline, "the module stayed busy"
            await asyncio.sleep(0.001)
