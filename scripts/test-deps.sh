#!/usr/bin/env bash
# Installs the Debian packages the integration tests use that are not already installed:
#
#   chromium      the admin page's test drives a real headless browser (tests/serve/page.rs)
#   nats-server   the remote placement tests start real NATS servers (tests/remote/)
#   openssl, curl the TLS tests make certificates and speak HTTPS (tests/serve/tls.rs)
#   docker-registry  the OCI tests push to and pull from a real registry (tests/oci/)
#   gcc           the C API's tests compile C programs with AddressSanitizer (runtime/c/tests)
#   python3-venv  the Python package's tests run pytest in a venv (runtime/python/tests)
#
#   scripts/test-deps.sh            # as root on Debian/Ubuntu (CI); elsewhere it does nothing
#
# Idempotent: packages already installed are left alone, and nothing is fetched when every
# package is there. Without root or apt-get it only says what is missing and exits 0, so the
# tests that need a package skip with a message instead of failing. Add a package by adding
# it to PACKAGES.
set -euo pipefail

PACKAGES=(chromium nats-server openssl curl docker-registry gcc python3-venv)

installed() {
    [ "$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null)" = "install ok installed" ]
}

missing=()
for p in "${PACKAGES[@]}"; do
    if ! command -v dpkg-query >/dev/null || ! installed "$p"; then
        missing+=("$p")
    fi
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null || ! command -v dpkg-query >/dev/null; then
    echo "test-deps: missing ${missing[*]}; install with: sudo apt-get install ${missing[*]}" >&2
    exit 0
fi

export DEBIAN_FRONTEND=noninteractive
echo "test-deps: installing ${missing[*]}" >&2
# The package lists may be stale or absent (slim images): refresh them once when the
# install cannot find a package.
if ! apt-get install -y -q --no-install-recommends "${missing[@]}" >&2; then
    apt-get update -q >&2
    apt-get install -y -q --no-install-recommends "${missing[@]}" >&2
fi
