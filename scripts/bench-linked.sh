#!/usr/bin/env bash
# The cost of one call between two isolated modules, end to end through `membrane call`
# (issue 24): the bench driver calls the bench provider's `inc(u64) -> u64` N times through
# a link inside one `membrane call`; the time of a call with N = 1 is taken off, and the rest
# divided by N - 1. The floor beside it is one raw wasmtime sync host->guest call of the same
# `inc` (`callcost raw-typed`, wall clock), measured in the same run.
#
#   scripts/bench-linked.sh [N] [RUNS]      # N = 2000000 calls, RUNS = 3 (the median is kept)
#
# Release build; run it on a quiet machine. MEMBRANE_NO_METRICS=1 in the environment
# measures without metrics.
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-2000000}
runs=${2:-3}

cargo build --release -p membrane --bin membrane >&2
cargo bench -p membrane --bench callcost --no-run >&2
target=$(cargo metadata --format-version 1 --no-deps | sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')
bin="$target/release/membrane"
callcost=$(ls -t "$target"/release/deps/callcost-* | grep -v '\.d$' | head -1)
guests="$PWD/guests/target/wasm32-wasip2/release"

dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
cat > "$dir/membrane.toml" <<EOF
[modules.driver]
component = "$guests/bench_driver.wasm"
links = { "membrane-bench:calls/api" = "provider", "membrane-bench:calls/res" = "provider" }
limits = { timeout = "10m" }

[modules.provider]
component = "$guests/bench_provider.wasm"
limits = { timeout = "10m" }
EOF

# Seconds of one `membrane call` of loop-inc with `$1` calls.
once() {
    local start end
    start=$(date +%s%N)
    "$bin" call "$dir/membrane.toml" driver 'membrane-bench:calls/driver#loop-inc' "$1" >/dev/null
    end=$(date +%s%N)
    echo $(( end - start ))
}
median() { sort -n | sed -n "$(( (runs + 1) / 2 ))p"; }

"$bin" call "$dir/membrane.toml" driver 'membrane-bench:calls/driver#loop-inc' 1 >/dev/null # compile cache
one=$(for _ in $(seq "$runs"); do once 1; done | median)
many=$(for _ in $(seq "$runs"); do once "$n"; done | median)
per_call=$(( (many - one) / (n - 1) ))
floor=$("$callcost" raw-typed --calls 2000000 | sed -n 's/.*: \([0-9.]*\) ns per call/\1/p')
echo "membrane call, one linked inc: $per_call ns (N=$n, median of $runs; one call alone $(( one / 1000000 )) ms)"
echo "raw wasmtime sync typed call of inc (floor): $floor ns"
awk -v a="$per_call" -v b="$floor" 'BEGIN { if (b > 0) printf "ratio: %.2fx the floor\n", a / b }'
