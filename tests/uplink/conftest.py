"""Uplink test fixtures: a real collector with one registered gateway (uplink_kit)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from uplink_kit import Collector, real_collector


@pytest.fixture
async def collector(tmp_path: Path) -> AsyncIterator[Collector]:
    async with real_collector(tmp_path) as running:
        yield running
