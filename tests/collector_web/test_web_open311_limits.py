"""New Open311 reports are limited per source address and per e-mail, on a real collector and both
stores: one client cannot push real reports out of the public list; 429 with Retry-After in the
Open311 error shape; behind a trusted proxy the client's address counts, not the proxy's."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass

import aiohttp
import pytest
from web_testkit import Reply, Web

from collector.access import TRUSTED_PROXIES, parse_proxies
from collector.app import create_app, start
from collector.errors import CollectorError
from collector.reports.ratelimit import RateLimits, ReportLimiter, address_key, email_key
from collector.reports.routes import LIMITER
from collector.store import Store

FIELDS = {"jurisdiction_id": "21231", "service_code": "pothole", "lat": "47.3221", "long": "5.0415"}


class Clock:
    """The limiter's monotonic clock, moved by the test."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@dataclass
class Limited:
    web: Web
    clock: Clock
    url: str

    async def post(self, *, session: aiohttp.ClientSession | None = None, headers: Mapping[str, str] | None = None,
                   **fields: str) -> Reply:
        async with (session or self.web.session).post(f"{self.url}/open311/v2/requests.json",
                                                      data={**FIELDS, **fields}, headers=headers) as resp:
            return Reply(resp.status, resp.content_type, await resp.text(), resp.headers)

    async def public_ids(self) -> list[str]:
        return [r["service_request_id"] for r in (await self.web.get("/open311/v2/requests.json")).doc]


Serve = Callable[..., Awaitable[Limited]]


@pytest.fixture
async def limited(store: Store) -> AsyncIterator[Serve]:
    """Serves collectors with the given limits, a clock the test moves and trusted proxies."""
    runners = []

    async def serve(limits: RateLimits, proxies: tuple[str, ...] = ()) -> Limited:
        clock = Clock()
        app = create_app(store)
        app[LIMITER] = ReportLimiter(limits, clock=clock)
        app[TRUSTED_PROXIES] = parse_proxies(proxies)
        runner, url = await start(app, "127.0.0.1", 0)
        runners.append(runner)
        return Limited(Web(url, store, session), clock, url)

    async with aiohttp.ClientSession() as session:
        try:
            yield serve
        finally:
            for runner in runners:
                await runner.cleanup()


def assert_429(reply: Reply, retry_after: int) -> None:
    assert reply.status == 429, reply.text
    assert reply.headers["Retry-After"] == str(retry_after)
    [err] = reply.doc
    assert err["code"] == 429 and f"réessayez dans {retry_after} s" in err["description"]


async def test_one_address_gets_its_hourly_share_then_429_with_retry_after(limited: Serve) -> None:
    site = await limited(RateLimits(per_address=3, per_email=100))
    accepted = []
    for _ in range(3):
        reply = await site.post()
        assert reply.status == 201, reply.text
        accepted.append(reply.doc[0]["service_request_id"])
    # a refused report (here: no location) costs nothing
    assert (await site.post(lat="", long="")).status == 400
    assert_429(await site.post(), 1200)  # 3 an hour: one more every 20 minutes
    assert_429(await site.post(email="autre@example.org"), 1200)  # another e-mail does not help
    assert sorted(await site.public_ids()) == sorted(accepted)  # nothing of the refused ones is stored
    site.clock.now += 1199
    assert_429(await site.post(), 1)
    site.clock.now += 1
    assert (await site.post()).status == 201
    assert_429(await site.post(), 1200)
    # another address has its own share
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(local_addr=("127.0.0.2", 0))) as other:
        assert (await site.post(session=other)).status == 201


async def test_one_e_mail_gets_its_share_however_it_is_written(limited: Serve) -> None:
    site = await limited(RateLimits(per_address=100, per_email=2))
    assert (await site.post(email="zephirine.q@example.org")).status == 201
    assert (await site.post(email="Zephirine.Q@Example.org")).status == 201
    assert_429(await site.post(email="zephirine.q+encore@example.org"), 1800)
    # another mailbox, or none, is not held back
    assert (await site.post(email="bernard@example.org")).status == 201
    assert (await site.post()).status == 201


async def test_behind_a_trusted_proxy_the_client_address_counts(limited: Serve) -> None:
    proxied = await limited(RateLimits(per_address=1, per_email=100), proxies=("127.0.0.1",))
    for client in ("203.0.113.5", "203.0.113.6"):
        assert (await proxied.post(headers={"X-Forwarded-For": client})).status == 201
    assert_429(await proxied.post(headers={"X-Forwarded-For": "203.0.113.5"}), 3600)
    # without the option, X-Forwarded-For is whatever the client wrote: it buys no fresh share
    direct = await limited(RateLimits(per_address=1, per_email=100))
    assert (await direct.post(headers={"X-Forwarded-For": "203.0.113.7"})).status == 201
    assert_429(await direct.post(headers={"X-Forwarded-For": "203.0.113.8"}), 3600)


async def test_limits_come_from_the_environment(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    assert create_app(store)[LIMITER].limits == RateLimits(per_address=10, per_email=5, period_s=3600)
    monkeypatch.setenv("CITYGATE_OPEN311_PER_ADDRESS", "40")
    monkeypatch.setenv("CITYGATE_OPEN311_PER_EMAIL", "0")
    assert create_app(store)[LIMITER].limits == RateLimits(per_address=40, per_email=0)
    monkeypatch.setenv("CITYGATE_OPEN311_PER_EMAIL", "lots")
    with pytest.raises(CollectorError, match="CITYGATE_OPEN311_PER_EMAIL"):
        create_app(store)


def test_an_ipv6_client_is_counted_by_its_64_and_a_mailbox_by_its_address() -> None:
    assert address_key("2001:db8:1:2:aaaa::1") == address_key("2001:db8:1:2:bbbb::2") == "2001:db8:1:2::/64"
    assert address_key("2001:db8:1:3::1") != address_key("2001:db8:1:2::1")
    assert address_key("::ffff:192.0.2.1") == address_key("192.0.2.1") == "192.0.2.1"
    assert email_key(" Zephirine.Q+tag@Example.ORG ") == "zephirine.q@example.org"
