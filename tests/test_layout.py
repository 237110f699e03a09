"""The code's layout holds: packages import in any order, no hidden import cycles, and only
views and URLconfs reach into view modules (README, "How it is built")."""

from __future__ import annotations

import ast
import itertools
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
APP_PACKAGES = ("generator", "accounts", "usage", "gateway", "sharing", "prompts", "audit")
# Modules that answer requests; nothing below them in the layout may import them.
VIEW_MODULES = (
    "generator.views",
    "generator.api.views",
    "accounts.views",
    "sharing.views",
    "sharing.api",
    "prompts.views",
)
# May import view modules: the views themselves and the URLconfs that route to them.
MAY_IMPORT_VIEWS = (
    *VIEW_MODULES,
    "generator.urls",
    "generator.api.urls",
    "accounts.urls",
    "sharing.urls",
    "prompts.urls",
)
# AppConfig.ready() is where Django wants app-registry-dependent imports.
FUNCTION_IMPORTS_ALLOWED = {"generator.apps", "usage.apps", "audit.apps"}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def app_modules() -> dict[str, Path]:
    modules = {}
    for package in APP_PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            if "migrations" not in path.parts:
                modules[module_name(path)] = path
    return modules


def imports_of(name: str, path: Path) -> list[tuple[str, bool]]:
    """Every project module `name` imports, resolved, with whether it is inside a function."""
    tree = ast.parse(path.read_text(), filename=str(path))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: list[tuple[str, bool]] = []

    def visit(node: ast.AST, in_function: bool) -> None:
        for child in ast.iter_child_nodes(node):
            nested = in_function or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
            if isinstance(child, ast.Import):
                found.extend((alias.name, in_function) for alias in child.names)
            elif isinstance(child, ast.ImportFrom):
                if child.level:
                    base = package.split(".")[: len(package.split(".")) - child.level + 1]
                    target = ".".join(base + ([child.module] if child.module else []))
                else:
                    target = child.module or ""
                # `from . import services` names modules: count each imported name as one.
                found.extend((f"{target}.{alias.name}", in_function) for alias in child.names)
                found.append((target, in_function))
            visit(child, nested)

    visit(tree, False)
    return [(target, inside) for target, inside in found if target.split(".")[0] in (*APP_PACKAGES, "config")]


def is_under(name: str, prefixes: tuple[str, ...]) -> bool:
    return any(name == prefix or name.startswith(prefix + ".") for prefix in prefixes)


def test_the_layout_is_found_by_these_checks():
    modules = app_modules()
    for expected in ("generator.api.views", "generator.views.tasks", "generator.ops.health", "generator.lib.keyset"):
        assert expected in modules
    # The checker resolves relative imports: the page URLconf imports the view modules.
    assert ("generator.views.tasks", False) in imports_of("generator.urls", modules["generator.urls"])


def test_only_views_and_urlconfs_import_view_modules():
    offenders = [
        f"{name} imports {target}"
        for name, path in app_modules().items()
        if not is_under(name, MAY_IMPORT_VIEWS)
        for target, _inside in imports_of(name, path)
        if is_under(target, VIEW_MODULES)
    ]
    assert offenders == []


def test_no_project_module_is_imported_inside_a_function():
    """A function-level import of our own code is how an import cycle hides."""
    offenders = [
        f"{name} imports {target} inside a function"
        for name, path in app_modules().items()
        if name not in FUNCTION_IMPORTS_ALLOWED
        for target, inside in imports_of(name, path)
        if inside
    ]
    assert offenders == []


@pytest.mark.subprocess
@pytest.mark.parametrize("order", list(itertools.permutations(("generator.api", "generator.views", "generator.ops"))))
def test_the_packages_import_cleanly_in_any_order(order):
    modules = app_modules()
    names = [name for package in order for name in modules if is_under(name, (package,))]
    script = "import django; django.setup()\n" + "".join(f"import {name}\n" for name in names)
    environment = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings"}
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, env=environment, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-2000:]
