#!/usr/bin/env bash
# HTTP benchmarks of `membrane serve` against `wasmtime serve` 48, with wrk, on 127.0.0.1.
#
#   scripts/bench-http.sh            # all figures of BENCHMARKS.md's `membrane serve` section
#
# Needs: wrk (apt-get install wrk), python3, and `wasmtime` 48.0.8 with `serve` on PATH or in
# $WASMTIME (cargo install wasmtime-cli --version 48.0.8 --locked, outside the project).
# Every figure is measured in the same run as its peer. Each run: wrk -t2 -c64 -d${DURATION}.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
DURATION=${DURATION:-10s}
WASMTIME=${WASMTIME:-$(command -v wasmtime || echo /work/tools/wasmtime/bin/wasmtime)}

command -v wrk >/dev/null || { echo "wrk is missing: apt-get install wrk" >&2; exit 1; }
[ -x "$WASMTIME" ] || { echo "wasmtime 48 is missing: cargo install wasmtime-cli --version 48.0.8 --locked" >&2; exit 1; }

cargo build --release -q -p membrane
(cd guests && cargo build --release -q --target wasm32-wasip2 -p http_hello -p http_relay -p bench_driver -p bench_provider)
wasm=$root/guests/target/wasm32-wasip2/release
membrane=$root/target/release/membrane
work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT

cat >"$work/hello.toml" <<TOML
[app.http]
listen = "127.0.0.1:18081"
routes = { "/" = "hello" }
[modules.hello]
component = "$wasm/http_hello.wasm"
TOML
cat >"$work/linked.toml" <<TOML
[app.http]
listen = "127.0.0.1:18083"
routes = { "/" = "relay" }
[modules.relay]
component = "$wasm/http_relay.wasm"
links = { "membrane-bench:calls/driver" = "driver" }
[modules.driver]
component = "$wasm/bench_driver.wasm"
links = { "membrane-bench:calls/api" = "provider", "membrane-bench:calls/res" = "provider" }
[modules.provider]
component = "$wasm/bench_provider.wasm"
TOML

. scripts/http-load.sh

echo "machine: $(nproc) cores, $(uname -r); wrk -t2 -c64 -d$DURATION --latency; columns: req/s p50 p99 server-cpu-us/req"
# serve PORT [VAR=VALUE...] CMD...: starts a server under env, waits for its port, warms it
# with one load of DURATION (the shared serve warms for 2 s).
serve() { local port=$1; shift; start env "$@"; wait_port "$port"; curl -sf "http://127.0.0.1:$port/" >/dev/null; load "http://127.0.0.1:$port/" >/dev/null; }

# 1. The same hello component under wasmtime serve and membrane serve (logs at info, metrics on).
for round in 1 2; do
  serve 18082 "$WASMTIME" serve --addr 127.0.0.1:18082 -Scli "$wasm/http_hello.wasm"
  echo "hello  wasmtime serve 48        : $(load http://127.0.0.1:18082/)"
  stop_all
  serve 18081 MEMBRANE_LOG=info "$membrane" serve "$work/hello.toml"
  echo "hello  membrane serve (info)    : $(load http://127.0.0.1:18081/)"
  stop_all
done

# 2. What logging at info and metrics cost: the same server with both off, alternated.
for round in 1 2 3; do
  serve 18081 MEMBRANE_LOG=off MEMBRANE_NO_METRICS=1 "$membrane" serve "$work/hello.toml"
  echo "hello  membrane serve (off)     : $(load http://127.0.0.1:18081/)"
  stop_all
  serve 18081 MEMBRANE_LOG=info "$membrane" serve "$work/hello.toml"
  echo "hello  membrane serve (info)    : $(load http://127.0.0.1:18081/)"
  stop_all
done

# 3. A request that crosses two links (relay -> driver -> provider) against hello, alternated.
for round in 1 2 3 4; do
  serve 18083 MEMBRANE_LOG=info "$membrane" serve "$work/linked.toml"
  echo "linked membrane serve (info)    : $(load http://127.0.0.1:18083/)"
  stop_all
  serve 18081 MEMBRANE_LOG=info "$membrane" serve "$work/hello.toml"
  echo "hello  membrane serve (info)    : $(load http://127.0.0.1:18081/)"
  stop_all
done

# 4. Idle keep-alive connections (each made one request), while the hello server runs.
serve 18081 MEMBRANE_LOG=info "$membrane" serve "$work/hello.toml"
python3 "$root/scripts/idle-connections.py" 1000 18081 "${pids[0]}"
stop_all
