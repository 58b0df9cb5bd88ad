"""ReadCache: entries expire after the TTL unless their data version still stands; identical
calls during a computation share it (single flight); a TTL of 0 disables it."""

from __future__ import annotations

import threading

import pytest

from api.cache import ReadCache


def test_an_expired_entry_is_reused_while_its_data_version_stands() -> None:
    cache = ReadCache(ttl_s=1e-9)  # every entry is expired by the next call
    calls: list[int] = []

    def compute() -> int:
        calls.append(1)
        return len(calls)

    assert cache.get_or_compute("k", compute, version=("rows", 10)) == 1
    assert cache.get_or_compute("k", compute, version=("rows", 10)) == 1  # same data: same answer
    assert cache.get_or_compute("k", compute, version=("rows", 11)) == 2  # new data: recomputed
    assert cache.get_or_compute("k", compute) == 3  # no version: the TTL alone decides
    assert (cache.hits, cache.misses) == (1, 3)


def test_a_ttl_of_zero_computes_every_time_and_keeps_nothing() -> None:
    cache = ReadCache(ttl_s=0)
    counter = iter(range(3))
    assert [cache.get_or_compute("k", lambda: next(counter)) for _ in range(3)] == [0, 1, 2]
    cache.put("k", 99)
    assert cache.get("k") is None


def test_identical_calls_during_a_computation_share_it() -> None:
    cache = ReadCache(ttl_s=60)
    started, release = threading.Event(), threading.Event()
    calls: list[str] = []

    def slow() -> str:
        calls.append("slow")
        started.set()
        assert release.wait(10)
        return "answer"

    results: list[str] = []
    first = threading.Thread(target=lambda: results.append(cache.get_or_compute("k", slow)))
    first.start()
    assert started.wait(10)
    second = threading.Thread(target=lambda: results.append(cache.get_or_compute("k", slow)))
    second.start()
    release.set()
    first.join(10)
    second.join(10)
    assert results == ["answer", "answer"] and calls == ["slow"]


def test_a_failed_computation_lets_the_next_caller_compute() -> None:
    cache = ReadCache(ttl_s=60)

    def fail() -> str:
        raise RuntimeError("database away")

    with pytest.raises(RuntimeError, match="database away"):
        cache.get_or_compute("k", fail)
    assert cache.get_or_compute("k", lambda: "back") == "back"


def test_a_stale_entry_is_answered_while_one_background_refresh_replaces_it() -> None:
    cache = ReadCache(ttl_s=1e-9, stale_s=60)
    assert cache.get_or_compute("k", lambda: "old", version=1) == "old"
    started, release = threading.Event(), threading.Event()
    calls: list[str] = []

    def refresh() -> str:
        calls.append("refresh")
        started.set()
        assert release.wait(10)
        return "new"

    # The data changed (version 2): the old answer comes back at once, the refresh runs behind it.
    assert cache.get_or_compute("k", refresh, version=2) == "old"
    assert started.wait(10)
    assert cache.get_or_compute("k", refresh, version=2) == "old"  # one refresh at a time
    release.set()
    cache.close()  # waits for the refresh
    assert cache.get_or_compute("k", lambda: "recomputed", version=2) == "new"
    assert calls == ["refresh"] and cache.refresh_errors == 0


def test_a_failed_background_refresh_is_counted_and_the_next_caller_recomputes() -> None:
    cache = ReadCache(ttl_s=1e-9, stale_s=60)
    cache.get_or_compute("k", lambda: "old", version=1)

    def fail() -> str:
        raise RuntimeError("database away")

    assert cache.get_or_compute("k", fail, version=2) == "old"
    cache.close()
    assert cache.refresh_errors == 1
    assert cache.get_or_compute("k", lambda: "back", version=2) == "back"


def test_entries_are_bounded_by_bytes_least_recently_used_first() -> None:
    cache = ReadCache(ttl_s=60, max_entries=100, max_bytes=10, size_of=len)
    cache.put("a", b"xxxx")
    cache.put("b", b"yyyy")
    assert cache.get("a") == b"xxxx"  # get() does not reorder: a stays the least recently put
    cache.put("c", b"zzzz")  # 12 bytes > 10: the oldest entry goes
    assert cache.get("a") is None
    assert cache.get("b") == b"yyyy"
    assert cache.get("c") == b"zzzz"
    assert cache.bytes == 8
    cache.put("b", b"y")  # replacing an entry counts its new size only
    assert cache.bytes == 5


def test_a_value_heavier_than_the_budget_is_not_kept() -> None:
    cache = ReadCache(ttl_s=60, max_bytes=10, size_of=len)
    cache.put("small", b"s")
    cache.put("big", b"x" * 11)
    assert cache.get("big") is None
    assert cache.get("small") == b"s"
    assert cache.bytes == 1
    assert cache.get_or_compute("big2", lambda: b"y" * 11) == b"y" * 11  # answered all the same
    assert cache.get("big2") is None
