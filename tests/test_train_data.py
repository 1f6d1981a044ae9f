"""The exact distributed sampler: every sample once per epoch, weights of short steps. Pure."""

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
