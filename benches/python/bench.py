"""Issue 29: the same plugin work called from Python through Membrane's package, Extism's
Python host SDK and wasmtime-py, with Membrane's Rust calls of it as the baseline, in one
run with the hosts interleaved in every round. Run by scripts/bench-python.sh, which builds
what it needs and installs the packages:

    python bench.py --rust-bench PATH --extism-wasm PATH [--calls N] [--rounds R] [--loads L]

The work: `add` (two u32 in, their sum out) and `echo` of a 1 KiB string. Membrane and
wasmtime-py call the components `adder` (`membrane-test:placement/math#add`) and
`bench_provider` (`membrane-bench:calls/api#echo`); Extism calls its plugin
(benches/python/extism-plugin: `add` takes 8 bytes little-endian and returns 4, `echo` a
string). Each host is called with Python values and returns Python values: `int`s and
`str`s in, an `int` and a `str` out, whatever it takes to get there (packing bytes with
`struct` for Extism, decoding its output bytes to `str`).

Each round: the Rust baseline (a run of the `embedcalls` bench), then each Python host:
1,000 calls to warm up, then `--calls` calls timed with `time.perf_counter_ns` around the
loop (the garbage collector off, as `timeit` does), and `--loads` loads of a plugin whose
code is already compiled (from each host's cache), each to its first `add` result. The
figure reported is the median of the rounds, and in brackets the best round (on a shared
machine the best is the one least disturbed).
"""

import argparse
import asyncio
import gc
import json
import os
import statistics
import struct
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
GUESTS = os.path.join(REPO, "guests", "target", "wasm32-wasip2", "release")
ADDER = os.path.join(GUESTS, "adder.wasm")
PROVIDER = os.path.join(GUESTS, "bench_provider.wasm")
ADD_IFACE = "membrane-test:placement/math@0.1.0"
ECHO_IFACE = "membrane-bench:calls/api@0.1.0"
ADD = "membrane-test:placement/math#add"
ECHO = "membrane-bench:calls/api#echo"
KIB = "x" * 1024


def time_calls(f, calls):
    """ns per call of `f()`, after 1,000 calls to warm up."""
    for _ in range(1000):
        f()
    gc.disable()
    try:
        start = time.perf_counter_ns()
        for _ in range(calls):
            f()
        return (time.perf_counter_ns() - start) / calls
    finally:
        gc.enable()


def time_loads(load, loads):
    """ms per load (each to its first result), after one to warm up."""
    load()
    start = time.perf_counter_ns()
    for _ in range(loads):
        load()
    return (time.perf_counter_ns() - start) / loads / 1e6


# --- The Python floor: the loop and a Python function call, no plugin ---------------------


class Floor:
    name = "python-floor"

    def __init__(self, tmp):
        def add(a, b):
            return a + b

        def echo(s):
            return s

        self.add = lambda: add(41, 1)
        self.echo = lambda: echo(KIB)
        # The harness alone: the loop and the lambda every host's call sits in.
        self.loop = lambda: None

    def check(self):
        assert self.add() == 42 and self.echo() == KIB


# --- Membrane's Python package --------------------------------------------------------------


class MembranePy:
    name = "membrane-py"

    def __init__(self, tmp):
        import membrane

        self.membrane = membrane
        self.dir = os.path.join(tmp, "membrane")
        os.makedirs(self.dir)
        self.cache = os.path.join(tmp, "membrane-cache")
        # The calls' app: both components, as a manifest.
        self.manifest = os.path.join(self.dir, "membrane.toml")
        with open(self.manifest, "w") as f:
            f.write(
                f'[modules.adder]\ncomponent = "{ADDER}"\n\n'
                f'[modules.provider]\ncomponent = "{PROVIDER}"\n'
            )
        # The loads' app: the adder alone.
        self.adder_manifest = os.path.join(self.dir, "adder.toml")
        with open(self.adder_manifest, "w") as f:
            f.write(f'[modules.adder]\ncomponent = "{ADDER}"\n')
        self.rt = membrane.Runtime(cache_dir=self.cache)
        self.app = self.rt.load(self.manifest)
        app = self.app
        self.add = lambda: app.call("adder", ADD, 41, 1)
        self.echo = lambda: app.call("provider", ECHO, KIB)
        # The native method under the package's `App.call` (a Python function), called
        # directly: what the wrapper costs.
        native = getattr(app, "_native", None)
        if native is not None:
            self.native_add = lambda: native.call("adder", ADD, 41, 1)
            self.native_echo = lambda: native.call("provider", ECHO, KIB)

    def check(self):
        assert self.add() == 42, self.add()
        assert self.echo() == KIB

    def time_async(self, which, calls):
        """ns per call of one `await app.call_async(...)` after another in a coroutine."""
        app = self.app
        if which == "add":
            args = ("adder", ADD, 41, 1)
        else:
            args = ("provider", ECHO, KIB)

        async def run():
            assert await app.call_async(*args) in (42, KIB)
            for _ in range(1000):
                await app.call_async(*args)
            gc.disable()
            try:
                start = time.perf_counter_ns()
                for _ in range(calls):
                    await app.call_async(*args)
                return (time.perf_counter_ns() - start) / calls
            finally:
                gc.enable()

        return asyncio.run(run())

    def load(self):
        app = self.rt.load(self.adder_manifest)
        assert app.call("adder", ADD, 41, 1) == 42

    def load_only(self):
        self.rt.load(self.adder_manifest)


# --- Extism's Python SDK --------------------------------------------------------------------


class ExtismPy:
    name = "extism"

    def __init__(self, tmp, wasm):
        import extism

        self.extism = extism
        self.wasm = wasm
        plugin = extism.Plugin(wasm, wasi=False)
        self.plugin = plugin
        pack = struct.Struct("<II").pack
        unpack = struct.Struct("<I").unpack

        def decode(buf):
            return bytes(buf).decode()

        self.add = lambda: unpack(plugin.call("add", pack(41, 1)))[0]
        self.add_json = lambda: json.loads(
            plugin.call("add_json", json.dumps({"a": 41, "b": 1}))
        )
        self.echo = lambda: plugin.call("echo", KIB, parse=decode)

    def check(self):
        assert self.add() == 42
        assert self.add_json() == 42
        assert self.echo() == KIB

    def load(self):
        # A path: the SDK reads the file. Extism compiles through wasmtime's cache
        # (EXTISM_CACHE_CONFIG), so every load after the first is a cache hit.
        p = self.extism.Plugin(self.wasm, wasi=False)
        assert struct.unpack("<I", p.call("add", struct.pack("<II", 41, 1)))[0] == 42

    def load_only(self):
        self.extism.Plugin(self.wasm, wasi=False)


# --- wasmtime-py ----------------------------------------------------------------------------


class WasmtimePy:
    name = "wasmtime-py"

    def __init__(self, tmp):
        import wasmtime
        from wasmtime.component import Component, Linker

        self.wasmtime = wasmtime
        self.Component = Component
        self.engine = wasmtime.Engine()
        self.linker = Linker(self.engine)
        self.linker.add_wasip2()
        self.add = self._func(Component.from_file(self.engine, ADDER), ADD_IFACE, "add", 41, 1)
        self.echo = self._func(
            Component.from_file(self.engine, PROVIDER), ECHO_IFACE, "echo", KIB
        )
        # The loads' precompiled artifact: `Component.serialize`, written once.
        self.cwasm = os.path.join(tmp, "adder.cwasm")
        with open(self.cwasm, "wb") as f:
            f.write(Component.from_file(self.engine, ADDER).serialize())

    def _instance(self, component):
        store = self.wasmtime.Store(self.engine)
        store.set_wasi(self.wasmtime.WasiConfig())
        return store, self.linker.instantiate(store, component)

    def _func(self, component, iface, name, *args):
        store, inst = self._instance(component)
        ei = inst.get_export_index(store, iface)
        f = inst.get_func(store, inst.get_export_index(store, name, ei))
        return lambda: f(store, *args)

    def check(self):
        assert self.add() == 42
        assert self.echo() == KIB

    def load(self):
        c = self.Component.deserialize_file(self.engine, self.cwasm)
        assert self._func(c, ADD_IFACE, "add", 41, 1)() == 42

    def load_only(self):
        self.Component.deserialize_file(self.engine, self.cwasm)


def busy():
    """Whether a compiler or linker runs on this machine (another build)."""
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                with open(f"/proc/{pid}/comm") as f:
                    if f.read().strip() in ("rustc", "cc1", "cc1plus", "ld", "ld.lld", "maturin"):
                        return True
            except OSError:
                pass
    return False


def wait_quiet(limit):
    """Waits up to `limit` seconds until no build has run for 10 s."""
    deadline = time.monotonic() + limit
    quiet_since = time.monotonic()
    while time.monotonic() < deadline:
        if busy():
            quiet_since = time.monotonic()
        elif time.monotonic() - quiet_since >= 10:
            return
        time.sleep(1)


# --- The run --------------------------------------------------------------------------------


def rust_round(bench, calls, loads):
    out = subprocess.run(
        [bench, "--calls", str(calls), "--rounds", "1", "--loads", str(loads)],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    figures = {}
    for line in out.splitlines():
        name, _round, value = line.split()
        figures[name] = float(value)
    return figures


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rust-bench", help="the embedcalls bench binary")
    ap.add_argument("--extism-wasm", required=True)
    ap.add_argument("--calls", type=int, default=20000)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--loads", type=int, default=20)
    ap.add_argument("--json", help="write every round's figures here")
    ap.add_argument(
        "--wait-quiet",
        type=float,
        default=0,
        help="before each round, wait up to this many seconds for no build (rustc, cc1, ld) to run for 10 s",
    )
    ap.add_argument(
        "--hosts",
        default="floor,membrane,extism,wasmtime",
        help="which Python hosts (comma-separated)",
    )
    a = ap.parse_args()
    wanted = a.hosts.split(",")

    tmp = tempfile.mkdtemp(prefix="bench-python-")
    hosts = []
    if "floor" in wanted:
        hosts.append(Floor(tmp))
    if "membrane" in wanted:
        hosts.append(MembranePy(tmp))
    if "extism" in wanted:
        hosts.append(ExtismPy(tmp, a.extism_wasm))
    if "wasmtime" in wanted:
        hosts.append(WasmtimePy(tmp))
    for h in hosts:
        h.check()

    rounds = []
    loadavgs = []
    for r in range(1, a.rounds + 1):
        if a.wait_quiet:
            wait_quiet(a.wait_quiet)
        loadavgs.append(os.getloadavg()[0])
        fig = {}
        if a.rust_bench:
            fig.update(rust_round(a.rust_bench, a.calls, a.loads))
        for h in hosts:
            fig[f"{h.name}-add"] = time_calls(h.add, a.calls)
            fig[f"{h.name}-echo"] = time_calls(h.echo, a.calls)
            if isinstance(h, Floor):
                fig["python-loop"] = time_calls(h.loop, a.calls)
            if isinstance(h, ExtismPy):
                fig[f"{h.name}-add-json"] = time_calls(h.add_json, a.calls)
            if isinstance(h, MembranePy) and hasattr(h, "native_add"):
                fig[f"{h.name}-native-add"] = time_calls(h.native_add, a.calls)
                fig[f"{h.name}-native-echo"] = time_calls(h.native_echo, a.calls)
            if isinstance(h, MembranePy):
                fig[f"{h.name}-async-add"] = h.time_async("add", a.calls)
                fig[f"{h.name}-async-echo"] = h.time_async("echo", a.calls)
            if hasattr(h, "load"):
                fig[f"{h.name}-load"] = time_loads(h.load, a.loads)
                fig[f"{h.name}-load-only"] = time_loads(h.load_only, a.loads)
        rounds.append(fig)
        print(f"round {r} (load average {loadavgs[-1]:.2f}): " + ", ".join(f"{k} {v:.1f}" for k, v in fig.items()), flush=True)

    med = {k: statistics.median(f[k] for f in rounds) for k in rounds[0]}
    best = {k: min(f[k] for f in rounds) for k in rounds[0]}
    if a.json:
        with open(a.json, "w") as f:
            json.dump(
                {"rounds": rounds, "median": med, "best": best, "loadavg": loadavgs,
                 "calls": a.calls, "loads": a.loads},
                f,
                indent=1,
            )

    def g(k, fmt="{:,.0f}"):
        if k not in med:
            return "-"
        return f"{fmt.format(med[k])} ({fmt.format(best[k])})"

    print()
    print(
        f"load average (1 min) at each round's start: {', '.join(f'{x:.2f}' for x in loadavgs)}; "
        f"median (best) of {a.rounds} rounds, {a.calls} calls and {a.loads} loads each"
    )
    print()
    print("| host | add (ns/call) | echo 1 KiB (ns/call) | load from cache to first result (ms) | load only (ms) |")
    print("|---|---|---|---|---|")
    rows = [
        ("Membrane Rust, `App::call_blocking` with `Val`", "rust-val-add", "rust-val-echo", None, None),
        ("Membrane Rust, `Typed::call_blocking`", "rust-typed-add", "rust-typed-echo", None, "rust-load"),
        ("Membrane Rust, `App::call` with `Val` awaited (current-thread tokio)", "rust-async-add", "rust-async-echo", None, None),
        ("Membrane Python, `app.call`", "membrane-py-add", "membrane-py-echo", "membrane-py-load", "membrane-py-load-only"),
        ("Membrane Python, `app._native.call` (without the package's Python `App.call`)", "membrane-py-native-add", "membrane-py-native-echo", None, None),
        ("Membrane Python, `await app.call_async`", "membrane-py-async-add", "membrane-py-async-echo", None, None),
        ("Extism Python SDK (add: 8 bytes in, 4 out)", "extism-add", "extism-echo", "extism-load", "extism-load-only"),
        ("Extism Python SDK, add as JSON", "extism-add-json", None, None, None),
        ("wasmtime-py `wasmtime.component`", "wasmtime-py-add", "wasmtime-py-echo", "wasmtime-py-load", "wasmtime-py-load-only"),
        ("Python floor: the loop and a Python function doing the work", "python-floor-add", "python-floor-echo", None, None),
        ("Python harness: the loop and an empty lambda (in every Python figure)", "python-loop", "python-loop", None, None),
    ]
    for label, add, echo, load, load_only in rows:
        cells = [g(add) if add else "-", g(echo) if echo else "-"]
        cells.append(g(load, "{:.2f}") if load else "-")
        cells.append(g(load_only, "{:.2f}") if load_only else "-")
        if any(c != "-" for c in cells):
            print(f"| {label} | " + " | ".join(cells) + " |")
    print()
    # Ratios of the medians, and of the best rounds in brackets.
    def ratio(x, y):
        if x not in med or y not in med:
            return None
        return f"{med[x] / med[y]:.2f}x ({best[x] / best[y]:.2f}x)"

    for op in ("add", "echo"):
        for x, y, what in [
            (f"membrane-py-{op}", f"rust-val-{op}", "Membrane Python / Membrane Rust Val"),
            (f"membrane-py-{op}", f"rust-typed-{op}", "Membrane Python / Membrane Rust typed"),
            (f"membrane-py-native-{op}", f"rust-val-{op}", "Membrane Python native method / Membrane Rust Val"),
            (f"membrane-py-{op}", f"extism-{op}", "Membrane Python / Extism Python"),
            (f"membrane-py-{op}", f"wasmtime-py-{op}", "Membrane Python / wasmtime-py"),
            (f"membrane-py-async-{op}", f"rust-async-{op}", "Membrane Python async / Rust async"),
        ]:
            r = ratio(x, y)
            if r:
                print(f"{op}: {what} = {r}")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
