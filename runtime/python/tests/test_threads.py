"""Synchronous calls release the GIL: threads call at once, and other Python threads go on
while a guest runs."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

import membrane
from conftest import CAPS, ECHO, probe


def test_threads_calling_at_once(types_app: membrane.App) -> None:
    def work(i: int) -> list:
        return [types_app.call("m", f"{ECHO}#echo-string", f"{i}-{j}") for j in range(25)]

    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(work, range(16)))
    assert results == [[f"{i}-{j}" for j in range(25)] for i in range(16)]


def test_the_gil_is_released_while_a_guest_spins(rt: membrane.Runtime) -> None:
    app = probe(rt, timeout=0.4)
    ticks = 0
    stop = threading.Event()

    def ticker() -> None:
        nonlocal ticks
        while not stop.is_set():
            ticks += 1
            time.sleep(0.005)

    t = threading.Thread(target=ticker)
    t.start()
    try:
        with pytest.raises(membrane.Timeout):
            app.call("m", f"{CAPS}#spin")
    finally:
        stop.set()
        t.join()
    assert ticks >= 10


def test_spinning_guests_on_two_threads_run_in_parallel(rt: membrane.Runtime) -> None:
    app = probe(rt, timeout=0.3)

    def spin(_: int) -> str:
        try:
            app.call("m", f"{CAPS}#spin")
        except membrane.Timeout as e:
            return e.kind
        return "returned"

    start = time.monotonic()
    with ThreadPoolExecutor(max_workers=2) as pool:
        assert list(pool.map(spin, range(2))) == ["timeout", "timeout"]
    assert time.monotonic() - start < 0.55
