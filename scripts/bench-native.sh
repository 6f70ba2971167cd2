#!/usr/bin/env bash
# `membrane serve` against its native floor (issue 30): the same hyper stack with no sandbox
# (runtime/membrane/benches/native_http.rs) answering what the guest answers (200,
# text/plain, "hello\n"), and `membrane serve` of guests/http_hello, alternated under the
# same load (wrk -t2 -c64 on 127.0.0.1). Prints req/s, p50, p99 and the server's CPU per
# request for each, and the ratio of requests per second in each round.
#
#   CARGO_TARGET_DIR=... ROUNDS=3 DURATION=8s scripts/bench-native.sh
#
# BASELINE=/path/to/an/older/membrane adds that binary to every round (same load, same
# manifest), for a before/after from one run.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
DURATION=${DURATION:-8s}
ROUNDS=${ROUNDS:-3}
target=${CARGO_TARGET_DIR:-$root/target}
command -v wrk >/dev/null || { echo "wrk is missing: apt-get install wrk" >&2; exit 1; }

cargo build --release -q -p membrane
cargo bench -q -p membrane --bench native_http --no-run 2>/dev/null
native=$(ls -t "$target"/release/deps/native_http-* | grep -v '\.d$' | head -1)
(cd guests && cargo build --release -q --target wasm32-wasip2 --target-dir target -p http_hello)
work=$(mktemp -d)
trap 'stop_all; rm -rf "$work"' EXIT
. scripts/http-load.sh

cat >"$work/hello.toml" <<TOML
[app.http]
listen = "127.0.0.1:18081"
routes = { "/" = "hello" }
[modules.hello]
component = "$root/guests/target/wasm32-wasip2/release/http_hello.wasm"
TOML

echo "machine: $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg); wrk -t2 -c64 -d$DURATION --latency"
echo "columns: req/s p50 p99 server-cpu-us/req"
for round in $(seq "$ROUNDS"); do
  serve 18090 "$native" 127.0.0.1:18090
  n=$(load http://127.0.0.1:18090/); stop_all
  serve 18081 env MEMBRANE_LOG=info "$target/release/membrane" serve "$work/hello.toml"
  m=$(load http://127.0.0.1:18081/); stop_all
  echo "round $round native  : $n"
  echo "round $round membrane: $m"
  echo "round $round ratio   : $(awk -v a="${m%% *}" -v b="${n%% *}" 'BEGIN {printf "%.2fx", a / b}')"
  if [ -n "${BASELINE:-}" ]; then
    serve 18081 env MEMBRANE_LOG=info "$BASELINE" serve "$work/hello.toml"
    b=$(load http://127.0.0.1:18081/); stop_all
    echo "round $round baseline: $b"
    echo "round $round ratio   : $(awk -v a="${b%% *}" -v b="${n%% *}" 'BEGIN {printf "%.2fx", a / b}') (baseline)"
  fi
done
