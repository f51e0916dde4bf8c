"""`serve --operator-login`: the control-centre page and the read API for operators only (their
bearer token or the login form's cookie), while open data, Open311, NGSI-LD, OpenAPI, /metrics
and the gateways' batch endpoint stay as they are. On both stores, and in headless Chromium."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from urllib.parse import quote

import aiohttp
import pytest
from cdp import Chromium
from web_testkit import Reply, Web, now_ms, sample

from collector.access import (
    COOKIE,
    LOGIN_FAILURES,
    LOGIN_WINDOW_S,
    TRUSTED_PROXIES,
    FailedLogins,
    parse_proxies,
)
from collector.app import create_app, start
from collector.store import Store
from collector.tokens import hash_token


def session_of(reply: Reply) -> str:
    """The session id a login's Set-Cookie carries."""
    cookie = reply.headers["Set-Cookie"]
    assert cookie.startswith(f"{COOKIE}="), cookie
    return cookie.split(";")[0].split("=", 1)[1]

ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"


@asynccontextmanager
async def serving(store: Store, trusted_proxies: tuple[str, ...] = ()) -> AsyncIterator[Web]:
    app = create_app(store, operator_login=True)
    app[TRUSTED_PROXIES] = parse_proxies(trusted_proxies)
    runner, url = await start(app, "127.0.0.1", 0)
    try:
        # no cookie jar: each request shows exactly what it carries
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60),
                                         cookie_jar=aiohttp.DummyCookieJar()) as session:
            yield Web(url, store, session)
    finally:
        await runner.cleanup()


@pytest.fixture
async def private(store: Store) -> AsyncIterator[Web]:
    async with serving(store) as web:
        yield web


async def test_reads_need_an_operator_and_public_routes_stay_open(private: Web) -> None:
    await private.add_cabinet("gw-1", "21231")
    await private.upload("gw-1", [sample(0, "lamp-1", now_ms() - 1000, energy_wh=5, lamp_on=True)])  # gateway token
    bearer = await private.add_operator()
    for path in ("/api/v1/gateways", "/api/v1/communes", "/control/api/summary", "/control/assets/shell.js",
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
    assert "Max-Age=43200" in cookie and "Secure" not in cookie  # plain HTTP, no proxy
    with_cookie = {"Cookie": f"{COOKIE}={session_of(done)}"}
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
    # the session cookie is not for scripts (the page's own language cookie is all they see)
    assert await browser.evaluate("document.cookie") == "cg_lang=fr"
    kind = "pg" if db_url.startswith("postgres") else "sqlite"
    await browser.screenshot(ARTIFACTS / f"control-centre-after-login-{kind}.png")


# -- sessions, proxies, origins, guessing (issue 12) ----------------------------------------------


@pytest.fixture
async def behind_proxy(store: Store) -> AsyncIterator[Web]:
    """The collector behind a reverse proxy on 127.0.0.1, as `serve --trusted-proxy 127.0.0.1` runs it."""
    async with serving(store, ("127.0.0.1",)) as web:
        yield web


async def log_in(web: Web, token: str, headers: dict[str, str] | None = None) -> Reply:
    return await web.request("POST", "/control/login", data={"token": token, "next": "/control/"},
                             headers=headers, allow_redirects=False)


async def test_the_cookie_is_a_server_side_session_that_logout_and_revocation_end(private: Web) -> None:
    token = (await private.add_operator("alice"))["Authorization"].removeprefix("Bearer ")
    first, second = session_of(await log_in(private, token)), session_of(await log_in(private, token))
    assert token not in (first, second) and first != second and len(first) >= 40
    assert (await private.get("/control/api/summary", headers={"Cookie": f"{COOKIE}={token}"})).status == 401

    def cookie(session: str) -> dict[str, str]:
        return {"Cookie": f"{COOKIE}={session}"}

    assert (await private.get("/api/v1/gateways", headers=cookie(first))).status == 200
    await private.request("POST", "/control/logout", headers=cookie(first), allow_redirects=False)
    # the same cookie, replayed after the logout, opens nothing: the server ended it
    assert (await private.get("/api/v1/gateways", headers=cookie(first))).status == 401
    assert (await private.get("/api/v1/gateways", headers=cookie(second))).status == 200

    assert await private.store.remove_operator("alice", "test", now_ms())
    assert (await private.get("/api/v1/gateways", headers=cookie(second))).status == 401

    token = (await private.add_operator("bob"))["Authorization"].removeprefix("Bearer ")
    third = session_of(await log_in(private, token))
    assert await private.store.rotate_operator_token("bob", "0" * 64, "test", now_ms())
    assert (await private.get("/api/v1/gateways", headers=cookie(third))).status == 401
    actions = [(a.action, a.target) for a in await private.store.audit_log()]
    assert actions[:4] == [("operator.rotate", "bob"), ("operator.login", "bob"), ("operator.remove", "alice"),
                           ("operator.logout", "alice")]


async def test_an_expired_session_opens_nothing(private: Web) -> None:
    await private.add_operator("alice")
    now = now_ms()
    assert await private.store.open_session("alice", hash_token("old-session"), now - 13 * 3600_000,
                                            now - 3600_000, "127.0.0.1")
    assert await private.store.open_session("alice", hash_token("live-session"), now, now + 3600_000, "127.0.0.1")
    assert (await private.get("/api/v1/gateways", headers={"Cookie": f"{COOKIE}=old-session"})).status == 401
    assert (await private.get("/api/v1/gateways", headers={"Cookie": f"{COOKIE}=live-session"})).status == 200


async def test_the_cookie_is_secure_over_tls_behind_a_trusted_proxy_only(private: Web, behind_proxy: Web) -> None:
    https = {"X-Forwarded-Proto": "https"}
    token = (await private.add_operator("alice"))["Authorization"].removeprefix("Bearer ")
    # a direct client cannot claim TLS: the header is believed from the configured proxy only
    assert "Secure" not in (await log_in(private, token, https)).headers["Set-Cookie"]
    assert "Secure" in (await log_in(behind_proxy, token, https)).headers["Set-Cookie"]
    assert "Secure" not in (await log_in(behind_proxy, token, {"X-Forwarded-Proto": "http"})).headers["Set-Cookie"]
    # the proxy's own origin, https://city.example, is this site
    site = {**https, "X-Forwarded-Host": "city.example", "Origin": "https://city.example"}
    assert (await log_in(behind_proxy, token, site)).status == 303


async def test_login_and_logout_refuse_a_form_from_another_site(private: Web) -> None:
    token = (await private.add_operator("alice"))["Authorization"].removeprefix("Bearer ")
    own = private.url  # http://127.0.0.1:PORT
    for origin in ("https://evil.example", "null", own.replace("http:", "https:"), own + "0"):
        refused = await log_in(private, token, {"Origin": origin})
        assert refused.status == 403 and refused.content_type == "application/problem+json", origin
        assert "Set-Cookie" not in refused.headers
    done = await log_in(private, token, {"Origin": own})
    assert done.status == 303
    cookie = {"Cookie": f"{COOKIE}={session_of(done)}"}
    out = await private.request("POST", "/control/logout", headers={**cookie, "Origin": "https://evil.example"},
                                allow_redirects=False)
    assert out.status == 403
    assert (await private.get("/api/v1/gateways", headers=cookie)).status == 200  # the session lives on
    out = await private.request("POST", "/control/logout", headers={**cookie, "Origin": own}, allow_redirects=False)
    assert out.status == 303
    assert (await private.get("/api/v1/gateways", headers=cookie)).status == 401


async def test_repeated_failed_logins_from_one_address_are_refused_429_for_a_while(behind_proxy: Web) -> None:
    token = (await behind_proxy.add_operator("alice"))["Authorization"].removeprefix("Bearer ")
    guesser = {"X-Forwarded-For": "198.51.100.7"}
    for _ in range(LOGIN_FAILURES):
        assert (await log_in(behind_proxy, "cop_guess", guesser)).status == 401
    slowed = await log_in(behind_proxy, token, guesser)  # even the right token: no more guessing from there
    assert slowed.status == 429 and slowed.content_type == "application/problem+json"
    assert 0 < int(slowed.headers["Retry-After"]) <= LOGIN_WINDOW_S
    # another address is not held up, and an address the client writes further left is not believed
    assert (await log_in(behind_proxy, token, {"X-Forwarded-For": "203.0.113.9"})).status == 303
    spoofed = {"X-Forwarded-For": "203.0.113.9, 198.51.100.7"}
    assert (await log_in(behind_proxy, token, spoofed)).status == 429


def test_failed_logins_leave_the_window_and_a_success_forgets_them() -> None:
    limiter = FailedLogins(limit=3, window_s=60)
    for t in (0.0, 10.0, 20.0):
        assert limiter.retry_after("a", t) is None
        limiter.failed("a", t)
    assert limiter.retry_after("a", 30.0) == pytest.approx(30.0)
    assert limiter.retry_after("b", 30.0) is None
    assert limiter.retry_after("a", 60.5) is None  # the first failure left the window
    limiter.failed("a", 61.0)
    assert limiter.retry_after("a", 62.0) == pytest.approx(8.0)
    limiter.succeeded("a")
    assert limiter.retry_after("a", 62.0) is None


async def test_a_next_with_cr_lf_gets_a_clean_redirect_home(private: Web) -> None:
    token = (await private.add_operator())["Authorization"].removeprefix("Bearer ")
    for target in ("/control/\r\nSet-Cookie: x=1", "/control/\n", "/control/\x00", "/control/ é", "/control/\u2028"):
        done = await private.request("POST", "/control/login", data={"token": token, "next": target},
                                     allow_redirects=False)
        assert done.status == 303 and done.headers["Location"] == "/control/", repr(target)
        form = await private.get("/control/login?next=" + quote(target, safe=""))
        if "\x00" in target:  # the collector refuses a NUL in any query parameter
            assert form.status == 400 and form.content_type == "application/problem+json"
        else:
            assert form.status == 200 and 'value="/control/"' in form.text, repr(target)
