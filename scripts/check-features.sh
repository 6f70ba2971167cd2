#!/usr/bin/env bash
# The builds CI does not make: an embedder's `membrane` without default features (no
# metrics, no placement but isolated), which compiles code the workspace's unified features
# never do. Run it after touching a `#[cfg(feature = ...)]` and before a release.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo clippy -p membrane --no-default-features -- -D warnings
# The process placement without WASI 0.3 (its worker refuses 0.3 components).
cargo clippy -p membrane --no-default-features --features process -- -D warnings
# OpenTelemetry export alone, as an embedder adds it.
cargo clippy -p membrane --no-default-features --features otel -- -D warnings
# Components from OCI registries alone: the registry client without serving or placements.
cargo clippy -p membrane --no-default-features --features oci -- -D warnings
# Without WASI 0.3: a 0.3 component is refused at load with the feature to turn on.
cargo test -p membrane-core --lib
