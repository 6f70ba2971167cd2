"""Limits and timeouts deny, with the error of their kind, and the module goes on."""

from __future__ import annotations

import time

import pytest

import membrane
from conftest import CAPS, TEXT, guest, probe, runtime


def test_timeout_stops_a_spinning_guest(rt: membrane.Runtime) -> None:
    app = probe(rt, timeout=0.2)
    start = time.monotonic()
    with pytest.raises(membrane.Timeout, match=r"ran past its deadline \(timeout 200ms\)") as e:
        app.call("m", f"{CAPS}#spin")
    assert 0.15 < time.monotonic() - start < 2.0
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
    import threading

    app = probe(rt, instances=1, queue=0, timeout=0.5)
    started = threading.Event()

    def spin() -> None:
        started.set()
        with pytest.raises(membrane.Timeout):
            app.call("m", f"{CAPS}#spin")

    t = threading.Thread(target=spin)
    t.start()
    started.wait()
    deadline = time.monotonic() + 2
    while True:
        try:
            app.call("m", f"{CAPS}#length", "a")
        except membrane.Overloaded:
            break
        assert time.monotonic() < deadline, "the second call never found the module busy"
        time.sleep(0.01)
    t.join()
