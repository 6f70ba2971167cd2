#!/usr/bin/env bash
# Fuzzes the host's side of the worker protocol (placement = "process") for a bounded time:
# the cargo-fuzz target `worker_protocol` (fuzz/fuzz_targets/worker_protocol.rs) feeds
# arbitrary bytes, as a compromised worker would send them, to the host's frame reader and
# message decoders.
#
#   scripts/fuzz-worker.sh            # 60 seconds
#   scripts/fuzz-worker.sh 600        # or as many seconds as given
#
# Needs the nightly toolchain and cargo-fuzz (`rustup toolchain install nightly`,
# `cargo install cargo-fuzz`). The corpus grows in fuzz/corpus/worker_protocol (ignored by
# git), starting from the seeds in fuzz/seeds/worker_protocol; a crash is written to
# fuzz/artifacts/worker_protocol/ and the script exits non-zero. The last lines of
# libFuzzer's report say how many inputs ran.
set -euo pipefail
cd "$(dirname "$0")/../fuzz"

seconds="${1:-60}"
corpus=corpus/worker_protocol
mkdir -p "$corpus"
cp -n seeds/worker_protocol/* "$corpus/" 2>/dev/null || true

# One job, as the machine is shared; inputs up to 64 KiB (a log event's bound).
cargo +nightly fuzz run worker_protocol "$corpus" -- \
    -max_total_time="$seconds" -max_len=65536 -timeout=10 -rss_limit_mb=2048 -print_final_stats=1
