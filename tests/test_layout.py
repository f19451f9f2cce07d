"""The shape of the code: clr_lib stands alone, clr_book builds on it, and imports form no cycle."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("clr_lib", "clr_book")


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    return {_module_name(path): path for package in PACKAGES for path in sorted((ROOT / package).rglob("*.py"))}


def _imports(name: str, path: Path, *, module_level_only: bool) -> list[tuple[str, list[str]]]:
    """``(imported module, imported names)`` for each import of the module (relative ones resolved)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    nodes = tree.body if module_level_only else list(ast.walk(tree))
    found = []
    for node in nodes:
        if isinstance(node, ast.Import):
            found.extend((alias.name, []) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            found.append((module, [alias.name for alias in node.names]))
    return found


def _resolve(module: str, names: list[str], known: dict[str, Path]) -> list[str]:
    """The project modules an import statement loads (``from pkg import mod`` loads ``pkg.mod``)."""
    targets = [module] if module in known else []
    targets += [f"{module}.{name}" for name in names if f"{module}.{name}" in known]
    return targets


def test_clr_lib_never_imports_clr_book():
    offenders = [
        f"{name} imports {module}"
        for name, path in _modules().items() if name.startswith("clr_lib")
        for module, _ in _imports(name, path, module_level_only=False) if module.split(".")[0] == "clr_book"
    ]
    assert not offenders


def test_module_level_imports_form_no_cycle():
    known = _modules()
    graph = {name: {target for module, names in _imports(name, path, module_level_only=True)
                    for target in _resolve(module, names, known) if target != name}
             for name, path in known.items()}
    state: dict[str, str] = {}

    def visit(node: str, trail: list[str]) -> None:
        state[node] = "open"
        for target in sorted(graph[node]):
            if state.get(target) == "open":
                pytest.fail("import cycle: " + " -> ".join([*trail[trail.index(target):], target]))
            if target not in state:
                visit(target, [*trail, target])
        state[node] = "done"

    for node in sorted(graph):
        if node not in state:
            visit(node, [node])


def test_no_module_imports_another_modules_private_names():
    offenders = [
        f"{name}: from {module} import {imported}"
        for name, path in _modules().items()
        for module, names in _imports(name, path, module_level_only=False)
        for imported in names if imported.startswith("_") and module.split(".")[0] in PACKAGES
    ]
    assert not offenders


def test_import_clr_lib_loads_numpy_only():
    code = ("import sys, clr_lib; clr_lib.cyclic(0.001, 0.006, 2000)(5000); "
            "print(sorted(m for m in ('torch', 'matplotlib', 'ipywidgets', 'clr_book') if m in sys.modules))")
    completed = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    assert completed.stdout.strip() == "[]"


def test_public_names_of_clr_lib():
    import clr_lib

    assert sorted(clr_lib.__all__) == sorted([
        "CYCLIC_MODES", "WINDOW_SHAPES", "Schedule", "constant", "cosine_warm_restarts", "cyclic", "cyclic_momentum",
        "decay", "exponential_decay", "one_cycle", "one_cycle_momentum", "scaled", "sequence", "step_decay",
        "warmup", "CyclicLR", "OneCycleLR", "ScheduleLR", "lr_range_test", "RangeTestResult", "LRSuggestion",
    ])
    assert all(getattr(clr_lib, name) is not None for name in clr_lib.__all__)


def test_the_wheel_ships_both_packages_and_no_lab_code_in_clr_lib():
    assert not (ROOT / "clr_lib" / "experiments").exists()
    assert not any((ROOT / "clr_lib" / f"{name}.py").exists() for name in ("data", "models", "train", "toy_problems"))
    pyproject = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    assert 'include = ["clr_lib*", "clr_book*"]' in pyproject
