"""The arrows of docs/architecture.md ("The apps and which way imports flow"), checked:
nothing imports `analytics`, only `analytics` imports `players`, and `tracker` knows no
domain app. The wiring modules (config/), admin modules and management commands are the
leaves the document names as exceptions."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
APPS = ("tracker", "infra", "achievements", "leaderboards", "stats", "players", "analytics")
DOMAIN = {"achievements", "leaderboards", "stats", "players", "analytics"}


def is_leaf(path: Path) -> bool:
    parts = path.relative_to(ROOT).parts
    return path.name == "admin.py" or "management" in parts or "migrations" in parts


def imports() -> dict[str, set[str]]:
    """Each app's module (dotted) → the other apps it imports, anywhere in the file."""
    found: dict[str, set[str]] = {}
    for app in APPS:
        for path in (ROOT / app).rglob("*.py"):
            if is_leaf(path):
                continue
            module = ".".join(path.relative_to(ROOT).with_suffix("").parts)
            names: set[str] = set()
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                    names.add(node.module.split(".")[0])
                elif isinstance(node, ast.Import):
                    names |= {alias.name.split(".")[0] for alias in node.names}
            found[module] = {name for name in names if name in APPS and name != app}
    return found


def importers_of(app: str) -> set[str]:
    return {module for module, apps in imports().items() if app in apps}


def test_nothing_imports_analytics() -> None:
    assert importers_of("analytics") == set()


def test_only_analytics_imports_players() -> None:
    assert {module.split(".")[0] for module in importers_of("players")} <= {"analytics"}
    assert "analytics.aggregation" in importers_of("players")  # the day's bounds, as the doc says


def test_the_core_knows_no_domain_app() -> None:
    assert {m for m, apps in imports().items() if m.split(".")[0] == "tracker" and apps & DOMAIN} == set()


def test_the_machinery_knows_no_domain_app_and_only_the_core_models_of_tracker() -> None:
    """infra/ (docs/architecture.md, "The tree") serves every domain and knows none of them:
    of the domain it may name only tracker's core models, its strict base serializer and the
    names of its permission schemes (for the OpenAPI security)."""
    found: set[tuple[str, str]] = set()
    for path in (ROOT / "infra").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                found.add((path.stem, node.module))
            elif isinstance(node, ast.Import):
                found |= {(path.stem, alias.name) for alias in node.names}
    domain = {(module, name) for module, name in found if name.split(".")[0] in DOMAIN | {"tracker"}}
    assert {name for _, name in domain} <= {"tracker.models", "tracker.serializers", "tracker.permissions"}, domain
