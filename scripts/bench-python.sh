#!/usr/bin/env bash
# Calls from Python (issue 29): the same plugin work through Membrane's Python package,
# Extism's Python host SDK (extism 1.1.1) and wasmtime-py (wasmtime 51.0.0), with
# Membrane's Rust calls of it (the `embedcalls` bench) as the baseline, in one run with the
# hosts interleaved in every round (benches/python/bench.py says what each figure includes).
#
#   scripts/bench-python.sh          # ROUNDS=5 CALLS=20000 LOADS=20 by default
#
# Before each round it waits (up to WAIT_QUIET=300 seconds) until no compiler or linker has
# run for 10 s: on a machine shared with other builds the rounds then run between them.
#
# Builds: the embedcalls bench (and with it the guests, adder and bench_provider among them,
# into guests/target), the Extism plugin (benches/python/extism-plugin, for
# wasm32-unknown-unknown), and Membrane's Python package (a release build with maturin
# through pip: the first one takes 10-15 minutes on 2 cores). Everything goes to $CARGO_TARGET_DIR (default: target/) and the
# venv to $VENV (default: $CARGO_TARGET_DIR/bench-python-venv). Run on a quiet machine.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
ROUNDS=${ROUNDS:-5}
CALLS=${CALLS:-20000}
LOADS=${LOADS:-20}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$root/target}
VENV=${VENV:-$CARGO_TARGET_DIR/bench-python-venv}

echo "== building the Rust baseline (its build builds the guests too), the Extism plugin" >&2
# The bench depends on membrane-test-artifacts, whose build script builds the guests
# (adder and bench_provider among them) into guests/target, where bench.py reads them.
rust_bench=$(cargo bench -q -p membrane --bench embedcalls --no-run --message-format=json \
    | python3 -c 'import json, sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m["target"]["name"] == "embedcalls" and m.get("executable"):
        print(m["executable"])')
(
    cd benches/python/extism-plugin
    rustup target list --installed | grep -qx wasm32-unknown-unknown \
        || rustup target add wasm32-unknown-unknown
    CARGO_TARGET_DIR=$CARGO_TARGET_DIR/extism-plugin \
        cargo build --release -q --locked --target wasm32-unknown-unknown
)
extism_wasm=$CARGO_TARGET_DIR/extism-plugin/wasm32-unknown-unknown/release/extism_bench_plugin.wasm

echo "== the venv: extism 1.1.1, wasmtime 51.0.0, membrane (./runtime/python)" >&2
[ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
"$VENV/bin/pip" install -q extism==1.1.1 wasmtime==51.0.0
# MEMBRANE_PY=path installs the package from another checkout (a clean clone of a commit
# while the work tree changes); SKIP_MEMBRANE_INSTALL=1 keeps the installed one.
if [ "${SKIP_MEMBRANE_INSTALL:-0}" != 1 ]; then
    "$VENV/bin/pip" install -q --force-reinstall --no-deps "${MEMBRANE_PY:-./runtime/python}"
fi

# A user's default: with RUST_BACKTRACE=1 (set in some shells) every error that a host
# creates captures a backtrace, even one it discards; Extism's calls create some.
unset RUST_BACKTRACE RUST_LIB_BACKTRACE

# Extism compiles through wasmtime's cache; this run's own directory, so that loads after
# the first are hits of this run and nothing else.
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
printf '[cache]\ndirectory = "%s"\n' "$work/extism-cache" >"$work/extism-cache.toml"
export EXTISM_CACHE_CONFIG=$work/extism-cache.toml

echo "== running: $ROUNDS rounds, $CALLS calls, $LOADS loads; $(uptime)" >&2
"$VENV/bin/python" benches/python/bench.py --rust-bench "$rust_bench" \
    --extism-wasm "$extism_wasm" --rounds "$ROUNDS" --calls "$CALLS" --loads "$LOADS" \
    --json "$CARGO_TARGET_DIR/bench-python.json" --wait-quiet "${WAIT_QUIET:-300}" \
    ${HOSTS:+--hosts "$HOSTS"}
echo "== $(uptime)" >&2
