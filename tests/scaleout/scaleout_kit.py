"""Several `citygate-collector serve` processes behind a real HAProxy, on one PostgreSQL schema."""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import zlib
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import orjson
from aiohttp import web

from citygate_wire.batch import PATH
from collector.live import CHANGES
from collector.store_pg import split_schema
from simulators.procs import free_port, wait_tcp

CLI = str(Path(sys.executable).parent / "citygate-collector")
LISTENING = re.compile(r"citygate-collector listening on (http://\S+)")
TS0 = 1_764_547_200_000  # 2025-12-01T00:00:00Z
COMMUNE = "21231"


async def listening(*apps: web.Application, timeout_s: float = 30) -> None:
    """Once every app's LISTEN connection is up (its streams then stop polling)."""
    deadline = time.monotonic() + timeout_s
    while any(app[CHANGES].polling for app in apps):
        assert time.monotonic() < deadline, "the instances did not LISTEN"
        await asyncio.sleep(0.05)


async def fetch(url: str, sql: str) -> list[asyncpg.Record]:
    """Rows of `sql` on the PostgreSQL schema of `url`."""
    dsn, schema = split_schema(url)
    conn = await asyncpg.connect(dsn, server_settings={"search_path": schema or "public"})
    try:
        return await conn.fetch(sql)
    finally:
        await conn.close()


def haproxy_binary() -> str:
    found = shutil.which("haproxy") or "/usr/sbin/haproxy"
    if not Path(found).exists():
        raise AssertionError("HAProxy is needed by these tests (apt install haproxy)")
    return found


class Instance:
    """One collector process; `kill9()` and `start()` again keep its port and its MQTT client id."""

    def __init__(self, name: str, db_url: str, folder: Path, *extra: str, env: Mapping[str, str] | None = None) -> None:
        self.name = name
        self.db_url = db_url
        self.port = free_port()
        self.extra = extra
        self.env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
        self.log = folder / f"{name}.log"
        self.proc: subprocess.Popen[str] | None = None
        self.url = f"http://127.0.0.1:{self.port}"

    def start(self, timeout_s: float = 90) -> None:
        with self.log.open("a") as err:
            self.proc = subprocess.Popen([CLI, "serve", "--db", self.db_url, "--port", str(self.port), *self.extra],
                                         stdout=subprocess.PIPE, stderr=err, text=True, env=self.env)
        assert self.proc.stdout is not None
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            if not line:
                raise AssertionError(f"{self.name} exited before listening: {self.log.read_text()[-3000:]}")
            if LISTENING.match(line.strip()):
                return
        raise AssertionError(f"{self.name} did not listen in time")

    def kill9(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=30)

    def stop(self) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=30)
        if self.proc.stdout is not None:
            self.proc.stdout.close()

    def logged(self, text: str) -> int:
        return self.log.read_text(errors="replace").count(text) if self.log.exists() else 0


def haproxy_config(port: int, servers: Sequence[tuple[str, int]], stats_port: int | None = None) -> str:
    """The HAProxy in front of the instances, as docs/scaling.md gives it (ports and timeouts for a test)."""
    lines = [
        "global", "    maxconn 4000",
        "defaults", "    mode http", "    option redispatch", "    retries 3", "    retry-on conn-failure",
        "    timeout connect 2s", "    timeout client 120s", "    timeout server 120s", "    timeout tunnel 1h",
        "frontend collectors", f"    bind 127.0.0.1:{port}", "    default_backend collector",
        "backend collector", "    balance roundrobin", "    option httpchk GET /metrics",
        "    default-server inter 500ms fall 2 rise 1 on-marked-down shutdown-sessions",
    ]
    lines += [f"    server {name} 127.0.0.1:{p} check" for name, p in servers]
    return "\n".join(lines) + "\n"


class HAProxy:
    def __init__(self, folder: Path, servers: Sequence[tuple[str, int]]) -> None:
        self.port = free_port()
        self.folder = folder
        self.config = folder / "haproxy.cfg"
        self.config.write_text(haproxy_config(self.port, servers))
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        check = subprocess.run([haproxy_binary(), "-c", "-f", str(self.config)], capture_output=True, text=True)
        assert check.returncode == 0, check.stdout + check.stderr
        self.proc = subprocess.Popen([haproxy_binary(), "-db", "-f", str(self.config)],
                                     stdout=subprocess.DEVNULL, stderr=(self.folder / "haproxy.log").open("w"))
        wait_tcp("127.0.0.1", self.port, 20)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=20)


def sample(seq: int, device: str = "lamp-1") -> dict[str, Any]:
    return {"seq": seq, "kind": "sample", "device": device, "ts_ms": TS0 + seq * 1000,
            "values": {"level_pct": 70, "power_w": 61.5}}


def batch_body(gateway: str, records: Sequence[Mapping[str, Any]]) -> bytes:
    c = zlib.compressobj(6, wbits=31)
    raw = orjson.dumps({"v": 1, "gateway": gateway, "commune": COMMUNE, "records": list(records)})
    return c.compress(raw) + c.flush()


class Uploader:
    """A gateway's uploader as the agent does it: a batch is sent again, the same records, until acknowledged."""

    def __init__(self, session: aiohttp.ClientSession, url: str, name: str, token: str) -> None:
        self.session, self.url, self.name = session, url, name
        self.headers = {"Authorization": f"Bearer {token}", "Content-Encoding": "gzip",
                        "Content-Type": "application/json"}
        self.acked = 0  # records acknowledged
        self.failures: list[str] = []
        self.retry_after: list[float] = []

    async def send(self, body: bytes, n: int, on_ack: Callable[[], None] = lambda: None) -> dict[str, Any]:
        while True:
            try:
                async with self.session.post(self.url + PATH, data=body, headers=self.headers) as resp:
                    payload = await resp.read()
                    if resp.status == 200:
                        doc: dict[str, Any] = orjson.loads(payload)
                        self.acked += n
                        on_ack()
                        return doc
                    self.failures.append(f"{resp.status}")
                    wait = float(resp.headers.get("Retry-After", "0.2"))
                    if resp.status == 503:
                        self.retry_after.append(wait)
            except (TimeoutError, aiohttp.ClientError, OSError) as exc:
                self.failures.append(type(exc).__name__)
                wait = 0.2
            await asyncio.sleep(wait)
