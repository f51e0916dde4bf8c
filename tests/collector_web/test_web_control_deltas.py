"""The control page's live streams send what changed, not the whole document again: a commune's stream
(`/control/api/communes/{insee}/stream`) sends the commune once, then only the cabinets that changed,
keyed by gateway; the shell's stream with ?delta=1 sends the summary once, then only the communes that
changed. On both stores, over real HTTP."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
import orjson
from web_testkit import Web, event, now_ms, sample

from collector.dashboard.routes import delta


async def read_event(resp: aiohttp.ClientResponse) -> tuple[str, Any, int]:
    """The stream's next named event: (name, data, bytes of its data line)."""
    name = None
    while True:
        line = (await resp.content.readline()).decode().rstrip("\n")
        if line.startswith("event: "):
            name = line[7:]
        elif line.startswith("data: ") and name is not None:
            return name, orjson.loads(line[6:]), len(line)


async def seed(web: Web, n: int = 30) -> None:
    for i in range(n):
        await web.add_cabinet(f"gw-delta-{i:02d}", "21515", 47.31, 5.11, cabinet=f"Q-{i:02d}")
        await web.upload(f"gw-delta-{i:02d}", [sample(0, "lamp-1", now_ms() - 1000, lamp_on=True, power_w=60.0)])
    await web.add_cabinet("gw-delta-dijon", "21231", 47.32, 5.04)


async def test_a_commune_s_stream_sends_its_document_once_then_only_the_cabinet_that_changed(web: Web) -> None:
    await seed(web)
    reply = await web.get("/control/api/communes/21515")
    whole = reply.doc
    assert reply.headers["Content-Encoding"] in ("gzip", "deflate")  # asked: Dijon's 217 kB are about 20 kB
    async with aiohttp.ClientSession() as session, session.get(web.url + "/control/api/communes/21515/stream") as resp:
        assert resp.status == 200 and resp.content_type == "text/event-stream"
        async with asyncio.timeout(30):
            name, first, first_bytes = await read_event(resp)
            assert name == "commune"
            assert [c["name"] for c in first["cabinets"]] == [c["name"] for c in whole["cabinets"]]
            assert first["commune"] == whole["commune"] and len(first["cabinets"]) == 30
            # one cabinet's lamp fails: the delta names that cabinet alone
            await web.upload("gw-delta-07", [event(0, "lamp-1", now_ms(), "lamp_failure", "major")])
            seen: dict[str, Any] = {}
            sizes = []
            while not any(c["name"] == "gw-delta-07" and c["faulty_lamps"] == 1 for c in seen.get("cabinets", [])):
                name, seen, size = await read_event(resp)
                assert name == "delta", name
                sizes.append(size)
            assert [c["name"] for c in seen["cabinets"]] == ["gw-delta-07"], seen
            assert "commune" not in seen and "removed" not in seen and "order" not in seen
            assert len(seen["faulty_lamps"]) == 1 and seen["faulty_lamps"][0]["gateway"] == "gw-delta-07"
            # a batch of Dijon's cabinet does not move Quetigny's view: no event, or none naming it
            await web.upload("gw-delta-dijon", [sample(0, "lamp-1", now_ms(), lamp_on=True)])
            await web.upload("gw-delta-03", [sample(0, "lamp-1", now_ms(), lamp_on=False)])
            name, seen, size = await read_event(resp)
            assert name == "delta" and [c["name"] for c in seen["cabinets"]] == ["gw-delta-03"], seen
    print(f"commune document {first_bytes} B, its deltas {[*sizes, size]} B")
    assert max([*sizes, size]) * 5 < first_bytes


async def test_an_unknown_commune_has_no_stream(web: Web) -> None:
    reply = await web.get("/control/api/communes/99999/stream")
    assert reply.status == 404 and reply.content_type == "application/problem+json"
    assert "99999" in reply.doc["detail"]
    # a former commune's code follows the commune it merged into
    async with aiohttp.ClientSession() as session, session.get(web.url + "/control/api/communes/21213/stream") as resp:
        async with asyncio.timeout(30):
            name, doc, _ = await read_event(resp)
    assert name == "commune" and doc["commune"]["insee"] == "21452"


async def test_the_summary_with_delta_comes_whole_once_then_only_the_commune_that_changed(web: Web) -> None:
    await seed(web, 3)
    async with aiohttp.ClientSession() as session, session.get(web.url + "/control/api/stream?delta=1") as resp:
        async with asyncio.timeout(30):
            name, first, _ = await read_event(resp)
            assert name == "summary" and len(first["communes"]) == 23
            await web.upload("gw-delta-dijon", [sample(0, "lamp-1", now_ms(), lamp_on=True)])
            while True:
                name, seen, _ = await read_event(resp)
                if name == "summary-delta" and any(c["insee"] == "21231" and c["online"] == 1
                                                   for c in seen.get("communes", [])):
                    break
    assert [c["insee"] for c in seen["communes"]] == ["21231"], seen
    assert seen["totals"]["online"] == first["totals"]["online"] + 1
    assert "territory" not in seen and "order" not in seen
    bad = await web.get("/control/api/stream?delta=yes")
    assert bad.status == 400 and bad.doc["parameter"] == "delta"


def test_a_delta_says_what_came_what_went_and_the_order_only_when_it_moved() -> None:
    a, b, c = ({"name": n, "v": 1} for n in "abc")
    old = {"x": 1, "gone": True, "rows": [a, b, c]}
    assert delta(old, old, "rows", "name") == {}
    assert delta(old, {**old, "rows": [a, {**b, "v": 2}, c]}, "rows", "name") == {"rows": [{"name": "b", "v": 2}]}
    new = {"x": 2, "rows": [c, a, {"name": "d", "v": 0}]}
    assert delta(old, new, "rows", "name") == {"x": 2, "gone": None, "rows": [{"name": "d", "v": 0}],
                                               "removed": ["b"], "order": ["c", "a", "d"]}
