"""The plain leg collects without the optional extras: a module that needs torch skips
itself with a reason (and fails only in CI, which installs every extra)."""

from __future__ import annotations

import os
import subprocess
import sys

from conftest import ROOT

#: Put first on sys.path of the child: makes ``import torch`` fail as where it is absent.
NO_TORCH = """import sys
class _NoTorch:
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] == "torch":
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
sys.meta_path.insert(0, _NoTorch())
"""


def test_the_plain_leg_collects_without_torch(tmp_path):
    (tmp_path / "sitecustomize.py").write_text(NO_TORCH)
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(tmp_path), env.get("PYTHONPATH")]))
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "--collect-only",
            "-q",
            "-p",
            "no:cacheprovider",
            "-m",
            "not mpi and not gpu and not timing",
            "tests",
        ],
        capture_output=True,
        text=True,
        timeout=240,
        cwd=ROOT,
        env=env,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    assert "could not import 'torch'" in proc.stdout  # the blocker worked: train modules skipped
    assert "test_train_data.py::" in proc.stdout  # the sampler is pure: it still collects
