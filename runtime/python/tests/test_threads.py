"""Synchronous calls release the GIL: threads call at once, and other Python threads go on
while a guest runs."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import List

import pytest

import membrane
from conftest import CAPS, ECHO, probe

#: Timeouts of the spins below, each tried when the one before ended too soon to show
#: anything (on a busy machine a thread may wait long for the CPU): a failure waits them all
#: out, a success normally needs the first.
SPIN_TIMEOUTS = (0.25, 1, 4, 16, 64)


def test_threads_calling_at_once(types_app: membrane.App) -> None:
    def work(i: int) -> List[str]:
        return [types_app.call("m", f"{ECHO}#echo-string", f"{i}-{j}") for j in range(25)]

    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(work, range(16)))
    assert results == [[f"{i}-{j}" for j in range(25)] for i in range(16)]


def busy_while_spinning(app: membrane.App, spinners: int) -> bool:
    """Calls the probe's `spin` on `spinners` threads, each until its timeout, while this
    thread calls `length` over and over; whether a call of this thread was refused as busy.
    The module has `spinners` instances and no queue, so a refusal means that every spin
    was running at once, and that this thread ran Python meanwhile. A spin refused because
    a call of this thread has an instance at that moment tries again."""
    ends: List[str] = []
    lock = threading.Lock()
    all_ended = threading.Event()

    def spinner() -> None:
        try:
            while True:
                try:
                    app.call("m", f"{CAPS}#spin")
                except membrane.Overloaded:
                    continue
                except membrane.Timeout as e:
                    ends.append(e.kind)
                    return
        finally:
            with lock:
                left[0] -= 1
                if not left[0]:
                    all_ended.set()

    left = [spinners]
    threads = [threading.Thread(target=spinner) for _ in range(spinners)]
    for t in threads:
        t.start()
    busy = False
    try:
        while not busy and not all_ended.is_set():
            try:
                app.call("m", f"{CAPS}#length", "a")
            except membrane.Overloaded as e:
                assert e.module == "m"
                busy = True
            except membrane.Timeout:
                break  # this thread waited for the CPU past the timeout: try a longer one
            time.sleep(0.001)
    finally:
        for t in threads:
            t.join()
    # Every spin ran until its timeout stopped it.
    assert ends == ["timeout"] * spinners
    return busy


def test_the_gil_is_released_while_a_guest_spins(rt: membrane.Runtime) -> None:
    # While a guest spins on another thread, this thread runs (and calls the module, which
    # finds the spin holding the one instance). With the GIL held, it never could.
    for timeout in SPIN_TIMEOUTS:
        if busy_while_spinning(probe(rt, timeout=timeout, instances=1, queue=0), 1):
            return
    pytest.fail("no call of this thread ran while the guest spun")


def test_spinning_guests_on_two_threads_run_in_parallel(rt: membrane.Runtime) -> None:
    # Both instances are held by spins at the same time.
    for timeout in SPIN_TIMEOUTS:
        if busy_while_spinning(probe(rt, timeout=timeout, instances=2, queue=0), 2):
            return
    pytest.fail("the two spins never ran at once")
