from __future__ import annotations

import math

import pytest

from hpcsuite.core.partition import BLOCK_ELEMENTS, Layout, owned, split


@pytest.mark.parametrize("n,parts", [(0, 1), (0, 4), (1, 4), (10, 3), (10, 10), (7, 10), (1000, 7)])
def test_split_covers_all_items_once_and_is_balanced(n, parts):
    counts, displs = split(n, parts)
    assert sum(counts) == n
    assert max(counts) - min(counts) <= 1
    assert displs == [sum(counts[:i]) for i in range(parts)]
    assert [owned(n, parts, i) for i in range(parts)] == [
        (d, d + c) for c, d in zip(counts, displs)
    ]


def test_split_gives_the_extra_items_to_the_first_runs():
    assert split(10, 3) == ([4, 3, 3], [0, 4, 7])


@pytest.mark.parametrize("bad", [(-1, 2), (3, 0)])
def test_split_rejects_bad_arguments(bad):
    with pytest.raises(ValueError):
        split(*bad)


def test_owned_rejects_a_rank_outside_the_job():
    with pytest.raises(ValueError, match="outside"):
        owned(10, 3, 3)


def test_default_layout_does_not_depend_on_rank_count():
    layout = Layout.for_shape((10000, 10000))
    assert layout.block_rows == BLOCK_ELEMENTS // 10000 == 52
    assert layout.nblocks == 193
    assert layout.block_range(192) == (9984, 10000)


@pytest.mark.parametrize(
    "shape", [(10000, 10000), (1001, 37), (5,), (3, 4, 5), (2**20 + 3,), (1, 1)]
)
@pytest.mark.parametrize("size", [1, 2, 3, 4, 8, 13])
def test_ranks_own_contiguous_whole_blocks_covering_every_row_once(shape, size):
    layout = Layout.for_shape(shape)
    counts, displs = layout.row_counts(size)
    assert sum(counts) == shape[0]
    seen = []
    for rank in range(size):
        start, stop = layout.rank_rows(size, rank)
        assert (stop - start, start) == (counts[rank], displs[rank])
        local = layout.local_blocks(size, rank)
        # Local blocks tile the rank's rows exactly, in order.
        assert sum(b - a for _, a, b in local) == stop - start
        for blk, a, b in local:
            assert layout.block_range(blk) == (start + a, start + b)
            seen.append(blk)
    assert seen == list(range(layout.nblocks))


def test_more_ranks_than_blocks_leaves_ranks_empty():
    layout = Layout.for_shape((5, 3))
    assert layout.nblocks == 1
    assert layout.rank_rows(4, 0) == (0, 5)
    for rank in range(1, 4):
        start, stop = layout.rank_rows(4, rank)
        assert start == stop
        assert layout.local_blocks(4, rank) == []


def test_blocks_are_near_the_target_size():
    layout = Layout.for_shape((12345, 678))
    assert layout.block_rows * 678 <= BLOCK_ELEMENTS < (layout.block_rows + 1) * 678
    assert layout.row_elements == 678 and math.prod(layout.shape) == 12345 * 678


@pytest.mark.parametrize("shape", [(), (0, 3), (3, -1)])
def test_layout_rejects_empty_shapes(shape):
    with pytest.raises(ValueError):
        Layout.for_shape(shape)
