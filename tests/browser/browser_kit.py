"""Helpers of the browser tests (tests/browser/conftest.py holds the fixtures): the collector as a
`serve --operator-login` subprocess on a SQLite file and what feeds it (the real batch API, the real
CLI), the login through the real form, the axe-core check, the horizontal-scroll check."""

from __future__ import annotations

import asyncio
import itertools
import os
import re
import subprocess
import sys
import time
import zlib
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import orjson
from playwright.async_api import Page

from citygate_wire.batch import PATH
from collector.store import open_store
from collector.tokens import hash_token, new_token

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests" / "collector_web"))
from cdp import chromium_path  # noqa: E402,F401  (the one place that finds the system Chromium)

ARTIFACTS = REPO / "test-artifacts" / "screenshots"
AXE = REPO / "collector" / "dashboard" / "assets" / "vendor" / "axe-core" / "axe.min.js"
#: the collector's CLI, from this checkout (the tests of a bare clone run its own code)
CLI = [sys.executable, "-c", "from collector.cli import main; main()"]
LISTENING = re.compile(r"citygate-collector listening on (http://\S+)")
TIMEOUT_MS = 30_000  # a loaded machine: every wait is for a condition, with room
SIZES = ((1920, 1080), (1366, 768), (390, 844))
_names = itertools.count(1)

#: what the fixtures give (conftest.py): new_page(width, height, lang), operator_login(page, roles),
#: shot(page, name), axe_check(page, exclude=())
NewPage = Callable[..., Awaitable[Page]]
OperatorLogin = Callable[..., Awaitable[str]]
Shot = Callable[[Page, str], Awaitable[Path]]
AxeCheck = Callable[..., Awaitable[list[dict[str, Any]]]]


def unique_name(prefix: str) -> str:
    """A name no other test of the session uses (gateways, operators)."""
    return f"{prefix}-{os.getpid() % 10_000:04d}{next(_names):03d}"


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def sample(device: str, ts_ms: int, **values: Any) -> dict[str, Any]:
    return {"kind": "sample", "device": device, "ts_ms": ts_ms, "values": values}


def event(device: str, ts_ms: int, code: str, severity: str = "major", **detail: Any) -> dict[str, Any]:
    return {"kind": "event", "device": device, "ts_ms": ts_ms, "code": code, "severity": severity, "detail": detail}


def run_cli(db_url: str, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run([*CLI, *args, "--db", db_url], capture_output=True, text=True, timeout=120, cwd=REPO)
    if check:
        assert result.returncode == 0, f"citygate-collector {' '.join(args)}: {result.stderr}"
    return result


@dataclass
class Gateway:
    name: str
    commune: str
    token: str
    seq: int = 0


@dataclass
class Collector:
    """A collector served by `serve --operator-login` (a subprocess) on a SQLite file."""

    url: str
    db_url: str
    session: aiohttp.ClientSession
    workdir: Path
    gateways: dict[str, Gateway] = field(default_factory=dict)

    async def add_gateway(self, name: str, commune: str = "21231", lat: float | None = None,
                          lon: float | None = None, cabinet: str | None = None) -> Gateway:
        """Register a gateway in the store (as `gateway add` does) and keep its token for uploads."""
        token = new_token()
        async with open_store(self.db_url) as store:
            await store.add_gateway(name, commune, hash_token(token), cabinet=cabinet, lat=lat, lon=lon)
        gw = self.gateways[name] = Gateway(name, commune, token)
        return gw

    async def upload(self, name: str, records: Sequence[dict[str, Any]]) -> Any:
        """POST a batch as the gateway would (its token, gzip); the records' seq are numbered here."""
        gw = self.gateways[name]
        numbered = []
        for r in records:
            gw.seq += 1
            numbered.append({**r, "seq": gw.seq})
        body = orjson.dumps({"v": 1, "gateway": name, "commune": gw.commune, "records": numbered})
        c = zlib.compressobj(6, wbits=31)
        headers = {"Content-Type": "application/json", "Content-Encoding": "gzip", "Authorization": f"Bearer {gw.token}"}
        async with self.session.post(self.url + PATH, data=c.compress(body) + c.flush(), headers=headers) as resp:
            doc = await resp.json()
            assert resp.status == 200, doc
            return doc

    def cli(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """Run `citygate-collector ARGS --db <this collector's database>`."""
        return run_cli(self.db_url, *args, check=check)

    async def add_operator(self, name: str, roles: Iterable[str] = ()) -> str:
        """`citygate-collector operator add NAME --role ...` (the real CLI); the operator's token."""
        token_file = self.workdir / f"{name}.token"
        args = ["operator", "add", name, "--token-file", str(token_file)]
        for role in roles:
            args += ["--role", role]
        await asyncio.to_thread(self.cli, *args)
        return token_file.read_text().strip()


def wait_listening(proc: subprocess.Popen[str], log: Path) -> str:
    assert proc.stdout is not None
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            raise AssertionError(f"the collector exited before listening: {log.read_text()[-3000:]}")
        m = LISTENING.search(line)
        if m:
            return m.group(1)
    raise AssertionError("the collector did not say it was listening in time")


def errors(page: Page) -> list[str]:
    """Uncaught exceptions and console errors of `page` so far."""
    found: list[str] = page._cg_errors  # type: ignore[attr-defined]
    return list(found)


async def login(page: Page, url: str, token: str) -> None:
    """Log in through the real form, which goes on to the page."""
    await page.goto(url + "/control/login")
    await page.fill("#token", token)
    async with page.expect_navigation(url=re.compile(r"/control/(#.*)?$")):
        await page.click("button[type=submit]")


async def axe_check(page: Page, *, exclude: Sequence[str] = ()) -> list[dict[str, Any]]:
    """Run the vendored axe-core on `page`; fail on any serious or critical violation, listing each with
    its rule, help and the first nodes. `exclude`: selectors of parts that are not ours (a map's tiles).
    The violations of lesser impact, for a test that wants them."""
    if not await page.evaluate("typeof window.axe === 'object'"):
        await page.add_script_tag(path=str(AXE))
    results = await page.evaluate(
        "async (exclude) => await axe.run(exclude.length ? {exclude: exclude.map((s) => [s])} : document,"
        " {resultTypes: ['violations']})", list(exclude))
    violations: list[dict[str, Any]] = results["violations"]
    bad = [v for v in violations if v["impact"] in ("serious", "critical")]
    if bad:
        lines = []
        for v in bad:
            nodes = "; ".join(" ".join(n["target"]) if isinstance(n["target"], list) else str(n["target"])
                              for n in v["nodes"][:5])
            lines.append(f"{v['impact']} {v['id']}: {v['help']} ({len(v['nodes'])} nodes: {nodes})")
        raise AssertionError("axe-core: serious or critical violations:\n" + "\n".join(lines))
    return [v for v in violations if v not in bad]


async def no_horizontal_scroll(page: Page) -> None:
    """The page is no wider than the window (what a phone would let the user scroll sideways)."""
    widths = await page.evaluate("[document.scrollingElement.scrollWidth, window.innerWidth]")
    if widths[0] > widths[1]:
        culprits = await page.evaluate(
            "[...document.querySelectorAll('body *')].filter((e) => e.getBoundingClientRect().right > innerWidth + 1)"
            ".slice(0, 8).map((e) => e.tagName.toLowerCase() + (e.id ? '#' + e.id : '') + '.' + e.className)")
        raise AssertionError(f"scrollWidth {widths[0]} > innerWidth {widths[1]}: {culprits}")
