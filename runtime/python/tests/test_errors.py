"""Every failure is a `membrane.Error` of its kind's class, with the error's fields."""

from __future__ import annotations

from pathlib import Path

import pytest

import membrane
from membrane import _native
from conftest import CAPS, guest, probe


def test_one_class_per_error_kind() -> None:
    assert sorted(membrane.BY_KIND) == sorted(_native.KINDS)
    for kind, cls in membrane.BY_KIND.items():
        assert issubclass(cls, membrane.Error) and cls.kind == kind
        assert getattr(membrane, cls.__name__) is cls
    assert membrane.BY_KIND["memory-limit"] is membrane.MemoryLimit


def test_not_found(types_app: membrane.App, rt: membrane.Runtime, tmp_path: Path) -> None:
    with pytest.raises(membrane.NotFound, match=r"no module `nope`; modules: m") as e:
        types_app.call("nope", "hello", "x")
    assert e.value.module == "nope"
    with pytest.raises(membrane.NotFound, match=r"no root-level export `nope`") as e:
        types_app.call("m", "nope")
    assert isinstance(e.value, membrane.Error) and e.value.kind == "not-found"
    with pytest.raises(membrane.NotFound, match=r"cannot read manifest"):
        rt.load(tmp_path / "missing.toml")
    with pytest.raises(membrane.NotFound, match=r"cannot read component") as e:
        rt.load_spec({"modules": {"m": {"component": str(tmp_path / "missing.wasm")}}})
    assert e.value.key == "modules.m.component"


def test_manifest_problems(rt: membrane.Runtime, tmp_path: Path) -> None:
    manifest = tmp_path / "membrane.toml"
    manifest.write_text(
        '[modules.a]\ncomponent = "a.wasm"\nbogus = 1\n\n[modules.b]\ncomponent = "b.wasm"\nalso_bogus = 2\n'
    )
    with pytest.raises(membrane.Manifest) as e:
        rt.load(manifest)
    err = e.value
    assert err.kind == "manifest"
    assert str(err).startswith("2 problems:")
    assert len(err.problems) == 2
    assert all(isinstance(p, membrane.Manifest) for p in err.problems)
    assert [p.key for p in err.problems] == ["modules.a.bogus", "modules.b.also_bogus"]
    assert [p.location for p in err.problems] == [f"{manifest}:3", f"{manifest}:7"]
    assert "unknown key" in str(err)


def test_spec_problems_name_the_key(rt: membrane.Runtime) -> None:
    with pytest.raises(membrane.Manifest, match=r"modules\.m\.bogus: unknown key") as e:
        rt.load_spec({"modules": {"m": {"component": guest("types"), "bogus": 1}}})
    assert e.value.key == "modules.m.bogus" and e.value.module == "m"
    with pytest.raises(membrane.Manifest, match=r'"lots" is not a size') as e:
        rt.load_spec({"modules": {"m": {"component": guest("types"), "limits": {"memory": "lots"}}}})
    assert e.value.key == "modules.m.limits.memory"
    with pytest.raises(membrane.Manifest, match=r"expected seconds"):
        rt.load_spec(membrane.AppSpec().module("m", membrane.ModuleSpec(guest("types"), timeout=[1])))
    with pytest.raises(membrane.Manifest, match=r"modules\.m\.component: missing"):
        rt.load_spec({"modules": {"m": {}}})


def test_unlinked_import_is_a_link_error(rt: membrane.Runtime) -> None:
    with pytest.raises(membrane.Link, match=r"neither a WASI interface nor linked") as e:
        rt.load_spec({"modules": {"cli": {"component": guest("needs_kv")}}})
    assert e.value.module == "cli"
    assert e.value.key == "modules.cli.links"


def test_traps(rt: membrane.Runtime) -> None:
    app = probe(rt)
    with pytest.raises(membrane.Trap, match=r"#panic trapped") as e:
        app.call("m", f"{CAPS}#panic", "oops")
    assert e.value.module == "m" and e.value.export == f"{CAPS}@0.1.0#panic"
    # The instance is replaced: the next call works.
    assert app.call("m", f"{CAPS}#length", "abc") == 3


def test_stack_overflow(rt: membrane.Runtime) -> None:
    with pytest.raises(membrane.StackOverflow, match=r"overflowed its wasm stack"):
        probe(rt).call("m", f"{CAPS}#recurse", 10**9)


def test_errors_print_their_causes(types_app: membrane.App) -> None:
    err = membrane.InvalidArgs("text", module="m", export="e", key=None)
    assert str(err) == "text" and err.module == "m" and err.problems == []
    with pytest.raises(membrane.Error) as e:
        types_app.call("m", "hello", 1)
    assert str(e.value) == e.value.message
