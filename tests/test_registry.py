"""hpcsuite.registry: every module's line says what the module is, and the suite, the
templates and the listing follow from it. Pure (no MPI job)."""

from __future__ import annotations

import importlib
import importlib.util

import pytest
from conftest import ROOT, python

from hpcsuite import registry, suite
from hpcsuite.registry import MODULES, SIZE_CLASSES

PARALLEL = [name for name, m in MODULES.items() if m.parallel]


def _parser(name):
    """The argument parser of ``python -m hpcsuite.NAME`` (a package's may be in its
    ``options`` or ``__main__`` module)."""
    module = importlib.import_module(f"hpcsuite.{name}")
    for part in ("options", "__main__"):
        if hasattr(module, "parser"):
            break
        if importlib.util.find_spec(f"hpcsuite.{name}.{part}") is not None:
            module = importlib.import_module(f"hpcsuite.{name}.{part}")
    return module.parser()


def test_the_derived_lists_follow_the_module_lines():
    assert registry.PARALLEL == tuple(PARALLEL)
    assert set(registry.SHAPED) | set(registry.GPU) <= set(PARALLEL)  # only jobs compute
    assert registry.SUITE == ("mean", "stream", "stencil", "matmul", "fft", "kmer", "montecarlo")
    assert registry.GPU == tuple(n for n in MODULES if MODULES[n].gpu)
    for name, m in MODULES.items():
        assert m.summary and "\n" not in m.summary, name
        assert (m.template is not None) == m.parallel, name  # every job has a template


@pytest.mark.parametrize("name", registry.SUITE)
def test_suite_sizes_are_valid_command_lines_of_their_kernel(name):
    m = MODULES[name]
    assert m.parallel and set(m.suite_sizes) == set(SIZE_CLASSES)
    for size in SIZE_CLASSES:
        _parser(name).parse_args([*m.suite_sizes[size], "--check"])  # exits 2 on a bad option
        assert suite.SIZES[size][name] == list(m.suite_sizes[size])
    assert (name in suite.CPU_ONLY) == (not m.gpu)


@pytest.mark.parametrize("name", PARALLEL)
def test_shaped_modules_are_those_that_take_a_shape(name):
    assert ("--shape" in _parser(name).format_help()) == MODULES[name].shaped, name


def test_every_template_exists_and_every_template_belongs_to_a_module():
    named = {path for m in MODULES.values() for path in m.templates}
    on_disk = {f"slurm/{p.name}" for p in (ROOT / "slurm").glob("*.sbatch")}
    assert named == on_disk
    assert MODULES["mean"].templates == ("slurm/mean.sbatch", "slurm/mean-gpu.sbatch")
    assert MODULES["kmer"].templates == ("slurm/kmer.sbatch",) and MODULES["report"].templates == ()


def test_python_m_hpcsuite_lists_every_module_with_its_summary():
    proc = python("-m", "hpcsuite", timeout=60)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[1:-1] == [f"  {name:<12} {m.summary}" for name, m in MODULES.items()]
