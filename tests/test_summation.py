from __future__ import annotations

import math
import random
from fractions import Fraction

import numpy as np
import pytest

from hpcsuite.core.summation import exact_sum, exact_sum_rows


def test_exact_sum_is_correctly_rounded_where_naive_summation_is_not():
    values = [1e16, 1.0, -1e16, 1.0] * 10
    assert sum(values) != 20.0
    assert exact_sum(values) == 20.0


def test_exact_sum_does_not_depend_on_grouping():
    rng = random.Random(7)
    values = [rng.uniform(-1, 1) * 10 ** rng.randint(-8, 8) for _ in range(1000)]
    truth = float(sum(Fraction(v) for v in values))
    assert exact_sum(values) == truth
    # Rounded partials of any grouping, combined exactly, stay within one rounding per
    # partial of the truth - not the same bits, which is why the kernels fix the
    # grouping (blocks, whatever the rank count) instead of relying on exact combination.
    for chunk in (3, 64):
        grouped = [exact_sum(values[i : i + chunk]) for i in range(0, len(values), chunk)]
        assert abs(exact_sum(grouped) - truth) <= math.ulp(truth) * len(grouped)


@pytest.mark.parametrize(
    "values,expected",
    [
        ([1.0, math.nan], math.nan),
        ([math.inf, 1.0], math.inf),
        ([math.inf, -math.inf], math.nan),
        ([1.7e308, 1.7e308], math.inf),
        ([-1.7e308, -1.7e308], -math.inf),
    ],
)
def test_exact_sum_propagates_specials_like_numpy(values, expected):
    got = exact_sum(values)
    with np.errstate(all="ignore"):
        numpy_sum = float(np.sum(values))
    if math.isnan(expected):
        assert math.isnan(got) and math.isnan(numpy_sum)
    else:
        assert got == expected == numpy_sum


def test_exact_sum_rows_sums_each_column_exactly():
    parts = np.array([[1e16, 1.0, 2.0], [1.0, 2.0, math.nan], [-1e16, 3.0, 4.0]])
    got = exact_sum_rows(parts)
    assert got[0] == 1.0 and got[1] == 6.0 and math.isnan(got[2])


def test_exact_sum_rows_keeps_trailing_shape():
    parts = np.ones((4, 2, 3))
    assert exact_sum_rows(parts).shape == (2, 3)
    assert np.all(exact_sum_rows(parts) == 4.0)
