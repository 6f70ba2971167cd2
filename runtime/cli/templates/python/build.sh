#!/bin/sh
# Builds target/{{name}}.wasm with componentize-py, installed on first use into .venv.
set -e
if [ ! -x .venv/bin/componentize-py ]; then
    echo "installing componentize-py 0.25.1 into .venv (first build only)" >&2
    python3 -m venv .venv
    .venv/bin/pip install --quiet --disable-pip-version-check componentize-py==0.25.1
fi
mkdir -p target
PYTHONDONTWRITEBYTECODE=1 .venv/bin/componentize-py --wit-path wit --world {{name}} \
    componentize app --output target/{{name}}.wasm
