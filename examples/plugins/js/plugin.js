// The text plugin in JavaScript, built with componentize-js (see examples/plugins/README).

import { getEnvironment } from "wasi:cli/environment@0.2.3";

function words(input) {
  return input.split(/\s+/).filter((w) => w.length > 0);
}

export const text = {
  name() {
    return "shout (javascript)";
  },
  transform(input) {
    return words(input).reverse().join(" ").toUpperCase();
  },
  stats(input) {
    return {
      chars: [...input].length,
      words: words(input).length,
      bytes: new TextEncoder().encode(input).length,
    };
  },
  env(key) {
    const found = getEnvironment().find(([k]) => k === key);
    return found === undefined ? undefined : found[1];
  },
  allocate(megabytes) {
    const block = new Uint8Array(megabytes * 1024 * 1024);
    // Touch every page so the memory is really used.
    for (let i = 0; i < block.length; i += 4096) {
      block[i] = 1;
    }
    let filled = 0;
    for (let i = 0; i < block.length; i += 1024 * 1024) {
      filled += block[i];
    }
    return filled;
  },
  spin() {
    for (;;) {}
  },
};
