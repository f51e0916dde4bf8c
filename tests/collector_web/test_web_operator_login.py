"""`serve --operator-login`: the control-centre page and the read API for operators only (their
bearer token or the login form's cookie), while open data, Open311, NGSI-LD, OpenAPI, /metrics
and the gateways' batch endpoint stay as they are. On both stores, and in headless Chromium."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from cdp import Chromium
from web_testkit import Web, now_ms, sample

from collector.access import COOKIE
from collector.app import create_app, start
from collector.store import Store

ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"


@pytest.fixture
async def private(store: Store) -> AsyncIterator[Web]:
    runner, url = await start(create_app(store, operator_login=True), "127.0.0.1", 0)
    try:
        # no cookie jar: each request shows exactly what it carries
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60),
                                         cookie_jar=aiohttp.DummyCookieJar()) as session:
            yield Web(url, store, session)
    finally:
        await runner.cleanup()


async def test_reads_need_an_operator_and_public_routes_stay_open(private: Web) -> None:
    await private.add_cabinet("gw-1", "21231")
    await private.upload("gw-1", [sample(0, "lamp-1", now_ms() - 1000, energy_wh=5, lamp_on=True)])  # gateway token
    bearer = await private.add_operator()
    for path in ("/api/v1/gateways", "/api/v1/communes", "/control/api/summary", "/control/assets/app.js",
                 "/api/v1/control/presence"):
        refused = await private.get(path)
        assert refused.status == 401, path
        assert refused.content_type == "application/problem+json" and "/control/login" in refused.doc["detail"]
        assert (await private.get(path, headers={"Authorization": "Bearer cop_not-a-token"})).status == 401
        assert (await private.get(path, headers=bearer)).status == 200, path
    assert (await private.get("/api/v1/gateways", headers=bearer)).doc["gateways"][0]["name"] == "gw-1"
    for path in ("/open311/v2/services.json?jurisdiction_id=21231", "/opendata/v1/communes/daily.json", "/openapi.json",
                 "/metrics", "/ngsi-ld/v1/entities?type=StreetlightControlCabinet"):
        assert (await private.get(path)).status == 200, path


async def test_the_login_form_sets_a_strict_http_only_cookie_and_goes_back_to_the_page(private: Web) -> None:
    bearer = await private.add_operator()
    token = bearer["Authorization"].removeprefix("Bearer ")
    page = await private.get("/control/", allow_redirects=False)
    assert page.status == 303 and page.headers["Location"] == "/control/login?next=%2Fcontrol%2F"
    form = await private.get("/control/login?next=/control/")
    assert form.status == 200 and 'name="token"' in form.text and 'value="/control/"' in form.text

    wrong = await private.request("POST", "/control/login", data={"token": "cop_wrong", "next": "/control/"},
                                  allow_redirects=False)
    assert wrong.status == 401 and "Jeton inconnu" in wrong.text and "Set-Cookie" not in wrong.headers

    # a next that leaves the control centre is not followed
    for target in ("https://evil.example/", "//evil.example/control/", "/api/v1/gateways"):
        done = await private.request("POST", "/control/login", data={"token": token, "next": target},
                                     allow_redirects=False)
        assert done.status == 303 and done.headers["Location"] == "/control/", target
    done = await private.request("POST", "/control/login", data={"token": token, "next": "/control/#/commune/21231"},
                                 allow_redirects=False)
    assert done.status == 303 and done.headers["Location"] == "/control/#/commune/21231"
    cookie = done.headers["Set-Cookie"]
    assert cookie.startswith(f"{COOKIE}=") and "HttpOnly" in cookie and "SameSite=Strict" in cookie
    assert "Max-Age=43200" in cookie
    with_cookie = {"Cookie": f"{COOKIE}={token}"}
    assert (await private.get("/control/", headers=with_cookie)).status == 200
    assert (await private.get("/control/api/summary", headers=with_cookie)).status == 200
    out = await private.request("POST", "/control/logout", headers=with_cookie, allow_redirects=False)
    assert out.status == 303 and out.headers["Location"] == "/control/login"
    assert f'{COOKIE}=""' in out.headers["Set-Cookie"] and "Max-Age=0" in out.headers["Set-Cookie"]


async def test_without_the_option_nothing_asks_for_a_login(web: Web) -> None:
    assert (await web.get("/control/api/summary")).status == 200
    assert (await web.get("/control/login")).status == 404


@pytest.fixture
async def browser() -> AsyncIterator[Chromium]:
    async with Chromium() as b:
        yield b


async def test_an_operator_logs_in_in_the_browser_and_sees_the_control_centre(
        private: Web, browser: Chromium, db_url: str) -> None:
    await private.add_cabinet("gw-dijon-0001", "21231", 47.3221, 5.0415, cabinet="DIJ-001")
    await private.upload("gw-dijon-0001", [sample(0, "lamp-1", now_ms() - 5000, energy_wh=10, lamp_on=True)])
    token = (await private.add_operator())["Authorization"].removeprefix("Bearer ")
    await browser.navigate(private.url + "/control/")
    await browser.wait_for("location.pathname === '/control/login' && !!document.querySelector('#token')")
    await browser.evaluate(f"document.querySelector('#token').value = {json.dumps(token)};"
                           "document.querySelector('form').submit()")
    await browser.wait_for("location.pathname === '/control/' && document.body.dataset.updates >= 1")
    assert await browser.evaluate("document.querySelector('#online-count').textContent.trim()") == "1"
    # the cookie is not for scripts
    assert await browser.evaluate("document.cookie") == ""
    kind = "pg" if db_url.startswith("postgres") else "sqlite"
    await browser.screenshot(ARTIFACTS / f"control-centre-after-login-{kind}.png")
