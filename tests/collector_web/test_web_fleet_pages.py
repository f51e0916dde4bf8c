"""The fleet's two lists (GET /api/v1/gateways, GET /api/v1/control/presence) are read a page at a time from
the store (gateways_page, presence_page: LIMIT/OFFSET and the count in one statement), not whole and sliced:
walked by `next` over a fleet larger than its pages, they give every gateway once, in the order of the whole
list (gateways(), presence(), which the routes paged before), with the very bodies page_of over the whole list
gives. On both stores, over real HTTP. (Pages of a few gateways, bad pages: test_web_pagination.py.)"""

from __future__ import annotations

import random
from typing import Any

from test_web_pagination import viewer
from web_testkit import Web, now_ms
from yarl import URL

from collector.params import FLEET_PAGE, MAX_ID
from collector.store import Store

FLEET = 2_345
REMOVED = ("gw-00007", "gw-01234", "Gw_02002")


async def register(store: Store) -> None:
    """FLEET gateways registered in no order, some names upper case or with `_` (a collation sorts them
    its own way: the pages must keep it); a few taken out of service; every fifth one heard of on MQTT,
    online or not."""
    names = [f"{'Gw' if i % 11 == 0 else 'gw'}{'_' if i % 13 == 0 else '-'}{i:05d}" for i in range(FLEET)]
    random.Random(7).shuffle(names)
    now = now_ms()
    for name in names:
        gw = await store.add_gateway(name, "21231", f"hash-{name}", cabinet=name.upper(), lat=47.3, lon=5.0)
        if gw.id % 5 == 0:
            await store.record_state(gw.id, gw.id % 2 == 0, "21231", b'{"interval_s": 3600, "lamps": 3}', now)
    for name in REMOVED:
        assert await store.remove_gateway(name, "test", now)


async def walk(web: Web, url: str, headers: dict[str, str]) -> list[tuple[str, dict[str, Any]]]:
    """Every page from `url` by its `next`: (its address, its document)."""
    pages: list[tuple[str, dict[str, Any]]] = []
    next_url: str | None = url
    while next_url is not None:
        reply = await web.get(next_url, headers=headers)
        assert reply.status == 200, reply.text
        pages.append((next_url, reply.doc))
        next_url = reply.doc["next"]
        assert len(pages) <= FLEET
    return pages


def expected_meta(url: str, limit: int, offset: int, total: int) -> dict[str, Any]:
    """What page_of gave with the whole list: the total, the page's bounds, the next page's address."""
    more = offset + limit < total
    return {"total": total, "limit": limit, "offset": offset,
            "next": str(URL(url).update_query(limit=limit, offset=offset + limit)) if more else None}


async def test_the_fleet_walked_by_next_is_every_gateway_once_in_the_whole_lists_order(web: Web) -> None:
    await register(web.store)
    headers = await viewer(web)
    whole = await web.store.gateways()
    total = FLEET - len(REMOVED)
    assert len(whole) == total
    for limit in (FLEET_PAGE, 1000, 333):
        query = "" if limit == FLEET_PAGE else f"?limit={limit}"
        pages = await walk(web, f"/api/v1/gateways{query}", headers)
        assert len(pages) == -(-total // limit)
        names = [g["name"] for _, doc in pages for g in doc["gateways"]]
        assert names == [i.gateway.name for i in whole] and len(set(names)) == total
        for n, (url, doc) in enumerate(pages):  # the very body the whole list sliced gave
            offset = n * limit
            assert doc == {"gateways": [i.as_json() for i in whole[offset:offset + limit]],
                           **expected_meta(url, limit, offset, total)}, url

    presence = await web.store.presence()
    assert [p.gateway for p in presence] == [i.gateway.name for i in whole]
    assert sum(p.online is not None for p in presence) > 400  # the page joins the gateways' presence
    for limit in (FLEET_PAGE, 1000):
        pages = await walk(web, f"/api/v1/control/presence?limit={limit}", headers)
        now = now_ms()  # stale is of the reader's time: none is (state every hour, heard just now)
        assert [p["gateway"] for _, doc in pages for p in doc["gateways"]] == [p.gateway for p in presence]
        for n, (url, doc) in enumerate(pages):
            offset = n * limit
            assert doc == {"link": None, "gateways": [p.as_json(now) for p in presence[offset:offset + limit]],
                           **expected_meta(url, limit, offset, total)}, url


async def test_a_store_page_is_limit_rows_from_offset_and_the_total(web: Web) -> None:
    store = web.store
    assert await store.gateways_page(FLEET_PAGE, 0) == ([], 0)  # no gateway at all: still the total
    assert await store.presence_page(FLEET_PAGE, 0) == ([], 0)
    await register(store)
    total = FLEET - len(REMOVED)
    gateways, presence = await store.gateways(), await store.presence()
    for limit, offset in ((500, 0), (500, 2000), (1, 0), (1, total - 1), (1000, total - 5), (7, 1234)):
        assert await store.gateways_page(limit, offset) == (gateways[offset:offset + limit], total)
        assert await store.presence_page(limit, offset) == (presence[offset:offset + limit], total)
    for offset in (total, total + 1, MAX_ID):  # past the end: no row, the total all the same
        assert await store.gateways_page(FLEET_PAGE, offset) == ([], total)
        assert await store.presence_page(FLEET_PAGE, offset) == ([], total)
