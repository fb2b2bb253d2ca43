"""The import rules of docs/architecture.md, checked by reading every module's imports.

Each of our modules belongs to one floor; a module may import its own floor and the
floors below, never one above. The rules are stated as floors, not as a list of
allowed pairs, so a new module is checked the day it is written. Imports inside
functions count as much as those at the top: the web process must not load ``ml``
(nor torch, scikit-learn or matplotlib) even lazily.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO

PACKAGES = ("schema", "vo_service", "ml")

# Bottom to top. A module's floor is that of the longest prefix listed here.
FLOORS: list[tuple[str, tuple[str, ...]]] = [
    ("schema", ("schema",)),
    ("platform", ("vo_service.config", "vo_service.errors", "vo_service.db",
                  "vo_service.archive", "vo_service.progress")),
    ("ml", ("ml",)),
    ("service", ("vo_service",)),
    ("command line", ("vo_service.cli", "vo_service.adql.cli", "vo_service.publish.cli",
                      "vo_service.registry.cli", "vo_service.releases.cli", "ml.cli")),
]
# ``ml`` and the web service are side by side above the platform: neither imports
# the other. Only the command line joins them.
SIDE_BY_SIDE = {("ml", "service"), ("service", "ml")}
HEAVY = ("ml", "torch", "sklearn", "matplotlib", "scipy")
# The exception: the numpy-only code the web process runs on uploaded spectra
# (``vo_service.inference``) -- preprocessing, S/N, applying the error calibration and
# the domain cuts -- so an upload meets the model exactly as at ingest and inference.
# These modules must stay free of torch and the other heavy libraries (checked below).
WEB_SAFE_ML = ("ml", "ml.preprocess", "ml.errors", "ml.sigma_calibration", "ml.snr",
               "ml.domain_cuts")


def module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def our_modules() -> dict[str, Path]:
    return {module_name(p): p for package in PACKAGES for p in (REPO / package).rglob("*.py")
            if "migrations" not in p.parts}


def imports_of(name: str, path: Path) -> set[str]:
    """Absolute names of every module ``path`` imports, at any depth of its code."""
    found: set[str] = set()
    is_package = path.name == "__init__.py"
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = name.split(".")
                base = base[:len(base) - node.level + (1 if is_package else 0)]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            found.add(module)
            found.update(f"{module}.{alias.name}" for alias in node.names)
    return found


def floor_of(name: str) -> str | None:
    best: tuple[int, str] | None = None
    for floor, prefixes in FLOORS:
        for prefix in prefixes:
            if name == prefix or name.startswith(prefix + "."):
                if best is None or len(prefix) > best[0]:
                    best = (len(prefix), floor)
    return best[1] if best else None


def resolve(imported: str, modules: dict[str, Path]) -> str | None:
    """The module of ours that ``imported`` names (``a.b.func`` -> ``a.b``), if any."""
    while imported:
        if imported in modules:
            return imported
        imported = imported.rpartition(".")[0]
    return None


def test_no_import_runs_up_a_floor():
    modules = our_modules()
    order = [floor for floor, _ in FLOORS]
    wrong = []
    for name, path in sorted(modules.items()):
        mine = floor_of(name)
        for imported in sorted(imports_of(name, path)):
            target = resolve(imported, modules)
            if target is None or target == name:
                continue
            theirs = floor_of(target)
            if target in WEB_SAFE_ML and mine == "service":
                continue
            if (mine, theirs) in SIDE_BY_SIDE or order.index(theirs) > order.index(mine):
                wrong.append(f"{name} ({mine}) imports {target} ({theirs})")
    assert not wrong, "imports against the floors of docs/architecture.md:\n" + "\n".join(wrong)


def web_closure(modules: dict[str, Path]) -> dict[str, str]:
    """Every module the web application can import, with one module that imports it."""
    seen = {"vo_service.app": "(root)"}
    todo = ["vo_service.app"]
    external: dict[str, str] = {}
    while todo:
        current = todo.pop()
        for imported in imports_of(current, modules[current]):
            target = resolve(imported, modules)
            if target is None:
                external.setdefault(imported.split(".")[0], current)
            elif target not in seen:
                seen[target] = current
                todo.append(target)
    return {**seen, **external}


def test_web_service_never_reaches_ml_or_heavy_libraries():
    reached = web_closure(our_modules())
    bad = {name: via for name, via in reached.items()
           if name.split(".")[0] in HEAVY and name not in WEB_SAFE_ML}
    assert not bad, f"the web service reaches {bad}"


@pytest.mark.timeout(120)
def test_web_process_loads_no_ml_library():
    """The same, measured: importing and building the app loads none of them."""
    code = ("import sys, vo_service.app, vo_service.inference.runtime\n"
            "heavy = sorted(m for m in sys.modules if m.split('.')[0] in sys.argv[1:])\n"
            "print(','.join(heavy))")
    out = subprocess.run([sys.executable, "-c", code, *HEAVY], cwd=REPO, capture_output=True,
                         text=True, timeout=100, check=True)
    assert set(filter(None, out.stdout.strip().split(","))) <= set(WEB_SAFE_ML)


def test_the_rule_catches_an_upward_import(tmp_path):
    """The checker itself: a schema module importing the web service is flagged."""
    fake = tmp_path / "probe.py"
    fake.write_text("def f():\n    from vo_service.tap import query\n")
    imported = imports_of("schema.probe", fake)
    assert resolve("vo_service.tap.query", our_modules()) == "vo_service.tap.query"
    assert "vo_service.tap.query" in imported
    assert floor_of("schema.probe") == "schema" and floor_of("vo_service.tap.query") == "service"
