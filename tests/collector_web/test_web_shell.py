"""What the control-centre shell needs of the server: every asset under assets/ served by its type and
nothing else (no way out of the folder), the vendored libraries as the lock pinned them with their
licences, who is logged in (/control/api/me), and the stream's `change` events for the topics features
register (add_stream_topic). On both stores."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import orjson
import pytest
from web_testkit import Web, now_ms

from collector.app import create_app, start
from collector.dashboard.routes import ASSETS, SERVED, STREAM_TOPICS, add_stream_topic, asset_file
from collector.live import CHANGES
from collector.store import Store

REPO = Path(__file__).resolve().parents[2]
VENDOR = ASSETS / "vendor"


def test_vendored_libraries_are_the_locked_ones_with_their_licences() -> None:
    lock = json.loads((REPO / "package-lock.json").read_text())
    wanted = json.loads((REPO / "package.json").read_text())["dependencies"]
    versions = json.loads((VENDOR / "VERSIONS.json").read_text())
    assert sorted(versions) == sorted(wanted) == sorted(lock["packages"][""]["dependencies"])
    for lib, pinned in wanted.items():
        locked = lock["packages"][f"node_modules/{lib}"]
        assert versions[lib]["version"] == locked["version"] == pinned, lib
        assert versions[lib]["integrity"] == locked["integrity"] and locked["integrity"].startswith("sha512-"), lib
        licence = VENDOR / lib / "LICENSE"
        assert licence.is_file() and licence.stat().st_size > 200, f"{lib}: no licence"
    assert {"leaflet", "leaflet.markercluster", "uplot", "axe-core"} <= set(versions)
    for name, version in (("leaflet/leaflet.js", "1.9.4"), ("axe-core/axe.min.js", "4.14.1")):
        assert version in (VENDOR / name).read_text()[:2000], name  # the file is the version said


def test_the_page_loads_only_files_that_exist_here() -> None:
    page = (ASSETS / "index.html").read_text()
    refs = [r for attr in ('src="', 'href="') for r in [p.split('"')[0] for p in page.split(attr)[1:]]]
    local = [r for r in refs if r.startswith("/control/assets/")]
    assert len(local) >= 20, local
    for ref in local:
        assert asset_file(ref.removeprefix("/control/assets/")) is not None, ref
    assert not [r for r in refs if r.startswith(("http:", "https:", "//"))]  # no CDN: the page works offline


@pytest.mark.parametrize("path", ["../routes.py", "..", "../../app.py", "vendor/../../routes.py", "/etc/passwd",
                                  "routes.py", "README.md", ".hidden.js", "vendor/.x/a.js", "vendor", "vendor/",
                                  "nope.js", "shell.js/", "shell.js\\..", "a//b.js", "%2e%2e/routes.py"])
def test_asset_file_refuses_anything_but_a_served_file_inside_assets(path: str) -> None:
    assert asset_file(path) is None


async def test_every_asset_is_served_by_its_type_and_nothing_else(web: Web) -> None:
    files = [p for p in ASSETS.rglob("*") if p.is_file() and p.suffix in SERVED]
    assert len(files) >= 25
    for file in files:
        rel = file.relative_to(ASSETS).as_posix()
        async with web.session.get(f"{web.url}/control/assets/{rel}") as resp:
            assert (resp.status, resp.content_type) == (200, SERVED[file.suffix]), rel
            assert await resp.read() == file.read_bytes(), rel
    leaflet = await web.request("GET", "/control/assets/vendor/leaflet/leaflet.js", headers={"Accept-Encoding": "gzip"})
    assert leaflet.headers.get("Content-Encoding") == "gzip" and "Leaflet" in leaflet.text
    etag = leaflet.headers["ETag"]
    again = await web.request("GET", "/control/assets/vendor/leaflet/leaflet.js", headers={"If-None-Match": etag})
    assert again.status == 304 and again.text == ""
    for path in ("..%2Froutes.py", "..%2F..%2Fapp.py", "%2E%2E/routes.py", "vendor/..%2F..%2Froutes.py",
                 "README.md", "data.py", "vendor/leaflet/", "nope.js", "..%5Croutes.py"):
        reply = await web.get(f"/control/assets/{path}")
        assert reply.status == 404 and reply.content_type == "application/problem+json", path
    escaped = await web.session.get(web.url + "/control/assets/../dashboard/routes.py")  # a client that sends ".."
    async with escaped:
        assert escaped.status == 404


async def test_me_says_who_is_there(web: Web, store: Store) -> None:
    assert (await web.get("/control/api/me")).doc == {"name": None, "roles": [], "login": False}
    app = create_app(store, operator_login=True)
    runner, url = await start(app, "127.0.0.1", 0)
    try:
        headers = await web.add_operator("alice")
        async with aiohttp.ClientSession() as session:
            async with session.get(url + "/control/api/me", headers=headers) as resp:
                assert resp.status == 200
                assert await resp.json() == {"name": "alice", "roles": ["viewer", "operator"], "login": True}
            await store.set_operator_roles("alice", frozenset({"supervisor", "police"}), "test", now_ms())
            async with session.get(url + "/control/api/me", headers=headers) as resp:
                assert (await resp.json())["roles"] == ["viewer", "operator", "supervisor", "police"]
            async with session.get(url + "/control/api/me") as resp:
                assert resp.status == 401
    finally:
        await runner.cleanup()


async def read_events(resp: aiohttp.ClientResponse, until: int) -> list[tuple[str, object]]:
    """The stream's named events as (name, data), until `until` of them came."""
    events: list[tuple[str, object]] = []
    name = None
    while len(events) < until:
        line = (await resp.content.readline()).decode().rstrip("\n")
        if line.startswith("event: "):
            name = line[7:]
        elif line.startswith("data: ") and name is not None:
            events.append((name, orjson.loads(line[6:])))
            name = None
    return events


@pytest.fixture
async def streaming(store: Store) -> AsyncIterator[tuple[str, object]]:
    app = create_app(store)
    add_stream_topic(app, "shell-test")
    add_stream_topic(app, "shell-test")  # twice is once
    runner, url = await start(app, "127.0.0.1", 0)
    try:
        yield url, app
    finally:
        await runner.cleanup()


async def changes_until(resp: aiohttp.ClientResponse, topic: str) -> list[object]:
    """The `change` topics the stream sends until one for `topic` (other features' topics come too)."""
    seen: list[object] = []
    while topic not in seen:
        seen += [data["topic"] for name, data in await read_events(resp, 1) if name == "change"]  # type: ignore[index]
    return seen


async def test_a_registered_topic_reaches_the_page_as_a_change_event(streaming: tuple[str, object]) -> None:
    url, app = streaming
    assert app[STREAM_TOPICS].count("shell-test") == 1  # type: ignore[index]
    changes = app[CHANGES]  # type: ignore[index]
    async with aiohttp.ClientSession() as session, session.get(url + "/control/api/stream") as resp:
        assert resp.status == 200 and resp.content_type == "text/event-stream"
        async with asyncio.timeout(30):
            first = await read_events(resp, 1)
            assert first[0][0] == "summary" and first[0][1]["totals"]["gateways"] == 0  # type: ignore[index]
            for _ in range(50):  # a burst in one go is one event
                changes.notify("shell-test")
            changes.notify("not-registered")
            seen = await changes_until(resp, "shell-test")
            changes.notify("shell-test")
            seen += await changes_until(resp, "shell-test")
    assert seen.count("shell-test") == 2 and "not-registered" not in seen, seen


async def test_the_login_form_speaks_the_page_s_language(store: Store) -> None:
    app = create_app(store, operator_login=True)
    runner, url = await start(app, "127.0.0.1", 0)
    try:
        async with aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as session:
            async def form(headers: dict[str, str], query: str = "") -> str:
                async with session.get(f"{url}/control/login{query}", headers=headers) as resp:
                    assert resp.status == 200
                    return await resp.text()

            assert 'lang="fr"' in (page := await form({})) and "Jeton d'opérateur" in page
            assert 'lang="en"' in (page := await form({"Accept-Language": "en-GB,en;q=0.9"})) and "Operator token" in page
            # the page's switch (its cookie) wins over the browser, ?lang over both
            assert "Operator token" in await form({"Accept-Language": "fr-FR", "Cookie": "cg_lang=en"})
            assert "Jeton d'opérateur" in await form({"Accept-Language": "en", "Cookie": "cg_lang=en"}, "?lang=fr")
            assert "Jeton d'opérateur" in await form({"Cookie": "cg_lang=<script>"})
            async with session.post(f"{url}/control/login", data={"token": "cop_nobody", "next": "/control/"},
                                    headers={"Cookie": "cg_lang=en"}) as resp:
                assert resp.status == 401 and "Unknown token." in await resp.text()
    finally:
        await runner.cleanup()
