"""The walls of docs/architecture.md, read from the code itself: what imports what, and one error root.

The import graph is grimp's (the library import-linter is built on), over every import statement,
including those inside functions and under ``TYPE_CHECKING``: a late import is still a dependency.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from collections.abc import Iterator
from functools import cache
from pathlib import Path

import grimp

import bot
from bot.errors import MinpcodeError

ROOT = Path(__file__).resolve().parents[2]
OURS = ("bot", "handlers", "storage")
CHAT = ("slack_bolt", "slack_sdk", "aiohttp", "handlers")
# The process builds everything and wires the chats in; nothing else in bot/ may know them.
PROCESS = {"bot.server", "bot.cli", "bot.scheduler", "bot.__main__"}
# The emulators' errors stand for WeChat's and GrowingIO's own answers: they become HTTP responses at
# the emulator's edge and never reach our code, which sees them only as answers on the wire.
EMULATED = {"bot.sandbox"}


@cache
def graph() -> grimp.ImportGraph:
    return grimp.build_graph(*OURS, include_external_packages=True, cache_dir=None)


def ours(module: str) -> bool:
    return module.split(".")[0] in OURS


def top(module: str) -> str:
    return module.split(".")[0]


def where(importer: str, imported: str) -> str:
    lines = sorted({d["line_number"] for d in graph().get_import_details(importer=importer, imported=imported)})
    return f"{importer} -> {imported} (line {', '.join(map(str, lines))})"


def test_the_graph_is_read_from_this_checkout_only() -> None:
    # ``bot`` is a namespace package: another checkout's editable install on the path would merge its
    # modules into ours, and every verdict below would be about a mixture.
    portions = {Path(p).resolve() for p in bot.__path__ if Path(p).is_dir()}
    assert portions == {ROOT / "bot"}, f"bot is assembled from {sorted(map(str, portions))}"


def test_the_core_and_storage_import_no_chat() -> None:
    g = graph()
    broken = [
        where(importer, imported)
        for importer in sorted(g.modules)
        if top(importer) in ("bot", "storage") and importer not in PROCESS
        for imported in sorted(g.find_modules_directly_imported_by(importer))
        if top(imported) in CHAT
    ]
    assert broken == [], "the core knows a chat:\n" + "\n".join(broken)


def test_storage_imports_only_the_shared_types() -> None:
    g = graph()
    leaf = {"bot.models", "bot.errors", "bot.text", "bot.messages", "bot.kinds", "bot.media", "bot.concurrency",
            "bot.redact", "bot.version", "bot.batch.models"}
    broken = [
        where(importer, imported)
        for importer in sorted(m for m in g.modules if top(m) == "storage")
        for imported in sorted(g.find_modules_directly_imported_by(importer))
        if top(imported) == "bot" and imported not in leaf
    ]
    assert broken == [], "storage reaches past the shared types:\n" + "\n".join(broken)


def cycles(edges: dict[str, list[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan, without recursion)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for start in edges:
        if start in index:
            continue
        work: list[tuple[str, Iterator[str]]] = [(start, iter(edges[start]))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(edges[child])))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return sorted(found)


def test_cycles_finds_what_it_should() -> None:
    assert cycles({"a": ["b"], "b": ["c"], "c": ["a"], "d": ["a"], "e": []}) == [["a", "b", "c"]]
    assert cycles({"a": ["b"], "b": [], "c": ["c"]}) == []  # a module importing itself is no circle
    assert cycles({"a": ["b"], "b": ["a"], "c": ["d"], "d": ["c"]}) == [["a", "b"], ["c", "d"]]


def test_no_import_circle_among_our_modules() -> None:
    g = graph()
    modules = sorted(m for m in g.modules if ours(m))
    edges = {m: sorted(i for i in g.find_modules_directly_imported_by(m) if ours(i) and i != m) for m in modules}
    circles = cycles(edges)
    shown = [" <-> ".join(c) + ": " + "; ".join(where(a, b) for a in c for b in edges[a] if b in c) for c in circles]
    assert circles == [], "import circles:\n" + "\n".join(shown)


def modules_of(package: str) -> Iterator[str]:
    yield package
    for info in pkgutil.walk_packages([str(ROOT / package.replace(".", "/"))], prefix=package + "."):
        yield info.name


def test_every_error_of_the_core_and_storage_has_one_root() -> None:
    outside = []
    for name in [*modules_of("bot"), *modules_of("storage")]:
        if any(name == e or name.startswith(e + ".") for e in EMULATED):
            continue
        module = importlib.import_module(name)
        for _, cls in inspect.getmembers(module, inspect.isclass):
            if cls.__module__ == name and issubclass(cls, BaseException) and not issubclass(cls, MinpcodeError):
                outside.append(f"{name}.{cls.__qualname__}")
    assert outside == [], "errors outside MinpcodeError (bot/errors.py):\n" + "\n".join(outside)


def test_every_error_has_a_stable_code_name() -> None:
    def tree(cls: type[MinpcodeError]) -> Iterator[type[MinpcodeError]]:
        yield cls
        for sub in cls.__subclasses__():
            yield from tree(sub)

    names = {cls.__name__: cls.code_name for cls in tree(MinpcodeError) if cls.__module__ == "bot.errors"}
    assert all(code.islower() and code.replace("_", "").isalpha() for code in names.values()), names
    assert not set(names.values()) & set(names), "a code name must not be a Python class name"
    drawn = (ROOT / "bot" / "errors.py").read_text(encoding="utf-8").split('"""')[1]
    assert all(name in drawn for name in names), "the tree in bot/errors.py's docstring lacks a class"
