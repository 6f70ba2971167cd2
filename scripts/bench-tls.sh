#!/usr/bin/env bash
# TLS on the listener against plain HTTP: `membrane serve` of the hello handler, HTTP/1.1
# keep-alive with wrk and HTTP/2 with h2load, each over TLS and in the clear, on 127.0.0.1.
#
#   scripts/bench-tls.sh                 # ROUNDS=2 DURATION=8s by default
#
# Needs: wrk, h2load (apt-get install wrk nghttp2-client) and openssl.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
DURATION=${DURATION:-8s}
ROUNDS=${ROUNDS:-2}
for tool in wrk h2load openssl; do
  command -v $tool >/dev/null || { echo "$tool is missing: apt-get install wrk nghttp2-client openssl" >&2; exit 1; }
done

cargo build --release -q -p membrane
(cd guests && cargo build --release -q --target wasm32-wasip2 -p http_hello)
membrane=${CARGO_TARGET_DIR:-$root/target}/release/membrane
work=$(mktemp -d)
pid=
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT

openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj /CN=bench \
  -addext subjectAltName=IP:127.0.0.1 -keyout "$work/key.pem" -out "$work/cert.pem" 2>/dev/null
manifest() { # NAME EXTRA
  cat >"$work/$1.toml" <<TOML
[app.http]
listen = "127.0.0.1:18093"
routes = { "/" = "m" }
$2
[modules.m]
component = "$root/guests/target/wasm32-wasip2/release/http_hello.wasm"
limits = { instances = 32 }
TOML
}
manifest plain ""
manifest tls "tls_cert = \"$work/cert.pem\"
tls_key = \"$work/key.pem\""

wait_port() { for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/18093) 2>/dev/null && return 0; sleep 0.1; done; exit 1; }
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
start() { MEMBRANE_LOG=off "$membrane" serve "$work/$1.toml" >/dev/null 2>&1 & pid=$!; wait_port; }
stop() { kill "$pid"; wait "$pid" 2>/dev/null || true; pid=; sleep 0.3; }
# measure CMD...: "req/s server-cpu-us/req" (the tool's output parsed by the caller's awk)
per_request() { # TICKS REQUESTS
  awk -v t="$1" -v n="$2" -v hz="$(getconf CLK_TCK)" 'BEGIN {printf "%.1f", t * 1e6 / hz / n}'
}
h1() { # URL
  local before after out rps n
  wrk -t2 -c64 -d2s "$1" >/dev/null
  before=$(cpu_ticks "$pid")
  out=$(wrk -t2 -c64 -d"$DURATION" --latency "$1")
  after=$(cpu_ticks "$pid")
  rps=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
  n=$(awk '/requests in/ {print $1}' <<<"$out")
  echo "$rps req/s, p99 $(awk '$1=="99%" {print $2}' <<<"$out"), $(per_request $((after - before)) "$n") us CPU/request"
}
h2() { # URL
  local before after out rps n
  h2load -c64 -m10 -D2 "$1" >/dev/null 2>&1
  before=$(cpu_ticks "$pid")
  out=$(h2load -c64 -m10 -D"${DURATION%s}" "$1" 2>&1)
  after=$(cpu_ticks "$pid")
  rps=$(awk '/^finished in/ {print $4}' <<<"$out")
  n=$(awk '/^requests:/ {print $8}' <<<"$out")
  echo "$rps req/s, $(per_request $((after - before)) "$n") us CPU/request"
}

echo "machine: $(nproc) cores; wrk -t2 -c64 -d$DURATION (HTTP/1.1 keep-alive), h2load -c64 -m10 -D$DURATION (HTTP/2)"
for round in $(seq "$ROUNDS"); do
  start plain
  echo "round $round HTTP/1.1 plain : $(h1 http://127.0.0.1:18093/)"
  echo "round $round HTTP/2   plain : $(h2 http://127.0.0.1:18093/)"
  stop
  start tls
  echo "round $round HTTP/1.1 TLS   : $(h1 https://127.0.0.1:18093/)"
  echo "round $round HTTP/2   TLS   : $(h2 https://127.0.0.1:18093/)"
  stop
done
