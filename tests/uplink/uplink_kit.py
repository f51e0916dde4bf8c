"""Shared by the uplink tests: a real collector (SQLite store, aiohttp on a free port) with one registered gateway."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import aiohttp

from collector.app import create_app, start
from collector.store_sqlite import SqliteStore
from collector.tokens import hash_token, new_token

GATEWAY = "gw-uplink-1"
COMMUNE = "21231"


@dataclass
class Collector:
    url: str
    token: str
    store: SqliteStore
    session: aiohttp.ClientSession

    async def post(self, body: bytes, encoding: str) -> tuple[int, str, dict[str, object]]:
        """POST a batch body as sent; (status, content type, JSON answer)."""
        headers = {"Authorization": f"Bearer {self.token}", "Content-Type": "application/json",
                   "Content-Encoding": encoding}
        async with self.session.post(f"{self.url}/api/v1/batches", data=body, headers=headers) as resp:
            return resp.status, resp.content_type, await resp.json(content_type=None)


@asynccontextmanager
async def real_collector(folder: Path) -> AsyncIterator[Collector]:
    async with SqliteStore(folder / "collector.db") as store:
        token = new_token()
        await store.add_gateway(GATEWAY, COMMUNE, hash_token(token))
        runner, url = await start(create_app(store, max_body_bytes=1_000_000), "127.0.0.1", 0)
        try:
            async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30),
                                             auto_decompress=False) as session:
                yield Collector(url, token, store, session)
        finally:
            await runner.cleanup()
