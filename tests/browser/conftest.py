"""The browser-test rig: the control-centre page in a real Chromium (Playwright's async API driving the
system Chromium, never a downloaded one) against a real collector (`serve --operator-login` as a
subprocess, on a SQLite file), fed through the real batch API, with operators made by the real CLI.

Fixtures and helpers (browser_kit.py; collector/dashboard/assets/README.md is the page's contract):

- `browser` (session): the Chromium; `new_page(width, height, lang)` a fresh context and page (its own
  cookies), in Europe/Paris, with the browser's language `lang` ("fr-FR", "en-GB").
- `collector` (session): a running collector shared by the session's tests: `.url`, `.db_url`,
  `.add_gateway(...)`, `.upload(gateway, records)`, `.add_operator(name, roles)`, `.cli(...)`. Tests
  name their own gateways and operators (unique_name) and assert on what they added, not on totals.
- `operator_login(page, roles)`: a new operator (real CLI) logs in through the real form; its name.
- `shot(page, name)`: test-artifacts/screenshots/<test>/<name>-<w>x<h>.png.
- `axe_check(page)`: the vendored axe-core; fails listing every serious or critical violation.
- `errors(page)`: the page's uncaught exceptions and console errors so far (a test asserts none).
"""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
from collections.abc import AsyncIterator, Iterable
from pathlib import Path

import aiohttp
import pytest
import pytest_asyncio
from browser_kit import (
    ARTIFACTS,
    CLI,
    REPO,
    TIMEOUT_MS,
    AxeCheck,
    Collector,
    NewPage,
    OperatorLogin,
    Shot,
    axe_check,
    chromium_path,
    login,
    unique_name,
    wait_listening,
)
from playwright.async_api import Browser, Page, async_playwright
from pytest_asyncio import is_async_test


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every browser test runs in the session's event loop: the browser and the collector are shared."""
    here = Path(__file__).parent
    marker = pytest.mark.asyncio(loop_scope="session")
    for item in items:
        if here in Path(str(item.fspath)).parents and is_async_test(item):
            item.add_marker(marker, append=False)


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def collector(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Collector]:
    workdir = tmp_path_factory.mktemp("collector")
    db_url = str(workdir / "collector.db")
    log = (workdir / "serve.log").open("w")
    proc = subprocess.Popen([*CLI, "serve", "--db", db_url, "--port", "0", "--operator-login"], cwd=REPO,
                            stdout=subprocess.PIPE, stderr=log, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        url = await asyncio.to_thread(wait_listening, proc, workdir / "serve.log")
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as session:
            yield Collector(url, db_url, session, workdir)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=30)
        log.close()
        if proc.stdout is not None:
            proc.stdout.close()


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as p:
        b = await p.chromium.launch(executable_path=chromium_path(),
                                    args=["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"])
        try:
            yield b
        finally:
            await b.close()


@pytest_asyncio.fixture(loop_scope="session")
async def new_page(browser: Browser) -> AsyncIterator[NewPage]:
    """new_page(width=1366, height=768, lang="fr-FR"): a page in its own context (cookies, storage),
    in Europe/Paris, whose errors are kept for `errors(page)`; closed after the test."""
    contexts = []

    async def make(width: int = 1366, height: int = 768, lang: str = "fr-FR") -> Page:
        context = await browser.new_context(viewport={"width": width, "height": height}, locale=lang,
                                            timezone_id="Europe/Paris", extra_http_headers={"Accept-Language": lang})
        context.set_default_timeout(TIMEOUT_MS)
        contexts.append(context)
        page = await context.new_page()
        problems: list[str] = []
        page.on("pageerror", lambda exc: problems.append(f"exception: {exc}"))
        # a failed load is listed by the response, with its address (the console's line has none, and comes
        # for the browser's own /favicon.ico on the login form too)
        page.on("console", lambda msg: problems.append(f"console {msg.type}: {msg.text}")
                if msg.type == "error" and not msg.text.startswith("Failed to load resource") else None)
        page.on("response", lambda r: problems.append(f"http {r.status} {r.request.method} {r.url}")
                if r.status >= 400 else None)
        page._cg_errors = problems  # type: ignore[attr-defined]
        return page

    yield make
    for context in contexts:
        await context.close()


OPERATORS: dict[tuple[str | None, tuple[str, ...]], tuple[str, str]] = {}


@pytest.fixture
def operator_login(collector: Collector) -> OperatorLogin:
    """operator_login(page, roles=()): a new operator (the real CLI) logs in on `page`; its name."""

    async def do(page: Page, roles: Iterable[str] = (), name: str | None = None) -> str:
        key = (name, tuple(sorted(roles)))
        if key not in OPERATORS:  # one operator per set of roles and session: the CLI takes seconds to start
            made = name or unique_name("op")
            OPERATORS[key] = (made, await collector.add_operator(made, roles))
        made, token = OPERATORS[key]
        await login(page, collector.url, token)
        return made

    return do


@pytest.fixture
def shot(request: pytest.FixtureRequest) -> Shot:
    """shot(page, name): the page as it shows, to test-artifacts/screenshots/<test>/<name>-<w>x<h>.png."""
    folder = ARTIFACTS / re.sub(r"[^\w.-]+", "_", request.node.name)

    async def take(page: Page, name: str) -> Path:
        size = page.viewport_size or {"width": 0, "height": 0}
        path = folder / f"{name}-{size['width']}x{size['height']}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        await page.screenshot(path=str(path))
        return path

    return take




@pytest.fixture(name="axe_check")
def axe_check_fixture() -> AxeCheck:
    """axe_check(page, exclude=()): fails on serious or critical violations (browser_kit.axe_check)."""
    return axe_check
