#!/usr/bin/env bash
# Alternates two `membrane` binaries serving guests/http_hello under `wrk -t2 -c64`, to
# compare a change of the serving path with what it replaces; prints req/s, p50, p99 and the
# server's CPU time per request (user + system, from /proc) for each run.
#
#   scripts/bench-serve-ab.sh OLD_BINARY NEW_BINARY      # ROUNDS=3 DURATION=10s by default
#
# Build each binary with `cargo build --release -p membrane` at its commit (a worktree with
# its own CARGO_TARGET_DIR for the old one), and the guest with the tests or
# `(cd guests && cargo build --release --target wasm32-wasip2 -p http_hello)`.
set -euo pipefail
OLD=$1; NEW=$2; ROUNDS=${ROUNDS:-3}; DURATION=${DURATION:-10s}
cd "$(dirname "$0")/.."
wasm=$PWD/guests/target/wasm32-wasip2/release/http_hello.wasm
[ -f "$wasm" ] || { echo "build guests/http_hello first (see above)" >&2; exit 1; }
command -v wrk >/dev/null || { echo "wrk is missing: apt-get install wrk" >&2; exit 1; }
work=$(mktemp -d)
cat >"$work/hello.toml" <<TOML
[app.http]
listen = "127.0.0.1:18091"
routes = { "/" = "hello" }
[modules.hello]
component = "$wasm"
TOML
cpu() { awk '{print $14 + $15}' "/proc/$1/stat"; }
run() {
  local bin=$1 label=$2
  MEMBRANE_CACHE_DIR=$work/cache MEMBRANE_RUNTIME_DIR=$work/run "$bin" serve "$work/hello.toml" 2>/dev/null &
  local pid=$!
  for _ in $(seq 200); do (exec 3<>/dev/tcp/127.0.0.1/18091) 2>/dev/null && break; sleep 0.1; done
  wrk -t2 -c64 -d2s http://127.0.0.1:18091/ >/dev/null
  local before; before=$(cpu $pid)
  local out; out=$(wrk -t2 -c64 -d"$DURATION" --latency http://127.0.0.1:18091/)
  local after; after=$(cpu $pid)
  kill $pid; wait $pid 2>/dev/null || true
  local rps p50 p99 total
  rps=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
  p50=$(awk '$1=="50%" {print $2}' <<<"$out")
  p99=$(awk '$1=="99%" {print $2}' <<<"$out")
  total=$(awk '/requests in/ {print $1}' <<<"$out")
  python3 -c "print(f'$label req/s={float($rps):,.0f} p50=$p50 p99=$p99 cpu/req={($after-$before)*10000/$total:.1f}us')"
}
for i in $(seq "$ROUNDS"); do
  run "$OLD" "old[$i]"
  run "$NEW" "new[$i]"
done
rm -rf "$work"
