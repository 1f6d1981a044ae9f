"""The exact distributed sampler: every sample once per epoch, weights of short steps. Pure."""

import os
import subprocess
import sys

import numpy as np
import pytest

from hpcsuite.train.data import ExactSampler


@pytest.mark.parametrize("n,size,batch", [(10, 3, 2), (1797, 4, 32), (5, 8, 1), (64, 2, 32)])
def test_every_sample_once_per_epoch_and_step_totals_add_up(n, size, batch):
    samplers = [ExactSampler(n, size, r, batch, seed=7) for r in range(size)]
    for epoch in (0, 1):
        seen = np.concatenate([s.batch_indices(epoch, k) for s in samplers for k in range(s.steps)])
        assert sorted(seen.tolist()) == list(range(n))
        for k in range(samplers[0].steps):
            assert samplers[0].step_total(k) == sum(
                len(s.batch_indices(epoch, k)) for s in samplers
            )
    if n >= 64:  # reshuffled per epoch (tiny shards may repeat by chance)
        assert not np.array_equal(samplers[0].indices(0), samplers[0].indices(1))


def test_bundled_digits_are_scikit_learns_without_importing_it():
    # In a fresh interpreter: reading the digits must not import scikit-learn (2.3 s a rank).
    code = (
        "import sys; from hpcsuite.train.data import digits; x, y = digits(); "
        "print(x.shape, y.shape, 'sklearn' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["(1797,", "64)", "(1797,)", "False"], out.stdout
    if os.environ.get("CI") != "true":
        pytest.importorskip("sklearn")
    from sklearn.datasets import load_digits

    from hpcsuite.train.data import digits

    x, y = digits()
    ref = load_digits()
    assert np.array_equal(x, (ref.data / 16.0).astype(np.float32))
    assert np.array_equal(y, ref.target) and y.dtype == np.int64 and x.dtype == np.float32
