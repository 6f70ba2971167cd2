#!/bin/sh
# Builds target/js.wasm from js/plugin.js with componentize-js, which the first build
# installs with npm into node_modules (Node.js 18 or later and npm are needed). Run from
# examples/plugins, as `membrane build` does. `--disable http fetch-event`: the plugin makes
# no HTTP requests, so it imports no wasi:http, which a plugin granted no origins could not
# link.
set -e
if [ ! -x node_modules/.bin/componentize-js ]; then
    echo "installing componentize-js 0.23.0 with npm (first build only)" >&2
    npm install --no-audit --no-fund --silent --no-save @bytecodealliance/componentize-js@0.23.0
fi
mkdir -p target
node_modules/.bin/componentize-js js/plugin.js --wit wit --world-name plugin \
    --disable http fetch-event --out target/js.wasm
