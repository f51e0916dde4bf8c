"""Helpers of the collector web tests: a real store, a real collector app on a free port, a real HTTP client."""

from __future__ import annotations

import secrets
import time
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import orjson

from citygate_wire.batch import PATH
from collector.model import Gateway
from collector.store import Store
from collector.tokens import hash_token, new_token

OPERATOR_TOKEN_PREFIX = "cop_"


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def gzip(data: bytes) -> bytes:
    c = zlib.compressobj(6, wbits=31)
    return c.compress(data) + c.flush()


def sample(seq: int, device: str, ts_ms: int, **values: Any) -> dict[str, Any]:
    return {"seq": seq, "kind": "sample", "device": device, "ts_ms": ts_ms, "values": values}


def event(seq: int, device: str, ts_ms: int, code: str, severity: str = "major", **detail: Any) -> dict[str, Any]:
    return {"seq": seq, "kind": "event", "device": device, "ts_ms": ts_ms, "code": code, "severity": severity,
            "detail": detail}


@dataclass
class Reply:
    status: int
    content_type: str
    text: str
    headers: Mapping[str, str]

    @property
    def doc(self) -> Any:
        return orjson.loads(self.text)


@dataclass
class Cabinet:
    gateway: Gateway
    token: str
    seq: int = 0


@dataclass
class Web:
    """A collector served on 127.0.0.1 with its store, and a client session."""

    url: str
    store: Store
    session: aiohttp.ClientSession
    cabinets: dict[str, Cabinet] = field(default_factory=dict)

    async def request(self, method: str, path: str, *, headers: Mapping[str, str] | None = None,
                      **kwargs: Any) -> Reply:
        async with self.session.request(method, self.url + path, headers=headers, **kwargs) as resp:
            return Reply(resp.status, resp.content_type, await resp.text(), resp.headers)

    async def get(self, path: str, **kwargs: Any) -> Reply:
        return await self.request("GET", path, **kwargs)

    async def add_cabinet(self, name: str, commune: str, lat: float | None = None, lon: float | None = None,
                          cabinet: str | None = None) -> Cabinet:
        token = new_token()
        gw = await self.store.add_gateway(name, commune, hash_token(token), cabinet=cabinet, lat=lat, lon=lon)
        c = self.cabinets[name] = Cabinet(gw, token)
        return c

    async def upload(self, name: str, records: Sequence[dict[str, Any]]) -> Any:
        """POST a batch as the gateway would; the records' seq are assigned here, in order."""
        c = self.cabinets[name]
        numbered = []
        for r in records:
            c.seq += 1
            numbered.append({**r, "seq": c.seq})
        body = orjson.dumps({"v": 1, "gateway": name, "commune": c.gateway.commune, "records": numbered})
        headers = {"Content-Type": "application/json", "Content-Encoding": "gzip",
                   "Authorization": f"Bearer {c.token}"}
        async with self.session.post(self.url + PATH, data=gzip(body), headers=headers) as resp:
            doc = await resp.json()
            assert resp.status == 200, doc
            return doc

    async def add_operator(self, name: str = "alice") -> dict[str, str]:
        token = OPERATOR_TOKEN_PREFIX + secrets.token_urlsafe(24)
        await self.store.add_operator(name, hash_token(token), now_ms())
        return {"Authorization": f"Bearer {token}"}
