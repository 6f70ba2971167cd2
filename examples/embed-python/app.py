"""A Python application that runs plugins written in Rust, Python and JavaScript under
limits: the Python twin of runtime/membrane/examples/plugins/main.rs.

It loads examples/plugins/membrane.toml (one plugin per language, each allowed one
environment variable and nothing else, 64 MiB of memory and 1 s per call), calls each
plugin's functions, and shows the memory limit and the timeout denying. See README.md.

    python examples/embed-python/app.py ["some text"]
"""

import sys
import time
from pathlib import Path

import membrane

#: The plugins, by module name in the manifest.
PLUGINS = ["rust", "python", "js"]
#: The interface every plugin exports (examples/plugins/wit/plugin.wit).
TEXT = "membrane-examples:plugin/text@0.1.0"

MANIFEST = Path(__file__).resolve().parent.parent / "plugins" / "membrane.toml"


def main() -> int:
    text = sys.argv[1] if len(sys.argv) > 1 else "plugins in the languages their authors use"
    # Compiled plugins are kept in the user's cache, so later runs start at once.
    runtime = membrane.Runtime(cache_dir=membrane.default_cache_dir())
    try:
        app = runtime.load(MANIFEST)
    except membrane.Error as e:
        print(f"error: cannot load {MANIFEST}: {e}", file=sys.stderr)
        return 1

    for module in PLUGINS:

        def call(func: str, *args: object) -> object:
            return app.call(module, f"{TEXT}#{func}", *args)

        try:
            name = call("name")
            out = call("transform", text)
            stats = call("stats", text)  # a WIT record: a dict
            granted = call("env", "PLUGIN_GREETING")  # option<string>: str or None
            home = call("env", "HOME")
        except membrane.Error as e:
            print(f"error: module {module}: {e}", file=sys.stderr)
            return 1
        print(f"{module}: {name}")
        print(f"  transform: {out}")
        print(f"  stats:     {stats['chars']} chars, {stats['words']} words, {stats['bytes']} bytes")
        print(f"  env PLUGIN_GREETING (granted): {granted!r}")
        print(f"  env HOME (not granted):        {home!r}")

        try:
            mb = call("allocate", 128)
            print(f"  allocate 128 MiB: unexpectedly allowed ({mb})")
        except membrane.MemoryLimit:
            print("  allocate 128 MiB: refused, over the 64MiB limit")
        except membrane.Error as e:
            print(f"  allocate 128 MiB: failed: {e}")

        start = time.monotonic()
        try:
            call("spin")
            print("  spin: unexpectedly returned")
        except membrane.Timeout:
            print(f"  spin: stopped at the 1s timeout ({time.monotonic() - start:.1f}s)")
        except membrane.Error as e:
            print(f"  spin: failed: {e}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
