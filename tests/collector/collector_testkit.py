"""Helpers of the collector tests: build, gzip and post batches; run the CLI and `serve` as subprocesses."""

from __future__ import annotations

import functools
import os
import re
import struct
import subprocess
import sys
import time
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import orjson

from citygate_wire.batch import PATH
from collector.model import Gateway
from collector.store import Store
from collector.tokens import hash_token, new_token

TS0 = 1_764_547_200_000  # 2025-12-01T00:00:00Z
CLI = str(Path(sys.executable).parent / "citygate-collector")


def gzip(data: bytes) -> bytes:
    c = zlib.compressobj(6, wbits=31)
    return c.compress(data) + c.flush()


@functools.cache
def gzip_bomb() -> bytes:
    """1 GiB of zeros, gzipped (about 1 MB), built in half a second instead of five, and once per session.

    A full flush makes each MiB's deflate output the same, so one compressed MiB is repeated; the
    gzip header and trailer (CRC-32 and length of the 1 GiB) are written around it."""
    mib, n = bytes(1 << 20), 1024
    c = zlib.compressobj(9, zlib.DEFLATED, -15)  # raw deflate: the gzip framing is ours
    first = c.compress(mib) + c.flush(zlib.Z_FULL_FLUSH)
    again = c.compress(mib) + c.flush(zlib.Z_FULL_FLUSH)
    crc = 0
    for _ in range(n):
        crc = zlib.crc32(mib, crc)
    header = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\xff"  # gzip, deflate, no name, no mtime, max compression
    return header + first + again * (n - 1) + c.flush() + struct.pack("<II", crc, (n << 20) & 0xFFFFFFFF)


def sample(seq: int, device: str = "lamp-1", ts_ms: int | None = None, **values: Any) -> dict[str, Any]:
    return {"seq": seq, "kind": "sample", "device": device, "ts_ms": TS0 + seq * 1000 if ts_ms is None else ts_ms,
            "values": values or {"level_pct": 70, "power_w": 61.5}}


def event(seq: int, code: str = "lamp_failure", severity: str = "major", device: str = "lamp-1",
          ts_ms: int | None = None, **detail: Any) -> dict[str, Any]:
    return {"seq": seq, "kind": "event", "device": device, "ts_ms": TS0 + seq * 1000 if ts_ms is None else ts_ms,
            "code": code, "severity": severity, "detail": detail}


def batch_body(gateway: str, records: Sequence[Mapping[str, Any]], commune: str | None = "21231") -> bytes:
    return orjson.dumps({"v": 1, "gateway": gateway, "commune": commune, "records": list(records)})


@dataclass
class Client:
    """A real HTTP client against a running collector."""

    url: str
    session: aiohttp.ClientSession

    async def post(self, body: bytes, token: str | None, *, gzipped: bool = True,
                   headers: Mapping[str, str] | None = None) -> tuple[int, str, Any]:
        h = {"Content-Type": "application/json"}
        if gzipped:
            h["Content-Encoding"] = "gzip"
            body = gzip(body)
        if token is not None:
            h["Authorization"] = f"Bearer {token}"
        h.update(headers or {})
        async with self.session.post(self.url + PATH, data=body, headers=h) as resp:
            raw = await resp.read()
            return resp.status, resp.content_type, orjson.loads(raw) if raw else None

    async def get(self, path: str) -> tuple[int, str, Any]:
        async with self.session.get(self.url + path) as resp:
            return resp.status, resp.content_type, orjson.loads(await resp.read())


@dataclass
class Running:
    store: Store
    client: Client

    async def add_gateway(self, name: str = "gw-dijon-0001", commune: str = "21231") -> tuple[Gateway, str]:
        token = new_token()
        gateway = await self.store.add_gateway(name, commune, hash_token(token))
        return gateway, token


def assert_problem(status: int, content_type: str, doc: Any, expected_status: int) -> None:
    """An RFC 9457 problem body with the expected status."""
    assert status == expected_status, doc
    assert content_type == "application/problem+json"
    assert isinstance(doc, dict)
    assert doc["status"] == expected_status
    for member in ("type", "title", "detail"):
        assert isinstance(doc[member], str) and doc[member], member


# -- the collector as a subprocess (CLI `serve`) ---------------------------------------------

LISTENING = re.compile(r"^citygate-collector listening on (http://\S+)$")


class ServeProcess:
    def __init__(self, db_url: str, log: Path, *extra: str) -> None:
        self.log = log
        with log.open("a") as err:  # a file, not a pipe: nobody has to drain it
            self.proc = subprocess.Popen(
                [CLI, "serve", "--db", db_url, "--port", "0", *extra],
                stdout=subprocess.PIPE, stderr=err, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"},
            )
        self.url = self._wait_ready(timeout_s=60)

    def _wait_ready(self, timeout_s: float) -> str:
        assert self.proc.stdout is not None
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            if not line:
                raise AssertionError(f"collector exited before listening: {self.log.read_text()}")
            m = LISTENING.match(line.strip())
            if m:
                return m.group(1)
        raise AssertionError("collector did not print its listening line in time")

    def kill9(self) -> None:
        self.proc.kill()
        self.proc.wait(timeout=30)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=30)
        if self.proc.stdout is not None:
            self.proc.stdout.close()

    def peak_rss_kib(self) -> int:
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
        raise AssertionError("no VmHWM in /proc status")


def cli(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run([CLI, *args], capture_output=True, text=True, timeout=60)
    if check:
        assert result.returncode == 0, result.stderr
    return result
