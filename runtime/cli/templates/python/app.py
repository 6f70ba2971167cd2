"""The {{name}} module in Python: exports local:{{name}}/greet (wit/world.wit).

componentize-py generates the `wit_world` package from the WIT when it builds.
"""

from wit_world import exports


class Greet(exports.Greet):
    def hello(self, name: str) -> str:
        return f"Hello, {name}!"
