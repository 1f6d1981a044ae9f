"""The pure parts of hpcsuite.mean: local, partials, combine, compare."""

from __future__ import annotations

import math

import numpy as np
import pytest

from hpcsuite import mean


@pytest.mark.parametrize("dtype", ["float64", "float32", "int32", "int64", "uint8", "bool"])
@pytest.mark.parametrize("sizes", [[7, 7, 7, 3], [5], [4, 4], [6, 6, 6, 6, 6, 1]])
def test_batched_partials_have_the_bits_of_block_by_block_local(dtype, sizes):
    rng = np.random.default_rng(4)
    rows = (rng.random((sum(sizes), 9, 13)) * 1000).astype(dtype)
    spans, start = [], 0
    for s in sizes:
        spans.append((start, start + s))
        start += s
    got = mean.partials(rows, spans, np, None)
    one_by_one = np.array([mean.local(rows[a:b], np, None) for a, b in spans])
    assert got.dtype == np.float64 and got.tobytes() == one_by_one.tobytes()


@pytest.mark.parametrize("axis,shape", [(None, (0,)), (0, (0, 9, 13)), (1, (0, 13))])
def test_a_rank_without_blocks_has_empty_partials_of_the_right_shape(axis, shape):
    assert mean.partials(np.empty((0, 9, 13)), [], np, axis).shape == shape


def test_partials_along_axes_stack_in_block_order():
    rows = np.arange(60, dtype=np.float64).reshape(6, 10)
    spans = [(0, 4), (4, 6)]
    assert np.array_equal(mean.partials(rows, spans, np, 0), [rows[:4].sum(0), rows[4:].sum(0)])
    assert np.array_equal(mean.partials(rows, spans, np, 1), rows.sum(1))


def test_combine_divides_exact_sums_by_the_counts():
    parts = np.array([1e16, 1.0, -1e16, 1.0])
    assert mean.combine(parts, None, (2, 2)) == 0.5  # naive summation would say 0.0
    cols = np.array([[1.0, 2.0], [3.0, 4.0]])
    assert np.array_equal(mean.combine(cols, 0, (4, 2)), [1.0, 1.5])
    assert np.array_equal(mean.combine(np.array([6.0, 8.0]), 1, (2, 4)), [1.5, 2.0])


def test_compare_allows_rounding_and_matches_specials():
    assert mean.compare(1.0 + 1e-15, 1.0, 1.0) == (True, pytest.approx(1e-15, rel=0.2))
    assert not mean.compare(1.0 + 1e-9, 1.0, 1.0)[0]
    assert mean.compare(math.nan, math.nan, 1.0)[0]
    assert mean.compare(np.array([math.inf, 1.0]), np.array([math.inf, 1.0]), 1.0)[0]
    assert not mean.compare(math.inf, -math.inf, 1.0)[0]
    assert not mean.compare(math.nan, 1.0, 1.0)[0]
