#!/bin/sh
# Builds target/python.wasm from python/app.py with componentize-py, which the first build
# installs into .venv (Python 3.10 or later and PyPI are needed). Run from examples/plugins,
# as `membrane build` does.
set -e
if [ ! -x .venv/bin/componentize-py ]; then
    echo "installing componentize-py 0.25.1 into .venv (first build only)" >&2
    python3 -m venv .venv
    .venv/bin/pip install --quiet --disable-pip-version-check componentize-py==0.25.1
fi
mkdir -p target
PYTHONDONTWRITEBYTECODE=1 .venv/bin/componentize-py --wit-path wit --world plugin \
    componentize --python-path python app --output target/python.wasm
