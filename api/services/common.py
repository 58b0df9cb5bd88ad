"""Small helpers shared by the services: grouping rows by key, NaN-free numbers."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import numpy as np


def groups(*cols: np.ndarray[Any, Any]) -> dict[tuple[str, str, str], np.ndarray[Any, Any]]:
    """Row indices per distinct (first, second, third) column value, in order of appearance."""
    idx: dict[tuple[str, str, str], list[int]] = defaultdict(list)
    for i, key in enumerate(zip(*(c.tolist() for c in cols), strict=True)):
        idx[(str(key[0]), str(key[1]), str(key[2]))].append(i)
    return {k: np.array(v, dtype=np.int64) for k, v in idx.items()}


def as_int(x: Any) -> int | None:
    """``x`` as an int; None for None or NaN."""
    return None if x is None or x != x else int(x)


def as_float(x: Any) -> float | None:
    """``x`` as a float; None for None or NaN."""
    return None if x is None or x != x else float(x)
