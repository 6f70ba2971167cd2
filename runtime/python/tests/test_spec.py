"""Apps from a manifest, from AppSpec/ModuleSpec and from dicts: grants and limits apply."""

from __future__ import annotations

from pathlib import Path

import pytest

import membrane
from conftest import CAPS, ECHO, guest


def test_load_a_manifest(rt: membrane.Runtime, tmp_path: Path) -> None:
    (tmp_path / "membrane.toml").write_text(
        f'[modules.echo]\ncomponent = "{guest("types")}"\nlimits = {{ timeout = "1s" }}\n'
    )
    app = rt.load(tmp_path)  # a directory stands for its membrane.toml
    assert app.call("echo", "hello", "manifest") == "hello, manifest"


def test_grants(rt: membrane.Runtime, tmp_path: Path) -> None:
    (tmp_path / "note.txt").write_text("granted")
    spec = membrane.AppSpec().module(
        "m",
        membrane.ModuleSpec(
            guest("probe"),
            env={"MODE": "strict"},
            dirs=[membrane.Dir(tmp_path, "/data")],
            stdout="discard",
        ),
    )
    app = rt.load_spec(spec)
    assert app.call("m", f"{CAPS}#get-env", "MODE") == "strict"
    assert app.call("m", f"{CAPS}#get-env", "HOME") is None
    assert app.call("m", f"{CAPS}#read-file", "/data/note.txt") == "granted"
    # Read-only by default.
    with pytest.raises(membrane.ResultError):
        app.call("m", f"{CAPS}#write-file", "/data/new.txt", "x")
    assert not (tmp_path / "new.txt").exists()
    # Nothing else of the host's file system.
    with pytest.raises(membrane.ResultError):
        app.call("m", f"{CAPS}#read-file", "/etc/passwd")
    # bool arguments.
    assert app.call("m", f"{CAPS}#print", "to stdout", False) is None
    with pytest.raises(membrane.InvalidArgs, match=r"argument `to-stderr`: expected bool"):
        app.call("m", f"{CAPS}#print", "x", 1)


def test_dicts_shaped_like_a_manifest(rt: membrane.Runtime, tmp_path: Path) -> None:
    app = rt.load_spec(
        {
            "modules": {
                "m": {
                    "component": Path(guest("probe")),
                    "grants": {"env": {"A": "1"}, "dirs": [(str(tmp_path), "/w", "rw")]},
                    "limits": {"memory": 32 << 20, "timeout": "2s"},
                }
            }
        }
    )
    assert app.call("m", f"{CAPS}#get-env", "A") == "1"
    assert app.call("m", f"{CAPS}#write-file", "/w/out.txt", "hi") is None
    assert (tmp_path / "out.txt").read_text() == "hi"


def test_a_component_from_bytes(rt: membrane.Runtime) -> None:
    data = Path(guest("types")).read_bytes()
    app = rt.load_spec(membrane.AppSpec(modules={"m": membrane.ModuleSpec(data)}))
    assert app.call("m", f"{ECHO}#echo-string", "bytes") == "bytes"
