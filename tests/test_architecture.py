"""The layout's rules, checked from the source with ``ast`` (DESIGN.md, "Layout"; STYLE.md).

* No import cycle between poppk's modules, counting imports inside functions (a function-local import
  only hides a cycle from the interpreter, not from a reader).
* No private name crosses a package: a module may import a private module (``_name``) or a private
  name only from its own package or from a package that contains it.
* The command line (``poppk.cli``) imports only the public API: no private module or name outside
  ``poppk.cli`` itself.
* No ``matplotlib.use`` in library code: a library never picks the user's backend.

Expected values come from the rules themselves: each test names the offending modules.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
PKG = SRC / "poppk"


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES = {_module_name(p): p for p in PKG.rglob("*.py")}


def _package(module: str) -> str:
    """The package a module belongs to (a package's ``__init__`` belongs to the package itself)."""
    return module if (PKG.parent / module.replace(".", "/") / "__init__.py").exists() else module.rpartition(".")[0]


def _type_checking_nodes(tree: ast.AST) -> set[int]:
    skip = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for child in node.body:
                skip.update(id(n) for n in ast.walk(child))
    return skip


def _imports(module: str) -> list[tuple[str, str | None]]:
    """(target module, imported name or None) of every import of ``module`` outside TYPE_CHECKING."""
    tree = ast.parse(MODULES[module].read_text())
    skip = _type_checking_nodes(tree)
    package = _package(module)
    out = []
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.Import):
            out += [(a.name, None) for a in node.names if a.name.split(".")[0] == "poppk"]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.split(".")[0] != "poppk":
                continue
            for a in node.names:
                sub = f"{target}.{a.name}"
                out.append((sub, None) if sub in MODULES else (target, a.name))
    return out


def _private(module: str) -> bool:
    return any(part.startswith("_") for part in module.split(".")[1:])


def graph() -> dict[str, set[str]]:
    return {m: {t for t, _ in _imports(m) if t in MODULES and t != m} for m in MODULES}


def _cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on, out = {}, {}, [], set(), []
    counter = [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in sorted(edges[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return out


def test_the_checker_finds_a_cycle():
    """The cycle finder itself, on a hand-made graph with one cycle (a -> b -> c -> a) and a tail."""
    edges = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert _cycles(edges) == [["a", "b", "c"]]


def test_no_import_cycles():
    assert _cycles(graph()) == []


def test_no_private_name_crosses_a_package():
    bad = []
    for m in MODULES:
        mine = _package(m)
        for target, name in _imports(m):
            owner = _package(target) if target in MODULES else target
            crosses = not (mine == owner or mine.startswith(owner + "."))
            if crosses and (_private(target) or (name or "").startswith("_")):
                bad.append(f"{m} imports {target}{'.' + name if name else ''}")
    assert bad == []


def test_cli_imports_only_the_public_api():
    bad = [f"{m} imports {t}{'.' + n if n else ''}"
           for m in MODULES if m.startswith("poppk.cli")
           for t, n in _imports(m)
           if not t.startswith("poppk.cli") and (_private(t) or (n or "").startswith("_"))]
    assert bad == []


@pytest.mark.parametrize("module", sorted(m for m in MODULES if not m.startswith("poppk.cli")))
def test_no_matplotlib_use_in_library_code(module):
    assert "matplotlib.use(" not in MODULES[module].read_text()
