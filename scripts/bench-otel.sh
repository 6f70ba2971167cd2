#!/usr/bin/env bash
# What telemetry costs (issue 27), with wrk on 127.0.0.1 against `membrane serve` of the
# hello handler (http_hello, WASI 0.2):
#   off   MEMBRANE_LOG=off, no export
#   info  the default log (info: a request span per request), no export
#   otlp  the default log and OTLP export of every request (always_on sampler) to a local
#         OTLP/HTTP endpoint (scripts/otlp-sink.py)
#   otlp10  the same with one trace in ten sampled (traceidratio 0.1; metrics still count
#         every request)
# and the added cost per linked call of trace propagation into a worker process
# (`placement = "process"`): `membrane call` of the bench driver calling the provider N
# times, export off against on.
#
#   scripts/bench-otel.sh            # ROUNDS=2 DURATION=8s N=200000 by default
#
# Needs: wrk (apt-get install wrk), python3. Release build; run on a quiet machine.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
DURATION=${DURATION:-8s}
ROUNDS=${ROUNDS:-2}
N=${N:-200000}
command -v wrk >/dev/null || { echo "wrk is missing: apt-get install wrk" >&2; exit 1; }

cargo build --release -q -p membrane
(cd guests && cargo build --release -q --target wasm32-wasip2 -p http_hello -p bench_driver -p bench_provider)
wasm=$root/guests/target/wasm32-wasip2/release
membrane=${CARGO_TARGET_DIR:-$root/target}/release/membrane
work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT

cat >"$work/hello.toml" <<TOML
[app.http]
listen = "127.0.0.1:18093"
routes = { "/" = "m" }
[modules.m]
component = "$wasm/http_hello.wasm"
limits = { instances = 32 }
TOML
cat >"$work/linked.toml" <<TOML
[modules.driver]
component = "$wasm/bench_driver.wasm"
links = { "membrane-bench:calls/api" = "provider", "membrane-bench:calls/res" = "provider" }
limits = { timeout = "10m" }
[modules.provider]
component = "$wasm/bench_provider.wasm"
placement = "process"
TOML

python3 scripts/otlp-sink.py 14318 & pids+=($!)
sink="http://127.0.0.1:14318"
wait_port() { for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/"$1") 2>/dev/null && return 0; sleep 0.1; done; echo "port $1 never opened" >&2; exit 1; }
wait_port 14318
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

# serve CONFIG: starts membrane serve, loads it, prints "req/s p99 cpu-us/req".
serve() {
  local config=$1 envs=()
  case $config in
    off) envs=(MEMBRANE_LOG=off) ;;
    info) envs=() ;;
    otlp) envs=(OTEL_EXPORTER_OTLP_ENDPOINT=$sink OTEL_TRACES_SAMPLER=always_on OTEL_BSP_SCHEDULE_DELAY=200) ;;
    otlp10) envs=(OTEL_EXPORTER_OTLP_ENDPOINT=$sink OTEL_TRACES_SAMPLER=traceidratio OTEL_TRACES_SAMPLER_ARG=0.1 OTEL_BSP_SCHEDULE_DELAY=200) ;;
  esac
  env "${envs[@]}" "$membrane" serve "$work/hello.toml" 2>"$work/serve.log" & local pid=$!
  wait_port 18093
  wrk -t2 -c64 -d2s http://127.0.0.1:18093/ >/dev/null
  local before after out
  before=$(cpu_ticks "$pid")
  out=$(wrk -t2 -c64 -d"$DURATION" --latency http://127.0.0.1:18093/)
  after=$(cpu_ticks "$pid")
  kill "$pid"; wait "$pid" 2>/dev/null || true
  local rps p99 n
  rps=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
  p99=$(awk '$1 == "99%" {print $2}' <<<"$out")
  n=$(awk '/requests in/ {print $1}' <<<"$out")
  local hz; hz=$(getconf CLK_TCK)
  printf "%-5s %10s req/s  p99 %-8s  %6.1f us CPU/req\n" "$config" "$rps" "$p99" \
    "$(echo "($after - $before) * 1000000 / $hz / $n" | bc -l)"
}

echo "== hello: wrk -t2 -c64 -d$DURATION, $ROUNDS rounds"
for r in $(seq "$ROUNDS"); do
  for c in off info otlp otlp10; do serve "$c"; done
done

# linked N CONFIG: ns per linked call into the worker (N calls minus one, over N - 1).
linked() {
  local n=$1 config=$2 envs=(MEMBRANE_LOG=off)
  [ "$config" = otlp ] && envs+=(OTEL_EXPORTER_OTLP_ENDPOINT=$sink OTEL_TRACES_SAMPLER=always_on)
  [ "$config" = otlp10 ] && envs+=(OTEL_EXPORTER_OTLP_ENDPOINT=$sink OTEL_TRACES_SAMPLER=traceidratio OTEL_TRACES_SAMPLER_ARG=0.1)
  local t0 t1
  t0=$(date +%s%N)
  env "${envs[@]}" "$membrane" call "$work/linked.toml" driver 'membrane-bench:calls/driver#loop-inc' "$n" >/dev/null 2>"$work/call.log"
  t1=$(date +%s%N)
  echo $(( t1 - t0 ))
}
echo "== linked calls into a process worker: $N calls, ns per call (whole run minus a 1-call run, over N-1)"
for r in $(seq "$ROUNDS"); do
  for c in off otlp otlp10; do
    one=$(linked 1 "$c"); all=$(linked "$N" "$c")
    printf "%-5s %8.0f ns/call\n" "$c" "$(echo "($all - $one) / ($N - 1)" | bc -l)"
  done
done
