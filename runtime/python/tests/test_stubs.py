"""The type stub of the native module (membrane/_native.pyi) names what the module has."""

from __future__ import annotations

import ast
import inspect
from pathlib import Path
from typing import Dict, Set

import membrane
from membrane import _native


def stub_names() -> Dict[str, Set[str]]:
    """Top-level names of the stub (key "") and the methods of each class."""
    tree = ast.parse((Path(membrane.__file__).parent / "_native.pyi").read_text())
    out: Dict[str, Set[str]] = {"": set()}
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            out[""].add(node.name)
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            out[""].add(node.target.id)
        if isinstance(node, ast.ClassDef):
            out[node.name] = {f.name for f in node.body if isinstance(f, ast.FunctionDef)}
    return out


def test_the_stub_matches_the_native_module() -> None:
    stub = stub_names()
    public = {n for n in dir(_native) if not n.startswith("_")}
    assert stub[""] == public
    for name in public:
        obj = getattr(_native, name)
        if inspect.isclass(obj):
            methods = {n for n in vars(obj) if not n.startswith("_")}
            assert stub[name] - {"__new__"} == methods, name
