"""The answer cache: identical reads in flight share one computation, and an expired answer is
served to identical reads only while one request recomputes it."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx

from api.app import create_app
from api.registry import Registry
from storage.query_duckdb import DuckDBQuery
from tests.api.conftest import WINDOW, api_settings, headers

URL = "/api/v1/coverage/summary"


def test_identical_reads_at_once_are_computed_once(store: Path, tmp_path: Path) -> None:
    backend = DuckDBQuery(path=store)
    registry = Registry(tmp_path / "registry.sqlite")
    app = create_app(api_settings(api={"cache_ttl_s": 60.0}), backend=backend, registry=registry)

    async def both() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://api.test") as c:
            return list(
                await asyncio.gather(*(c.get(URL, params=WINDOW, headers=headers("admin")) for _ in range(3)))
            )

    try:
        first, second, third = asyncio.run(both())
        assert first.status_code == 200 and first.json()["items"]
        assert second.content == first.content and third.content == first.content
        # The first computed it; the two that arrived meanwhile waited for its answer.
        assert [r.headers.get("x-cache") for r in (first, second, third)] == [None, "hit", "hit"]
    finally:
        backend.close()
        registry.close()
