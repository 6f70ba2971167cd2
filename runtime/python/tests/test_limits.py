"""Limits and timeouts deny, with the error of their kind, and the module goes on."""

from __future__ import annotations

import asyncio
import time

import pytest

import membrane
from conftest import CAPS, TEXT, Spinner, answer, guest, probe, refused, runtime


def test_timeout_stops_a_spinning_guest(rt: membrane.Runtime) -> None:
    app = probe(rt, timeout=0.2)
    start = time.monotonic()
    with pytest.raises(membrane.Timeout, match=r"ran past its deadline \(timeout 200ms\)") as e:
        app.call("m", f"{CAPS}#spin")
    # Not before the deadline (give or take an epoch tick of 5 ms); how long after it
    # depends on how busy the machine is.
    assert time.monotonic() - start > 0.15
    assert e.value.kind == "timeout" and e.value.module == "m"
    assert app.call("m", f"{CAPS}#length", "ab") == 2


def test_memory_limit(rt: membrane.Runtime) -> None:
    app = probe(rt, memory="16MiB")
    with pytest.raises(membrane.MemoryLimit, match=r"past its limit of 16MiB"):
        app.call("m", f"{CAPS}#bomb")
    # An allocation the guest handles itself is its own `err`, not a limit error.
    with pytest.raises(membrane.ResultError):
        app.call("m", f"{CAPS}#try-alloc", 64 << 20)
    assert app.call("m", f"{CAPS}#try-alloc", 1 << 20) == 1 << 20


def test_the_rust_plugin_under_limits(rt: membrane.Runtime) -> None:
    app = rt.load_spec(
        membrane.AppSpec().module(
            "rust",
            membrane.ModuleSpec(
                guest("plugin_rust"), env={"PLUGIN_GREETING": "hi"}, memory="64MiB", timeout="300ms"
            ),
        )
    )
    assert app.call("rust", f"{TEXT}#transform", "a b c") == "C B A"
    assert app.call("rust", f"{TEXT}#env", "PLUGIN_GREETING") == "hi"
    assert app.call("rust", f"{TEXT}#env", "HOME") is None
    assert app.call("rust", f"{TEXT}#allocate", 8) == 8
    with pytest.raises(membrane.MemoryLimit):
        app.call("rust", f"{TEXT}#allocate", 128)
    with pytest.raises(membrane.Timeout):
        app.call("rust", f"{TEXT}#spin")


def test_fuel() -> None:
    rt = runtime(fuel=True, instance_slots=8)
    app = probe(rt, fuel=1_000_000)
    with pytest.raises(membrane.OutOfFuel, match=r"ran out of fuel \(1000000 per call\)"):
        app.call("m", f"{CAPS}#spin")
    assert app.call("m", f"{CAPS}#length", "abc") == 3


def test_concurrency_limit_overloads(rt: membrane.Runtime) -> None:
    # One instance, no queue, and a timeout far past the test: from the time the spinner
    # holds the instance (it tries again while a call of this thread has it) until it is
    # cancelled, every other call is refused at once.
    app = probe(rt, instances=1, queue=0, timeout=600)
    spinner = Spinner(app)
    try:
        e = refused(app)
    finally:
        ended = spinner.stop()
    assert e.kind == "overloaded" and e.module == "m"
    assert isinstance(ended, asyncio.CancelledError)
    # Cancelling stopped the guest: its instance answers again.
    assert answer(app, "ab") == 2
