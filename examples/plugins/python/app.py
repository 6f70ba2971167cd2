"""The text plugin in Python, built with componentize-py (see examples/plugins/README)."""

import os

from wit_world import exports
from wit_world.exports.text import TextStats


class Text(exports.Text):
    def name(self) -> str:
        return "shout (python)"

    def transform(self, input: str) -> str:
        return " ".join(reversed(input.split())).upper()

    def stats(self, input: str) -> TextStats:
        return TextStats(
            chars=len(input),
            words=len(input.split()),
            bytes=len(input.encode("utf-8")),
        )

    def env(self, key: str) -> str | None:
        return os.environ.get(key)

    def allocate(self, megabytes: int) -> int:
        block = bytearray(megabytes * 1024 * 1024)
        # Touch every page so the memory is really used.
        for i in range(0, len(block), 4096):
            block[i] = 1
        return sum(block[::1024 * 1024])

    def spin(self) -> None:
        while True:
            pass
