#!/usr/bin/env bash
# WASI 0.3 serving benchmarks: `membrane serve` against `wasmtime serve` 48 (its defaults: a
# p3 instance takes up to 16 requests at once and 128 in all), with wrk, on 127.0.0.1.
#
#   scripts/bench-p3.sh            # the figures of BENCHMARKS.md's WASI 0.3 section
#   ONLY=hello ROUNDS=4 scripts/bench-p3.sh   # one section (hello, wait, echo, memory)
#
# Needs: wrk and hey (apt-get install wrk hey), python3, and `wasmtime` 48.0.8 on PATH or in
# $WASMTIME (cargo install wasmtime-cli --version 48.0.8 --locked, outside the project).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
DURATION=${DURATION:-10s}
ROUNDS=${ROUNDS:-2}
ONLY=${ONLY:-}
want() { [ -z "$ONLY" ] || [ "$ONLY" = "$1" ]; }
WASMTIME=${WASMTIME:-$(command -v wasmtime || echo "$HOME/.cargo/bin/wasmtime")}

command -v wrk >/dev/null || { echo "wrk is missing: apt-get install wrk" >&2; exit 1; }
command -v hey >/dev/null || { echo "hey is missing: apt-get install hey" >&2; exit 1; }
[ -x "$WASMTIME" ] || { echo "wasmtime 48 is missing: cargo install wasmtime-cli --version 48.0.8 --locked" >&2; exit 1; }

cargo build --release -q -p membrane
(cd guests && cargo build --release -q --target wasm32-wasip2 -p p3_hello -p p3_http_probe -p http_hello -p http_probe)
wasm=$root/guests/target/wasm32-wasip2/release
membrane=${CARGO_TARGET_DIR:-$root/target}/release/membrane
work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT

# manifest NAME COMPONENT LIMITS: one module `m` routed at / on port 18091, admin on 19091.
manifest() {
  cat >"$work/$1.toml" <<TOML
[app.http]
listen = "127.0.0.1:18091"
routes = { "/" = "m" }
[app.admin]
listen = "127.0.0.1:19091"
[modules.m]
component = "$wasm/$2.wasm"
limits = { $3 }
TOML
}
manifest p3hello p3_hello 'concurrency = 16'
manifest p2hello http_hello 'instances = 32'
manifest p3wait p3_http_probe 'concurrency = 16, instances = 64, queue = 1024, body = "16MiB"'
manifest p2wait http_probe 'instances = 64, queue = 1024, body = "16MiB"'

. scripts/http-load.sh
serve() { local port=$1; shift; start env "$@"; wait_port "$port"; curl -sf "http://127.0.0.1:$port/" >/dev/null || true; }
# The most instances of module `m` seen in membrane's /status while a command runs.
peak_instances() {
  local peak=0 n
  "$@" >"$work/out" &
  local job=$!
  while kill -0 "$job" 2>/dev/null; do
    n=$(curl -sf http://127.0.0.1:19091/status | python3 -c 'import json,sys; m=json.load(sys.stdin)["modules"]["m"]; print(m["busy"] + m["idle"])' 2>/dev/null || echo 0)
    [ "$n" -gt "$peak" ] && peak=$n
    sleep 0.2
  done
  wait "$job"
  echo "$(cat "$work/out") instances $peak"
}

echo "machine: $(nproc) cores, $(uname -r); wrk -t2 -c64 -d$DURATION --latency; columns: req/s p50 p99 server-cpu-us/req"

# 1. Hello: the same p3 component under both servers, and the p2 hello under membrane.
want hello && for round in $(seq "$ROUNDS"); do
  serve 18092 "$WASMTIME" serve --addr 127.0.0.1:18092 -Scli "$wasm/p3_hello.wasm"
  load http://127.0.0.1:18092/ >/dev/null
  echo "p3 hello  wasmtime serve 48           : $(load http://127.0.0.1:18092/)"
  stop_all
  serve 18091 MEMBRANE_LOG=info "$membrane" serve "$work/p3hello.toml"
  load http://127.0.0.1:18091/ >/dev/null
  echo "p3 hello  membrane serve              : $(load http://127.0.0.1:18091/)"
  stop_all
  # As wasmtime serve logs: nothing per request.
  serve 18091 MEMBRANE_LOG=off "$membrane" serve "$work/p3hello.toml"
  load http://127.0.0.1:18091/ >/dev/null
  echo "p3 hello  membrane serve (log off)    : $(load http://127.0.0.1:18091/)"
  stop_all
  serve 18091 MEMBRANE_LOG=info "$membrane" serve "$work/p2hello.toml"
  load http://127.0.0.1:18091/ >/dev/null
  echo "p2 hello  membrane serve              : $(load http://127.0.0.1:18091/)"
  stop_all
done

# 2. A handler that waits 10 ms: throughput with 64 connections, and instances used.
want wait && for round in $(seq "$ROUNDS"); do
  serve 18092 "$WASMTIME" serve --addr 127.0.0.1:18092 -Scli "$wasm/p3_http_probe.wasm"
  echo "wait 10ms wasmtime serve 48 (p3)      : $(load 'http://127.0.0.1:18092/sleep?ms=10')"
  stop_all
  serve 18091 MEMBRANE_LOG=info "$membrane" serve "$work/p3wait.toml"
  echo "wait 10ms membrane serve (p3, 16/inst): $(peak_instances load 'http://127.0.0.1:18091/sleep?ms=10')"
  stop_all
  serve 18091 MEMBRANE_LOG=info "$membrane" serve "$work/p2wait.toml"
  echo "wait 10ms membrane serve (p2)         : $(peak_instances load 'http://127.0.0.1:18091/sleep?ms=10')"
  stop_all
done

# 3. Streaming echo: 1 MiB bodies in and out, 8 clients.
head -c $((1 << 20)) /dev/zero | tr '\0' 'a' >"$work/body"
echo_run() { hey -n 400 -c 8 -m POST -D "$work/body" "$1" | awk '/Requests\/sec/ {printf "%s req/s = %.0f MiB/s each way\n", $2, $2}'; }
want echo && for round in $(seq "$ROUNDS"); do
  serve 18092 "$WASMTIME" serve --addr 127.0.0.1:18092 -Scli "$wasm/p3_http_probe.wasm"
  echo "echo 1MiB wasmtime serve 48           : $(echo_run http://127.0.0.1:18092/echo)"
  stop_all
  serve 18091 MEMBRANE_LOG=info "$membrane" serve "$work/p3wait.toml"
  echo "echo 1MiB membrane serve (p3)         : $(echo_run http://127.0.0.1:18091/echo)"
  stop_all
done

# 4. Memory: 1,000 requests waiting 3 s at once.
want memory || exit 0
serve 18092 "$WASMTIME" serve --addr 127.0.0.1:18092 -Scli "$wasm/p3_http_probe.wasm"
echo "wasmtime serve 48 (p3):  $(python3 "$root/scripts/waiting-requests.py" 1000 18092 "${pids[0]}" '/sleep?ms=3000')"
stop_all
serve 18091 MEMBRANE_LOG=info "$membrane" serve "$work/p3wait.toml"
echo "membrane serve (p3):     $(python3 "$root/scripts/waiting-requests.py" 1000 18091 "${pids[0]}" '/sleep?ms=3000')"
stop_all
