"""Collector web fixtures: every store test runs on SQLite and on PostgreSQL (never skipped)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest
from web_testkit import Web

from collector.app import create_app, start
from collector.reports.ratelimit import RateLimits, ReportLimiter
from collector.reports.routes import LIMITER
from collector.store import Store


@pytest.fixture
async def web(store: Store) -> AsyncIterator[Web]:
    app = create_app(store)
    # these tests send many reports from one address: the limits have their own tests
    app[LIMITER] = ReportLimiter(RateLimits(per_address=0, per_email=0))
    runner, url = await start(app, "127.0.0.1", 0)
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as session:
            yield Web(url, store, session)
    finally:
        await runner.cleanup()
