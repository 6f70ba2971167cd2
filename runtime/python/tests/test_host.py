"""Host interfaces written in Python: linked by modules, type-checked at load, called on the
guest's thread; an exception fails the guest's call, never the host."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Dict, List, Optional

import pytest

import membrane
from conftest import CALC, guest, runtime


def kv_interface(data: Dict[str, str], get_signature: str = "func(key: string) -> option<string>") -> membrane.HostInterface:
    kv = membrane.HostInterface("acme:kv/store@0.1.0")

    @kv.func(get_signature)
    def get(key: str) -> Optional[str]:
        return data.get(key)

    @kv.func("func(key: string, value: string) -> result<_, string>")
    def set_(key: str, value: str) -> None:
        data[key] = value

    kv.add("keys", "func() -> list<string>", lambda: sorted(data))
    return kv


def kv_app(rt: membrane.Runtime) -> membrane.App:
    spec = membrane.AppSpec(entry="cli").module(
        "cli", membrane.ModuleSpec(guest("needs_kv")).link("acme:kv/store", "host")
    )
    return rt.load_spec(spec)


def test_a_command_linked_to_a_python_interface() -> None:
    rt = runtime(instance_slots=8)
    data: Dict[str, str] = {}
    rt.provide(kv_interface(data))
    assert kv_app(rt).run() == 0
    assert data == {"greeting": "hi"}


def test_a_signature_other_than_the_importers_is_refused_at_load() -> None:
    rt = runtime(instance_slots=8)
    rt.provide(kv_interface({}, get_signature="func(key: string) -> option<u32>"))
    with pytest.raises(membrane.Link) as e:
        kv_app(rt)
    text = str(e.value)
    assert "func(string) -> option<string>" in text and "option<u32>" in text
    assert e.value.module == "cli"
    assert e.value.export == "acme:kv/store@0.1.0#get"


def test_result_error_returns_err() -> None:
    rt = runtime(instance_slots=8)
    data: Dict[str, str] = {}
    kv = kv_interface(data)

    def full(key: str, value: str) -> None:
        raise membrane.ResultError("the store is full")

    kv.add("set", "func(key: string, value: string) -> result<_, string>", full)
    rt.provide(kv)
    # The guest unwraps the `err` of `set`: it panics, so its run traps.
    with pytest.raises(membrane.Trap):
        kv_app(rt).run()
    assert data == {}


class Math:
    """membrane-test:placement/math, implemented in Python; `calc` calls it."""

    def __init__(self) -> None:
        self.calls = 0
        self.threads: set = set()
        self.lock = threading.Lock()

    def add(self, a: int, b: int) -> int:
        with self.lock:
            self.calls += 1
            self.threads.add(threading.get_ident())
        if a == 666:
            raise ValueError("the devil's number")
        if a == 777:
            return "not a number"  # type: ignore[return-value]
        return a + b

    def interface(self) -> membrane.HostInterface:
        math = membrane.HostInterface("membrane-test:placement/math@0.1.0")
        math.add("add", "func(a: u32, b: u32) -> u32", self.add)
        math.add("echo", "func(bytes: list<u8>) -> list<u8>", lambda b: bytes(reversed(b)))
        math.add("nap", "func(ms: u64) -> u64", lambda ms: ms)
        math.add("fail", "func(message: string)", self.fail)
        math.add("bump", "func() -> u64", lambda: 1)
        return math

    @staticmethod
    def fail(message: str) -> None:
        raise RuntimeError(message)


@pytest.fixture(scope="module")
def calc() -> tuple:
    rt = runtime(instance_slots=16)
    math = Math()
    rt.provide(math.interface())
    app = rt.load_spec({"modules": {"calc": {"component": guest("calc"), "links": {"membrane-test:placement/math": "host"}}}})
    return app, math


def test_values_cross_to_python_and_back(calc: tuple) -> None:
    app, math = calc
    assert app.call("calc", f"{CALC}#add", 2, 3) == 5
    assert app.call("calc", f"{CALC}#echo", b"abc") == b"cba"
    before = math.calls
    assert app.call("calc", f"{CALC}#loop-add", 100) == sum(range(1, 101))
    assert math.calls - before == 100


def test_an_exception_fails_the_guests_call_and_the_host_goes_on(calc: tuple) -> None:
    app, _ = calc
    with pytest.raises(membrane.HostPanic) as e:
        app.call("calc", f"{CALC}#add", 666, 1)
    assert "ValueError: the devil's number" in str(e.value)
    assert isinstance(e.value.__cause__, ValueError)
    assert e.value.module == "calc"
    with pytest.raises(membrane.HostPanic, match=r"RuntimeError: boom") as e:
        app.call("calc", f"{CALC}#fail", "boom")
    assert isinstance(e.value.__cause__, RuntimeError)
    assert app.call("calc", f"{CALC}#add", 1, 1) == 2


def test_a_result_of_the_wrong_type_fails_the_call(calc: tuple) -> None:
    app, _ = calc
    with pytest.raises(membrane.HostPanic, match=r"not a u32"):
        app.call("calc", f"{CALC}#add", 777, 1)
    assert app.call("calc", f"{CALC}#add", 1, 2) == 3


def test_host_functions_called_from_many_threads(calc: tuple) -> None:
    app, math = calc
    with ThreadPoolExecutor(max_workers=6) as pool:
        results: List[int] = list(pool.map(lambda n: app.call("calc", f"{CALC}#loop-add", n), range(1, 61)))
    assert results == [sum(range(1, n + 1)) for n in range(1, 61)]
    assert len(math.threads) > 1


def test_provide_checks_callables() -> None:
    rt = runtime(instance_slots=8)
    with pytest.raises(TypeError, match=r"not callable"):
        rt.provide("acme:kv/store@0.1.0", {"get": ("func(key: string) -> option<string>", 42)})  # type: ignore[dict-item]
    with pytest.raises(membrane.Link):
        rt.provide("not a name", {})


def test_host_functions_under_asyncio(calc: tuple) -> None:
    import asyncio

    app, _ = calc

    async def main() -> None:
        # The guests run on the runtime's worker threads, which take the GIL for each host
        # call while the event loop runs.
        sums = await asyncio.gather(*(app.call_async("calc", f"{CALC}#loop-add", n) for n in range(1, 21)))
        assert sums == [sum(range(1, n + 1)) for n in range(1, 21)]
        with pytest.raises(membrane.HostPanic) as e:
            await app.call_async("calc", f"{CALC}#add", 666, 0)
        assert isinstance(e.value.__cause__, ValueError)

    asyncio.run(main())
