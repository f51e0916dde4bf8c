"""Headless Chromium driven over the DevTools protocol (its own websocket), for the page tests.

Started with a fresh profile and --remote-debugging-port=0; the port is read from the
profile's DevToolsActivePort file. Only the page target is used: navigate, evaluate
JavaScript, wait for a condition, take a screenshot.
"""

from __future__ import annotations

import asyncio
import base64
import itertools
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import aiohttp
import orjson

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--hide-scrollbars", "--mute-audio", "--lang=fr-FR"]


def chromium_path() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    raise AssertionError("no Chromium: apt-get install -y chromium (CI's .ci/run installs it)")


class CdpError(AssertionError):
    pass


class Chromium:
    def __init__(self, width: int = 1600, height: int = 1100) -> None:
        self.width, self.height = width, height
        self._profile = Path(tempfile.mkdtemp(prefix="cg-chromium-"))
        self._proc: subprocess.Popen[bytes] | None = None
        self._session: aiohttp.ClientSession | None = None
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self._ids = itertools.count(1)
        self._pending: dict[int, asyncio.Future[Any]] = {}
        self._reader: asyncio.Task[None] | None = None
        self.console: list[str] = []

    async def __aenter__(self) -> Self:
        log = (self._profile / "chromium.log").open("wb")
        self._proc = subprocess.Popen(
            [chromium_path(), *FLAGS, f"--user-data-dir={self._profile}", "--remote-debugging-port=0",
             f"--window-size={self.width},{self.height}", "about:blank"],
            stdout=log, stderr=log, stdin=subprocess.DEVNULL,
        )
        log.close()
        port_file = self._profile / "DevToolsActivePort"
        deadline = time.monotonic() + 60
        while not (port_file.exists() and port_file.read_text().strip()):
            if self._proc.poll() is not None or time.monotonic() > deadline:
                raise CdpError(f"Chromium did not start: {(self._profile / 'chromium.log').read_text()[-2000:]}")
            await asyncio.sleep(0.1)
        port = int(port_file.read_text().split()[0])
        self._session = aiohttp.ClientSession()
        targets: list[dict[str, Any]] = []
        while not any(t.get("type") == "page" for t in targets):
            async with self._session.get(f"http://127.0.0.1:{port}/json/list") as resp:
                targets = await resp.json()
            if time.monotonic() > deadline:
                raise CdpError(f"no page target in {targets}")
            await asyncio.sleep(0.1)
        page = next(t for t in targets if t.get("type") == "page")
        self._ws = await self._session.ws_connect(page["webSocketDebuggerUrl"], max_msg_size=64 * 1024 * 1024)
        self._reader = asyncio.create_task(self._read())
        await self.send("Runtime.enable")
        await self.send("Page.enable")
        await self.send("Emulation.setDeviceMetricsOverride",
                        {"width": self.width, "height": self.height, "deviceScaleFactor": 1, "mobile": False})
        await self.send("Emulation.setTimezoneOverride", {"timezoneId": "Europe/Paris"})
        # a French browser: the page speaks the browser's language, which --lang does not set in headless mode
        agent = (await self.send("Browser.getVersion"))["userAgent"]
        await self.send("Emulation.setUserAgentOverride", {"userAgent": agent, "acceptLanguage": "fr-FR"})
        await self.send("Emulation.setLocaleOverride", {"locale": "fr-FR"})
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._reader is not None:
            self._reader.cancel()
        if self._ws is not None:
            await self._ws.close()
        if self._session is not None:
            await self._session.close()
        if self._proc is not None:
            self._proc.terminate()
            try:
                self._proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait(timeout=20)
        shutil.rmtree(self._profile, ignore_errors=True)

    async def _read(self) -> None:
        assert self._ws is not None
        async for msg in self._ws:
            doc = orjson.loads(msg.data)
            if "id" in doc:
                fut = self._pending.pop(doc["id"], None)
                if fut is not None and not fut.done():
                    fut.set_result(doc)
            elif doc.get("method") == "Runtime.consoleAPICalled":
                args = doc["params"].get("args", [])
                self.console.append(" ".join(str(a.get("value", a.get("description", ""))) for a in args))
            elif doc.get("method") == "Runtime.exceptionThrown":
                self.console.append("exception: " + str(doc["params"]["exceptionDetails"].get("exception", {})
                                                         .get("description", doc["params"]["exceptionDetails"])))

    async def send(self, method: str, params: dict[str, Any] | None = None, timeout: float = 60) -> Any:
        assert self._ws is not None
        i = next(self._ids)
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending[i] = fut
        await self._ws.send_str(orjson.dumps({"id": i, "method": method, "params": params or {}}).decode())
        doc = await asyncio.wait_for(fut, timeout)
        if "error" in doc:
            raise CdpError(f"{method}: {doc['error']}")
        return doc.get("result", {})

    async def navigate(self, url: str) -> None:
        await self.send("Page.navigate", {"url": url})

    async def evaluate(self, expression: str) -> Any:
        result = await self.send("Runtime.evaluate", {"expression": expression, "returnByValue": True,
                                                      "awaitPromise": True})
        if "exceptionDetails" in result:
            raise CdpError(f"{expression}: {result['exceptionDetails']}")
        return result["result"].get("value")

    async def wait_for(self, expression: str, timeout: float = 60) -> Any:
        """Poll until `expression` is truthy (an exception counts as not yet); its value."""
        deadline = time.monotonic() + timeout
        last: Any = None
        while time.monotonic() < deadline:
            try:
                last = await self.evaluate(expression)
            except CdpError as exc:  # the page may not be there yet
                last = exc
            else:
                if last:
                    return last
            await asyncio.sleep(0.1)
        raise CdpError(f"still falsy after {timeout} s: {expression} (last {last!r}); console: {self.console}")

    async def screenshot(self, path: Path) -> None:
        shot = await self.send("Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True})
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(base64.b64decode(shot["data"]))
