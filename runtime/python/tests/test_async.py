"""Calls awaited from asyncio: the event loop goes on while guests run, calls run at once,
and cancelling the task stops the guest."""

from __future__ import annotations

import asyncio
import time

import pytest

import membrane
from conftest import CAPS, ECHO, MATH, probe


def test_gather_runs_calls_at_once(adder_app: membrane.App) -> None:
    async def main() -> list:
        return await asyncio.gather(*(adder_app.call_async("m", f"{MATH}#nap", 300) for _ in range(6)))

    start = time.monotonic()
    assert asyncio.run(main()) == [300] * 6
    # Six guests sleeping 300 ms each, at once (one after another would be 1.8 s).
    assert time.monotonic() - start < 1.2


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
    app = probe(rt, timeout=0.4)

    async def main() -> int:
        ticks = 0

        async def ticker() -> None:
            nonlocal ticks
            while True:
                ticks += 1
                await asyncio.sleep(0.01)

        t = asyncio.ensure_future(ticker())
        with pytest.raises(membrane.Timeout):
            await app.call_async("m", f"{CAPS}#spin")
        t.cancel()
        return ticks

    assert asyncio.run(main()) >= 10


def test_cancelling_the_task_stops_the_guest(rt: membrane.Runtime) -> None:
    # One instance and a timeout far away: the next call can only run if the cancelled
    # one stopped its guest and gave the instance back.
    app = probe(rt, timeout=60, instances=1, queue=4)

    async def main() -> None:
        task = asyncio.ensure_future(app.call_async("m", f"{CAPS}#spin"))
        await asyncio.sleep(0.2)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert await app.call_async("m", f"{CAPS}#length", "abcd") == 4
        # wait_for's timeout cancels the same way.
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(app.call_async("m", f"{CAPS}#spin"), 0.1)
        assert await app.call_async("m", f"{CAPS}#length", "ab") == 2

    start = time.monotonic()
    asyncio.run(main())
    assert time.monotonic() - start < 5
    assert app.call("m", f"{CAPS}#length", "abc") == 3
