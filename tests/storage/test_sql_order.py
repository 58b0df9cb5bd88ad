"""The row order of the dead-zone samples: one packed key and radix sorts give lexsort's order."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from storage.query_duckdb import ranked_uints, sql_order


@pytest.mark.parametrize("sizes", [(1, 700, 3, 2, 31), (3, 5000, 9, 4, 200), (2, 1 << 40, 1 << 30, 2, 2)])
def test_sql_order_is_the_lexsort_order(sizes: tuple[int, ...]) -> None:
    rng = np.random.default_rng(len(sizes) + sizes[1] % 97)
    n = 100_000
    ranks = [rng.integers(0, min(s, 5000), n) for s in sizes]
    ranks[1][:3] = sizes[1] - 1  # the largest rank is there: the packed key spans the sizes
    ts_ms = rng.integers(0, 50, n)  # many rows equal in every key and the time
    got = sql_order(ranks, ts_ms)
    assert got.tolist() == np.lexsort((ts_ms, *reversed(ranks))).tolist()


def test_ranked_uints_rank_distinct_values_with_null_last() -> None:
    col = pa.chunked_array([[5, None, 1 << 63, 5], [2, 2, None]], pa.uint64())
    assert ranked_uints(col).tolist() == [1, 3, 2, 1, 0, 0, 3]
