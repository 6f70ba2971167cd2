"""WIT resources implemented by Python classes: the docs_user guest (guests/docs_user) uses
membrane-test:docs/store's `document` and `tally` through handles that stand for Python
objects; the objects are released when the guest drops the handles or its instance ends."""

from __future__ import annotations

import weakref
from typing import List

import pytest

import membrane
from conftest import guest, runtime

STORE = "membrane-test:docs/store@0.1.0"
RUN = "membrane-test:docs/run"


class Document:
    """The `document` resource; every instance is tracked by a weak reference."""

    made: "List[weakref.ref[Document]]" = []

    @membrane.wit("func(text: string)")
    def __init__(self, text: str) -> None:
        self.text = text
        Document.made.append(weakref.ref(self))

    @membrane.wit("func() -> string", name="text")
    def read(self) -> str:
        return self.text

    @membrane.wit("func(more: string)")
    def append(self, more: str) -> None:
        self.text += more

    @staticmethod
    @membrane.wit("func(name: string) -> document")
    def open(name: str) -> "Document":
        return Document(f"# {name}")

    def helper(self) -> None:
        """Not marked: not a WIT function."""


class Tally:
    @membrane.wit("func()")
    def __init__(self) -> None:
        self.n = 0

    @membrane.wit("func() -> u32")
    def bump(self) -> int:
        self.n += 1
        return self.n


def live() -> int:
    """How many documents are alive."""
    return sum(1 for ref in Document.made if ref() is not None)


def store(closed: List[Document]) -> membrane.HostInterface:
    docs = membrane.HostInterface(STORE).resource("document", Document).resource("tally", Tally)

    @docs.func("func(doc: document) -> string")
    def close(doc: Document) -> str:
        closed.append(doc)  # the host keeps what the guest gave back
        return doc.text

    @docs.func("func(doc: borrow<document>) -> u32")
    def length(doc: Document) -> int:
        assert isinstance(doc, Document)
        return len(doc.text)

    return docs


def docs_app(docs: membrane.HostInterface, **settings: object) -> membrane.App:
    rt = runtime(instance_slots=8)
    rt.provide(docs)
    spec = membrane.ModuleSpec(guest("docs_user"), **settings).link("membrane-test:docs/store", "host")  # type: ignore[arg-type]
    return rt.load_spec(membrane.AppSpec().module("user", spec))


def call(app: membrane.App, func: str, *args: object) -> object:
    return app.call("user", f"{RUN}#{func}", *args)


@pytest.fixture
def closed() -> List[Document]:
    Document.made.clear()
    return []


def test_the_resource_functions_map_to_the_class(closed: List[Document]) -> None:
    names = sorted(store(closed).funcs)
    assert names == [
        "[constructor]document",
        "[constructor]tally",
        "[method]document.append",
        "[method]document.text",
        "[method]tally.bump",
        "[static]document.open",
        "close",
        "length",
    ]
    funcs = store(closed).funcs
    assert funcs["[constructor]document"][0] == "func(text: string) -> document"
    assert funcs["[method]document.text"][0] == "func(self: borrow<document>) -> string"
    assert funcs["[method]document.append"][0] == "func(self: borrow<document>, more: string)"
    assert funcs["[constructor]tally"][1] is Tally


def test_a_guest_uses_python_objects_through_handles(closed: List[Document]) -> None:
    app = docs_app(store(closed))
    # Constructor, method and drop.
    assert call(app, "roundtrip", "hello", ", world") == "hello, world"
    # The static function, a borrow (`length`) and an own given back (`close`): the host
    # gets its own object.
    assert call(app, "cycle", "notes") == (7, "# notes")
    assert len(closed) == 1 and isinstance(closed[0], Document)
    assert closed[0].text == "# notes"


def test_a_dropped_handle_releases_the_object(closed: List[Document]) -> None:
    app = docs_app(store(closed))
    assert call(app, "roundtrip", "a", "b") == "ab"
    assert len(Document.made) == 1
    # No garbage collection needed: the runtime's reference went with the handle.
    assert live() == 0
    # Kept handles keep their objects; released ones free them.
    assert call(app, "hoard", 5) == 5
    assert live() == 5
    assert call(app, "release") == 5
    assert live() == 0
    # Given back with `close`, the object is the host's: it lives as long as it keeps it.
    call(app, "cycle", "kept")
    assert live() == 1
    closed.clear()
    assert live() == 0


def test_objects_go_when_the_instance_ends(closed: List[Document]) -> None:
    app = docs_app(store(closed), lifecycle="per-call")
    assert call(app, "hoard", 3) == 3
    app.modules()  # any call into the native module drops the references it let go of
    assert live() == 0
    assert len(Document.made) == 3


def test_a_wrong_object_where_a_handle_is_expected_fails_the_call(closed: List[Document]) -> None:
    docs = store(closed)
    docs.add("[static]document.open", "func(name: string) -> document", lambda name: Tally())
    app = docs_app(docs)
    with pytest.raises(membrane.HostPanic) as e:
        call(app, "cycle", "x")
    text = str(e.value)
    assert "not a document" in text and "expected document (an instance of Document), got Tally" in text, text
    assert e.value.module == "user"
    # The module keeps serving.
    assert call(app, "roundtrip", "x", "y") == "xy"


def test_an_exception_in_a_method_fails_the_call(closed: List[Document]) -> None:
    class Broken(Document):
        @membrane.wit("func(more: string)")
        def append(self, more: str) -> None:
            raise ValueError(f"cannot append {more!r}")

    docs = store(closed).resource("document", Broken)
    app = docs_app(docs)
    with pytest.raises(membrane.HostPanic) as e:
        call(app, "roundtrip", "a", "b")
    assert isinstance(e.value.__cause__, ValueError)
    assert "cannot append 'b'" in str(e.value)
    # The constructor made a `Broken` (the inherited `__init__` keeps its mark).
    assert [type(ref()) for ref in Document.made] in ([Broken], [type(None)])
    assert len(Document.made) == 1


def test_resources_are_not_interchangeable(closed: List[Document]) -> None:
    app = docs_app(store(closed))
    # A tally's handle used as a document: the guest traps, whatever the host's objects.
    with pytest.raises(membrane.Trap):
        call(app, "confuse")
    # A handle the guest was never given.
    with pytest.raises(membrane.Trap):
        call(app, "forge", 77)
    assert call(app, "roundtrip", "still ", "serving") == "still serving"


def test_signatures_with_resources_are_checked_at_load(closed: List[Document]) -> None:
    docs = store(closed)
    docs.add("length", "func(doc: borrow<tally>) -> u32", lambda doc: 0)
    with pytest.raises(membrane.Link) as e:
        docs_app(docs)
    assert e.value.export == f"{STORE}#length"
    assert "func(borrow<document>) -> u32" in str(e.value)


def test_resource_declarations_are_checked() -> None:
    docs = membrane.HostInterface(STORE)
    with pytest.raises(TypeError, match=r"not a class"):
        docs.resource("document", Document("x"))  # type: ignore[arg-type]

    class Returns:
        @membrane.wit("func(text: string) -> returns")
        def __init__(self, text: str) -> None:
            pass

    with pytest.raises(TypeError, match=r"declare its parameters only"):
        docs.resource("returns", Returns)


def test_resources_under_asyncio(closed: List[Document]) -> None:
    import asyncio

    app = docs_app(store(closed))

    async def main() -> None:
        # The guests run on the runtime's worker threads; their host calls take the GIL.
        texts = await asyncio.gather(*(app.call_async("user", f"{RUN}#roundtrip", str(n), "!") for n in range(8)))
        assert texts == [f"{n}!" for n in range(8)]
        assert await app.call_async("user", f"{RUN}#cycle", "a") == (3, "# a")

    asyncio.run(main())
    app.modules()  # the references the workers let go of are dropped at the next native call
    assert len(Document.made) == 9
    assert live() == 1 and closed[0].text == "# a"


def test_handles_count_against_the_handle_limit(closed: List[Document]) -> None:
    app = docs_app(store(closed))
    with pytest.raises(membrane.TableLimit) as e:
        call(app, "hoard", 65_537)
    assert "65536 resource handles" in str(e.value)
    # The instance that failed is discarded, and the runtime's references with it.
    app.modules()
    assert live() == 0
    assert call(app, "hoard", 2) == 2
