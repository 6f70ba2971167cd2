"""Calls awaited from asyncio: the event loop goes on while guests run, calls run at once,
and cancelling the task stops the guest."""

from __future__ import annotations

import asyncio
import threading
from typing import Any, List, Tuple

import pytest

import membrane
from conftest import CALC, CAPS, ECHO, HANG, answer_async, guest, probe, refused_async, runtime, spin


def calc_meeting_in_nap(parties: int) -> Tuple[membrane.App, List[int]]:
    """The calc guest as module `calc`, linked to a Python membrane-test:placement/math whose
    `nap` waits until `parties` naps are in it at once; the threads the naps ran on."""
    met = threading.Barrier(parties, timeout=HANG)
    threads: List[int] = []

    def nap(ms: int) -> int:
        threads.append(threading.get_ident())
        met.wait()
        return ms

    math = membrane.HostInterface("membrane-test:placement/math@0.1.0")
    math.add("add", "func(a: u32, b: u32) -> u32", lambda a, b: a + b)
    math.add("echo", "func(bytes: list<u8>) -> list<u8>", lambda b: b)
    math.add("nap", "func(ms: u64) -> u64", nap)
    math.add("fail", "func(message: string)", lambda message: None)
    math.add("bump", "func() -> u64", lambda: 1)
    rt = runtime(instance_slots=8)
    rt.provide(math)
    app = rt.load_spec(
        {"modules": {"calc": {"component": guest("calc"), "links": {"membrane-test:placement/math": "host"}}}}
    )
    return app, threads


def test_gather_runs_calls_at_once() -> None:
    # Each guest's nap waits in the host for the other's: they can only return if both
    # calls run at once. (A Python host function holds the runtime's worker thread while it
    # waits, and there are two: no more calls than that can meet.)
    app, threads = calc_meeting_in_nap(2)

    async def main() -> List[Any]:
        return await asyncio.gather(*(app.call_async("calc", f"{CALC}#nap", ms) for ms in (1, 2)))

    assert asyncio.run(main()) == [1, 2]
    # On two worker threads, neither of them the event loop's.
    assert len(set(threads)) == 2 and threading.get_ident() not in threads


def test_values_and_errors(types_app: membrane.App) -> None:
    async def main() -> None:
        assert await types_app.call_async("m", f"{ECHO}#echo-point", {"x": 1, "y": 1, "label": "a"}) == {
            "x": 2,
            "y": 2,
            "label": "a",
        }
        assert await types_app.call_async("m", f"{ECHO}#nothing") is None
        with pytest.raises(membrane.ResultError):
            await types_app.call_async("m", f"{ECHO}#parse-u32", "x")
        with pytest.raises(membrane.InvalidArgs, match=r"out of range for u8"):
            await types_app.call_async("m", f"{ECHO}#swap", ("a", 999))
        with pytest.raises(membrane.NotFound):
            await types_app.call_async("m", "nope")

    asyncio.run(main())


def test_the_event_loop_goes_on_while_a_guest_spins(rt: membrane.Runtime) -> None:
    # One instance, no queue, a timeout far past the test: a call refused as busy is proof
    # that the spinning guest holds the instance.
    app = probe(rt, timeout=600, instances=1, queue=0)

    async def main() -> None:
        spinner = asyncio.ensure_future(spin(app))
        # The loop awaits calls, and timers fire, while the guest spins.
        await refused_async(app)
        for _ in range(10):
            await asyncio.sleep(0.001)
        await refused_async(app)
        assert not spinner.done()
        spinner.cancel()
        with pytest.raises(asyncio.CancelledError):
            await spinner

    asyncio.run(main())


def test_cancelling_the_task_stops_the_guest(rt: membrane.Runtime) -> None:
    # One instance, no queue, and a timeout far past the test: the module answers again
    # only once the cancelled call has stopped its guest and given the instance back.
    app = probe(rt, timeout=600, instances=1, queue=0)

    async def main() -> None:
        task = asyncio.ensure_future(spin(app))
        e = await refused_async(app)  # the guest is spinning
        assert e.kind == "overloaded"
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert await answer_async(app, "abcd") == 4
        # wait_for's timeout cancels the same way.
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(app.call_async("m", f"{CAPS}#spin"), 0.1)
        assert await answer_async(app, "ab") == 2

    asyncio.run(main())
    assert app.call("m", f"{CAPS}#length", "abc") == 3


def test_many_calls_in_flight_each_get_their_outcome(types_app: membrane.App) -> None:
    # Outcomes reach the loop in batches (one wake-up for all that completed meanwhile);
    # each future gets its own, errors included.
    async def main() -> List[Any]:
        calls = [types_app.call_async("m", f"{ECHO}#parse-u32", str(n) if n % 5 else "x") for n in range(64)]
        return await asyncio.gather(*calls, return_exceptions=True)

    for n, out in enumerate(asyncio.run(main())):
        if n % 5:
            assert out == n
        else:
            assert isinstance(out, membrane.ResultError)


class NoReaderLoop(asyncio.SelectorEventLoop):
    """A loop without add_reader, as Windows' proactor loop."""

    def add_reader(self, *args: Any) -> None:
        raise NotImplementedError


def test_a_loop_without_add_reader_is_woken_with_call_soon_threadsafe(types_app: membrane.App) -> None:
    async def main() -> List[Any]:
        return await asyncio.gather(*(types_app.call_async("m", f"{ECHO}#parse-u32", str(n)) for n in range(20)))

    loop = NoReaderLoop()
    try:
        assert loop.run_until_complete(main()) == list(range(20))
    finally:
        loop.close()


def test_app_call_is_the_native_method(types_app: membrane.App) -> None:
    # The fast path: no Python frame between the caller and the native call; the class's
    # documented method behaves the same.
    assert types_app.call == types_app._native.call
    assert membrane.App.call(types_app, "m", f"{ECHO}#parse-u32", "7") == 7
    with pytest.raises(membrane.ResultError):
        types_app.call("m", f"{ECHO}#parse-u32", "x")
