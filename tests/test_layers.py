"""The package's layers: every import points down the order in docs/ARCHITECTURE.md, and no cycles.

Imports are read with ``ast`` (lazy imports inside functions and ``TYPE_CHECKING`` blocks
count too), so the check cannot be fooled by an import that only runs sometimes.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "automation"
# Lowest first. A module may import from its own layer and from any layer before it.
LAYERS = ("core", "repo", "money", "models", "reporting", "steps", "entry")
ENTRY = {"cli", "__main__", "__init__"}


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def layer_of(module: str) -> str:
    parts = module.split(".")
    if len(parts) == 1 or parts[1] in ENTRY:
        return "entry"
    return parts[1]


def imports_of(path: Path) -> set[str]:
    """The ``automation`` modules ``path`` imports (a ``from X import y`` counts ``X.y`` when that is a module)."""
    here = module_name(path)
    package = here if path.name == "__init__.py" else here.rsplit(".", 1)[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names if alias.name.startswith("automation"))
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if not target.startswith("automation"):
                continue
            for alias in node.names:
                candidate = f"{target}.{alias.name}"
                found.add(candidate if candidate in MODULES else target)
    return {name for name in found if name != here}


MODULES = {module_name(path): path for path in PACKAGE.rglob("*.py")}
GRAPH = {name: imports_of(path) for name, path in MODULES.items()}


def upward_imports(graph: dict[str, set[str]]) -> list[str]:
    return sorted(
        f"{module} ({layer_of(module)}) imports {target} ({layer_of(target)})"
        for module, targets in graph.items()
        for target in targets
        if LAYERS.index(layer_of(target)) > LAYERS.index(layer_of(module))
    )


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every strongly connected group of two or more modules (Tarjan), as sorted lists."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in graph.get(node, ()):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_every_module_sits_in_a_known_layer() -> None:
    assert {layer_of(name) for name in MODULES} <= set(LAYERS)
    top_level = {path.name for path in PACKAGE.glob("*.py")}
    assert top_level == {"__init__.py", "cli.py", "__main__.py"}, "a new module belongs in a layer's package"
    assert {path.name for path in PACKAGE.iterdir() if path.is_dir() and path.name != "__pycache__"} == set(LAYERS[:-1])


def test_no_module_imports_from_a_layer_above_its_own() -> None:
    assert upward_imports(GRAPH) == []


def test_no_import_cycles_between_modules() -> None:
    assert cycles(GRAPH) == []


def test_the_architecture_page_states_this_layer_order() -> None:
    page = (PACKAGE.parent / "docs" / "ARCHITECTURE.md").read_text(encoding="utf-8")
    assert "core → repo → money → models → reporting → steps → cli" in page


def test_each_layer_says_what_it_owns_and_what_it_must_not_import() -> None:
    for layer in LAYERS[:-1]:
        doc = ast.get_docstring(ast.parse((PACKAGE / layer / "__init__.py").read_text(encoding="utf-8")))
        assert doc and "must not import" in doc, layer


@pytest.mark.parametrize(
    ("graph", "upward", "cycle"),
    [
        ({"automation.core.config": {"automation.money.ledger"}, "automation.money.ledger": set()},
         ["automation.core.config (core) imports automation.money.ledger (money)"], []),
        ({"automation.steps.a": {"automation.steps.b"}, "automation.steps.b": {"automation.steps.a"}},
         [], [["automation.steps.a", "automation.steps.b"]]),
    ],
)
def test_the_checks_catch_an_upward_import_and_a_cycle(graph: dict[str, set[str]], upward: list[str], cycle: list[list[str]]) -> None:
    assert upward_imports(graph) == upward
    assert cycles(graph) == cycle
