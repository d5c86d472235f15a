"""The leaderboards package reads top-down: no module imports, directly or through others,
a module that imports it back. Module-level imports only; a function-level import would
hide a circle, so there are none either."""

from __future__ import annotations

import ast
from graphlib import CycleError, TopologicalSorter
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "leaderboards"


def imported_siblings(tree: ast.Module) -> set[str]:
    """The leaderboards modules a module's top level imports (`from leaderboards import x`,
    `from leaderboards.x import y`, `import leaderboards.x`)."""
    siblings: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module == "leaderboards":
                siblings |= {alias.name for alias in node.names}
            elif node.module.startswith("leaderboards."):
                siblings.add(node.module.split(".")[1])
        elif isinstance(node, ast.Import):
            siblings |= {a.name.split(".")[1] for a in node.names if a.name.startswith("leaderboards.")}
    return siblings


def graph() -> dict[str, set[str]]:
    return {
        path.stem: imported_siblings(ast.parse(path.read_text()))
        for path in PACKAGE.glob("*.py")
        if path.stem != "__init__"
    }


def test_the_leaderboards_modules_import_each_other_without_a_circle() -> None:
    imports = graph()
    assert {"services", "sync", "live", "selectors", "index", "tasks"} <= imports.keys()

    try:
        order = list(TopologicalSorter(imports).static_order())
    except CycleError as error:
        raise AssertionError(f"import circle in leaderboards: {' -> '.join(error.args[1])}") from None

    assert order.index("index") < order.index("selectors") < order.index("sync") < order.index("tasks")


def test_no_leaderboards_module_imports_a_sibling_inside_a_function() -> None:
    late = [
        f"{path.name}:{node.lineno}"
        for path in PACKAGE.glob("*.py")
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        for inner in ast.walk(node)
        if isinstance(inner, ast.ImportFrom) and (inner.module or "").startswith("leaderboards")
    ]

    assert late == []


def test_the_circle_check_sees_a_circle() -> None:
    tree = ast.parse("from leaderboards import tasks\nfrom leaderboards.sync import rebuild\n")

    assert imported_siblings(tree) == {"tasks", "sync"}
    try:
        list(TopologicalSorter({"index": {"tasks"}, "tasks": {"index"}}).static_order())
    except CycleError:
        return
    raise AssertionError("a circle went unseen")
