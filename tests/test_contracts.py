"""Import contracts of the package (DESIGN.md's "one rule"), checked over the AST of every
module in hpcsuite/, function-level imports included: who may import mpi4py and CuPy,
and which modules stay pure (testable without MPI or a device)."""

from __future__ import annotations

import ast
from functools import cache
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "hpcsuite"
#: The MPI layer, and train's communication module (Horovod's name); train's other modules
#: take MPI from hpcsuite.core.mpi.
MPI4PY_ALLOWED = {"hpcsuite.core.mpi", "hpcsuite.train.mpi_ops"}
CUPY_ALLOWED = {"hpcsuite.core.backend"}
#: Pure modules: neither they nor anything of hpcsuite they import reach these.
IMPURE = ("mpi4py", "cupy", "torch", "hpcsuite.core.mpi")
PURE = [
    "core.partition",
    "core.stats",
    "core.summation",
    "core.rng",
    "core.errors",
    "core.records",
    "core.staging",
    "predict.fit",
    "predict.comm",
    "predict.empirical",
    "predict.training",
    "predict.sections",
    "report.scaling",
    "report.runs",
    "report.series",
    "report.checks",
    "microbench.stats",
    "microbench.schedule",
]


def _name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


@cache
def imports(module: str) -> frozenset[str]:
    """Every module ``module`` imports, anywhere in it (``from a import b`` gives a and a.b)."""
    path = MODULES[module]
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1])
            source = node.module
            if node.level:  # relative: from the package, up level - 1
                source = f"{base}.{node.module}" if node.module else base
            found.add(source)
            found.update(f"{source}.{alias.name}" for alias in node.names)
    return frozenset(found)


def reaches(name: str, banned: str) -> bool:
    return name == banned or name.startswith(banned + ".")


def closure(module: str) -> set[str]:
    """``module`` and every hpcsuite module it loads, its packages' ``__init__`` included."""
    seen, todo = set(), [module]
    while todo:
        current = todo.pop()
        if current in seen or current not in MODULES:
            continue
        seen.add(current)
        parents = [current.rsplit(".", i)[0] for i in range(1, current.count(".") + 1)]
        todo += [m for m in (*imports(current), *parents) if m in MODULES]
    return seen


def offenders(allowed: set[str], banned: str) -> list[str]:
    found = (m for m in MODULES if any(reaches(i, banned) for i in imports(m)))
    return sorted(m for m in found if m not in allowed)


def test_the_checker_sees_imports_at_every_level():
    assert "mpi4py" in imports("hpcsuite.core.mpi")
    assert "cupy" in imports("hpcsuite.core.backend")  # function-level only
    assert "hpcsuite.core.mpi" in imports("hpcsuite.core.driver")  # from hpcsuite.core import mpi
    assert "hpcsuite.core.partition" in closure("hpcsuite.mean")


def test_only_the_mpi_layer_imports_mpi4py():
    assert offenders(MPI4PY_ALLOWED, "mpi4py") == [], "route MPI through hpcsuite.core.mpi"


def test_only_the_backend_imports_cupy():
    assert offenders(CUPY_ALLOWED, "cupy") == [], "take CuPy from core.backend (backend.xp)"


@pytest.mark.parametrize("module", PURE)
def test_pure_modules_reach_neither_mpi_nor_a_device_library(module):
    name = f"hpcsuite.{module}"
    assert name in MODULES, f"{name} is gone: update PURE"
    bad = sorted(
        {(m, i) for m in closure(name) for i in imports(m) for b in IMPURE if reaches(i, b)}
    )
    assert bad == [], f"{name} must stay pure; (module, import): {bad}"
