"""Python values to WIT values and back, family by family, through the `types` guest (which
echoes each) and the `adder` guest (list<u8>, u32, u64)."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

import membrane
from conftest import ECHO, MATH


def echo(app: membrane.App, func: str, *args: object) -> object:
    return app.call("m", f"{ECHO}#{func}", *args)


def test_root_level_export_by_its_bare_name(types_app: membrane.App) -> None:
    assert types_app.call("m", "hello", "py") == "hello, py"


def test_strings(types_app: membrane.App) -> None:
    for s in ["", "plain", "ünïcødé ✓ 🦀", "a\nb\x00c"]:
        assert echo(types_app, "echo-string", s) == s


def test_records_are_dicts(types_app: membrane.App) -> None:
    p = {"x": 1, "y": -2, "label": "p"}
    assert echo(types_app, "echo-point", p) == {"x": 2, "y": -1, "label": "p"}


def test_records_from_objects_with_attributes(types_app: membrane.App) -> None:
    @dataclass
    class Point:
        x: int
        y: int
        label: str

    assert echo(types_app, "echo-point", Point(5, 5, "d")) == {"x": 6, "y": 6, "label": "d"}


def test_record_fields_are_checked(types_app: membrane.App) -> None:
    with pytest.raises(membrane.InvalidArgs, match=r"argument `p`: missing field `y`"):
        echo(types_app, "echo-point", {"x": 1, "label": "p"})
    with pytest.raises(membrane.InvalidArgs, match=r"no field `z`"):
        echo(types_app, "echo-point", {"x": 1, "y": 2, "z": 3, "label": "p"})
    with pytest.raises(membrane.InvalidArgs, match=r"argument `p`\.label: expected string"):
        echo(types_app, "echo-point", {"x": 1, "y": 2, "label": 3})


def test_lists_and_s64(types_app: membrane.App) -> None:
    assert echo(types_app, "sum", [1, 2, 3]) == 6
    assert echo(types_app, "sum", (4, 5)) == 9
    assert echo(types_app, "sum", (n for n in range(4))) == 6
    assert echo(types_app, "sum", []) == 0
    assert echo(types_app, "sum", [-(2**63), 2**63 - 1]) == -1


def test_ints_out_of_range_name_the_argument(types_app: membrane.App) -> None:
    with pytest.raises(membrane.InvalidArgs) as e:
        echo(types_app, "sum", [1, 2**63])
    assert "argument `xs`[1]: 9223372036854775808 is out of range for s64" in str(e.value)
    assert e.value.kind == "invalid-args"
    assert e.value.module == "m"
    assert e.value.export == f"{ECHO}@0.1.0#sum"
    with pytest.raises(membrane.InvalidArgs, match=r"argument `t`\[1\]: 256 is out of range for u8 \(0 to 255\)"):
        echo(types_app, "swap", ("a", 256))
    with pytest.raises(membrane.InvalidArgs, match=r"argument `t`\[1\]: -1 is out of range for u8"):
        echo(types_app, "swap", ("a", -1))
    with pytest.raises(membrane.InvalidArgs, match=r"out of range for s64"):
        echo(types_app, "sum", [10**30])


def test_ints_are_not_bools_or_floats(types_app: membrane.App) -> None:
    with pytest.raises(membrane.InvalidArgs, match=r"expected s64 \(an int\), got bool"):
        echo(types_app, "sum", [True])
    with pytest.raises(membrane.InvalidArgs, match=r"expected s64 \(an int\), got float"):
        echo(types_app, "sum", [1.0])


def test_options_out(types_app: membrane.App) -> None:
    assert echo(types_app, "find", ["a", "b"], "b") == 1
    assert echo(types_app, "find", ["a"], "z") is None


def test_results_out(types_app: membrane.App) -> None:
    assert echo(types_app, "parse-u32", "42") == 42
    with pytest.raises(membrane.ResultError) as e:
        echo(types_app, "parse-u32", "forty-two")
    assert "invalid digit" in e.value.value
    assert e.value.module == "m"
    assert e.value.export == f"{ECHO}@0.1.0#parse-u32"
    assert not isinstance(e.value, membrane.Error)


def test_variants_in(types_app: membrane.App) -> None:
    assert echo(types_app, "area", membrane.Variant("circle", 2)) == 12
    assert echo(types_app, "area", ("rect", (2, 3))) == 6
    assert echo(types_app, "area", "empty") == 0
    assert echo(types_app, "area", ("empty", None)) == 0
    with pytest.raises(membrane.InvalidArgs, match=r"no case `square`"):
        echo(types_app, "area", ("square", 2))
    with pytest.raises(membrane.InvalidArgs, match=r"argument `s`\.rect\[1\]: expected u32"):
        echo(types_app, "area", ("rect", (2, "3")))
    with pytest.raises(membrane.InvalidArgs, match=r"takes a tuple<u32, u32> payload"):
        echo(types_app, "area", "rect")


def test_enums_are_strings(types_app: membrane.App) -> None:
    assert echo(types_app, "next-color", "red") == "green"
    assert echo(types_app, "next-color", "blue") == "red"
    with pytest.raises(membrane.InvalidArgs, match=r"no case `purple` in enum \{ red, green, blue \}"):
        echo(types_app, "next-color", "purple")


def test_flags_are_sets(types_app: membrane.App) -> None:
    assert echo(types_app, "toggle-write", {"read"}) == {"read", "write"}
    assert echo(types_app, "toggle-write", frozenset({"write", "exec"})) == {"exec"}
    assert echo(types_app, "toggle-write", ["read", "read"]) == {"read", "write"}
    assert echo(types_app, "toggle-write", set()) == {"write"}
    with pytest.raises(membrane.InvalidArgs, match=r"no flag `delete`"):
        echo(types_app, "toggle-write", {"delete"})
    with pytest.raises(membrane.InvalidArgs, match=r"expected flags"):
        echo(types_app, "toggle-write", "read")


def test_tuples(types_app: membrane.App) -> None:
    assert echo(types_app, "swap", ("a", 7)) == (7, "a")
    assert echo(types_app, "swap", ["b", 255]) == (255, "b")
    with pytest.raises(membrane.InvalidArgs, match=r"a tuple of 2\), got a tuple of 3"):
        echo(types_app, "swap", ("a", 1, 2))


def test_floats(types_app: membrane.App) -> None:
    assert echo(types_app, "scale", 1.5, 2.0) == 3.0
    assert echo(types_app, "scale", 3, 2) == 6.0
    with pytest.raises(membrane.InvalidArgs, match=r"argument `by`: expected f32"):
        echo(types_app, "scale", 1.0, "2")


def test_chars(types_app: membrane.App) -> None:
    assert echo(types_app, "upper", "a") == "A"
    with pytest.raises(membrane.InvalidArgs, match=r"a str of 2 characters"):
        echo(types_app, "upper", "ab")


def test_no_results_is_none(types_app: membrane.App) -> None:
    assert echo(types_app, "nothing") is None


def test_arity_is_checked(types_app: membrane.App) -> None:
    with pytest.raises(membrane.InvalidArgs, match=r"takes 1 argument\(s\) \(s: string\), 2 given"):
        echo(types_app, "echo-string", "a", "b")


def test_signature_and_export_name(types_app: membrane.App) -> None:
    assert types_app.signature("m", f"{ECHO}#find") == "func(xs: list<string>, needle: string) -> option<u32>"
    assert types_app.export_name("m", f"{ECHO}#find") == f"{ECHO}@0.1.0#find"
    assert types_app.modules() == ["m"]


def test_bytes_are_list_u8(adder_app: membrane.App) -> None:
    for data in [b"", b"\x00\xffabc", bytes(range(256)) * 64]:
        out = adder_app.call("m", f"{MATH}#echo", data)
        assert isinstance(out, bytes) and out == data
    assert adder_app.call("m", f"{MATH}#echo", bytearray(b"xy")) == b"xy"
    assert adder_app.call("m", f"{MATH}#echo", memoryview(b"xyz")[1:]) == b"yz"
    assert adder_app.call("m", f"{MATH}#echo", [1, 2, 3]) == b"\x01\x02\x03"
    with pytest.raises(membrane.InvalidArgs, match=r"argument `bytes`\[1\]: 300 is out of range for u8"):
        adder_app.call("m", f"{MATH}#echo", [1, 300])


def test_u32_and_u64(adder_app: membrane.App) -> None:
    assert adder_app.call("m", f"{MATH}#add", 2**32 - 1, 1) == 0  # the guest's wrapping add
    with pytest.raises(membrane.InvalidArgs, match=r"argument `a`: 4294967296 is out of range for u32"):
        adder_app.call("m", f"{MATH}#add", 2**32, 1)
    with pytest.raises(membrane.InvalidArgs, match=r"argument `b`: -1 is out of range for u32"):
        adder_app.call("m", f"{MATH}#add", 1, -1)
    assert adder_app.call("m", f"{MATH}#nap", 0) == 0


def test_variants_both_ways(types_app: membrane.App) -> None:
    out = echo(types_app, "mirror-shape", membrane.Variant("rect", (2, 3)))
    assert isinstance(out, membrane.Variant)
    assert out == membrane.Variant("rect", (3, 2)) and out.case == "rect" and out.value == (3, 2)
    assert echo(types_app, "mirror-shape", ("circle", 4)) == membrane.Variant("circle", 4)
    empty = echo(types_app, "mirror-shape", "empty")
    assert empty == membrane.Variant("empty", None) and empty.value is None
    # What comes out goes back in as it is.
    assert echo(types_app, "mirror-shape", out) == membrane.Variant("rect", (2, 3))
    with pytest.raises(membrane.InvalidArgs, match=r"argument `s`\.circle: expected u32"):
        echo(types_app, "mirror-shape", ("circle", -1.5))


def test_bools_both_ways(types_app: membrane.App) -> None:
    assert echo(types_app, "invert", True) is False
    assert echo(types_app, "invert", False) is True
    with pytest.raises(membrane.InvalidArgs, match=r"argument `b`: expected bool \(a bool\), got int"):
        echo(types_app, "invert", 1)
    with pytest.raises(membrane.InvalidArgs, match=r"expected bool \(a bool\), got NoneType"):
        echo(types_app, "invert", None)


def test_option_of_option_both_ways(types_app: membrane.App) -> None:
    assert echo(types_app, "maybe", None) is None
    # some(none) is Some(None): it does not collapse into none.
    out = echo(types_app, "maybe", membrane.Some(None))
    assert out == membrane.Some(None) and out is not None
    # some(some(n)): Some(n) out; Some(n), Some(Some(n)) or n in.
    assert echo(types_app, "maybe", membrane.Some(41)) == membrane.Some(42)
    assert echo(types_app, "maybe", membrane.Some(membrane.Some(1))) == membrane.Some(2)
    assert echo(types_app, "maybe", 7) == membrane.Some(8)
    assert echo(types_app, "maybe", membrane.Some(2**32 - 1)) == membrane.Some(0)  # the guest wraps
    with pytest.raises(membrane.InvalidArgs, match=r"argument `x`\.some\.some: -1 is out of range for u32"):
        echo(types_app, "maybe", membrane.Some(-1))


def test_nested_results_both_ways(types_app: membrane.App) -> None:
    # The outer result is the call's: its ok payload is returned, its err raised.
    assert echo(types_app, "nested", membrane.Ok(membrane.Ok(21))) == membrane.Ok(42)
    assert echo(types_app, "nested", membrane.Ok(membrane.Err("bad"))) == membrane.Err("BAD")
    with pytest.raises(membrane.ResultError) as e:
        echo(types_app, "nested", membrane.Err("outer"))
    assert e.value.value == "outer!"
    # Results are never guessed from plain values.
    with pytest.raises(membrane.InvalidArgs, match=r"argument `r`: expected result<result<u32, string>, string> \(membrane\.Ok"):
        echo(types_app, "nested", 21)
    with pytest.raises(membrane.InvalidArgs, match=r"argument `r`\.ok: expected result<u32, string>"):
        echo(types_app, "nested", membrane.Ok(21))
    with pytest.raises(membrane.InvalidArgs, match=r"argument `r`\.ok\.err: expected string"):
        echo(types_app, "nested", membrane.Ok(membrane.Err(3)))


def test_bytes_both_ways(types_app: membrane.App) -> None:
    assert echo(types_app, "bytes", b"abc") == b"cba"
    assert echo(types_app, "bytes", b"") == b""
    assert echo(types_app, "bytes", bytearray(b"\x00\xff")) == b"\xff\x00"
    data = bytes(range(256)) * 16
    out = echo(types_app, "bytes", data)
    assert isinstance(out, bytes) and out == data[::-1]
    with pytest.raises(membrane.InvalidArgs, match=r"argument `b`: expected list<u8> \(a list\), got str"):
        echo(types_app, "bytes", "abc")


def test_names_are_read_whatever_str_objects_carry_them(adder_app: membrane.App) -> None:
    # The native call keeps the names of recent calls by the identity of their str
    # objects: equal names in new objects, and more pairs than it keeps, still work.
    add = f"{MATH}#add"
    for n in range(100):
        export = add if n % 2 else "".join([MATH, "#add"])  # a new str object each time
        assert adder_app.call("m", export, n, 1) == n + 1
    for n in range(40):
        with pytest.raises(membrane.NotFound):
            adder_app.call("m", f"{MATH}#nope{n}")
    with pytest.raises(membrane.NotFound):
        adder_app.call("nope", add, 1, 1)
    with pytest.raises(TypeError):
        adder_app.call(b"m", add, 1, 1)  # type: ignore[arg-type]
