#!/bin/sh
# Builds target/{{name}}.wasm with componentize-js, installed on first use by npm.
# `--disable http fetch-event`: the module makes no HTTP requests, so it imports no wasi:http.
set -e
if [ ! -x node_modules/.bin/componentize-js ]; then
    echo "installing componentize-js 0.23.0 with npm (first build only)" >&2
    npm install --no-audit --no-fund --silent
fi
mkdir -p target
node_modules/.bin/componentize-js app.js --wit wit --world-name {{name}} \
    --disable http fetch-event --out target/{{name}}.wasm
