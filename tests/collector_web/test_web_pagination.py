"""Read routes that return the fleet come a page at a time: `limit` (a default, a maximum) and `offset`,
with the total and the next page's address (`next` in the document, or a Link header and X-Total-Count
for an answer that is a JSON array); the alarm log and the command audit, newest first, by a `before`
cursor; a bad value is a 400 problem naming the parameter. On both stores, over real HTTP. (The map's
pages of one snapshot: test_map_api.py.)"""

from __future__ import annotations

from typing import Any

import pytest
from web_testkit import Web, now_ms, sample

from citygate_wire.mqtt import Alarm, Command
from collector.params import FLEET_PAGE, MAX_FLEET_PAGE

#: every route paged by collector.params.page_of, and the member holding its rows (None: a JSON array)
PAGED = [("/api/v1/gateways", "gateways"), ("/api/v1/control/presence", "gateways"),
         ("/api/v1/control/junctions", "junctions"), ("/api/v1/cameras", "cameras"), ("/api/v1/vehicles", "vehicles"),
         ("/api/v1/parking/spaces", None), ("/api/v1/traffic/junctions", None),
         ("/control/api/communes/21231", "cabinets")]


async def viewer(web: Web) -> dict[str, str]:
    headers = await web.add_operator("pager")
    await web.store.set_operator_roles("pager", frozenset({"viewer"}), "test", now_ms())  # type: ignore[attr-defined]
    return headers


async def seed(web: Web, n: int = 5) -> list[str]:
    names = [f"gw-page-{i}" for i in range(n)]
    for name in reversed(names):  # registered out of order: the pages are by name
        await web.add_cabinet(name, "21231", 47.32, 5.04)
    await web.upload(names[0], [sample(0, "lamp-1", now_ms(), lamp_on=True)])
    return names


async def walk(web: Web, path: str, member: str, headers: dict[str, str]) -> list[list[Any]]:
    """Every page from `path` by its `next`, each page's rows."""
    pages: list[list[Any]] = []
    url: str | None = path
    while url is not None:
        doc = (await web.get(url, headers=headers)).doc
        pages.append(doc[member])
        assert doc["total"] == 5 and doc["offset"] == 2 * (len(pages) - 1) and doc["limit"] == 2, doc
        url = doc["next"]
        assert len(pages) < 10
    return pages


@pytest.mark.parametrize(("path", "member"), [("/api/v1/gateways", "gateways"), ("/api/v1/control/presence", "gateways"),
                                              ("/control/api/communes/21231", "cabinets")])
async def test_the_fleet_comes_a_page_at_a_time_by_next(web: Web, path: str, member: str) -> None:
    names = await seed(web)
    headers = await viewer(web)
    pages = await walk(web, path + "?limit=2", member, headers)
    assert [len(p) for p in pages] == [2, 2, 1]
    key = "gateway" if "presence" in path else "name"
    assert [row[key] for page in pages for row in page] == names  # each once, in name order
    whole = (await web.get(path, headers=headers)).doc
    assert len(whole[member]) == 5 and whole["next"] is None and whole["offset"] == 0
    assert whole["limit"] == (1000 if "communes" in path else FLEET_PAGE)
    # past the end: an empty page, no next; the other parameters ride along in next
    past = (await web.get(path + "?offset=5", headers=headers)).doc
    assert past[member] == [] and past["next"] is None and past["total"] == 5
    first = (await web.get(path + "?limit=4&offset=0", headers=headers)).doc
    assert first["next"].endswith("limit=4&offset=4") and first["next"].startswith(path + "?")


async def test_an_array_answer_gives_its_next_page_in_a_link_header(web: Web) -> None:
    """The parking spaces the territory configures (a JSON array): walked by the Link header."""
    whole = await web.get("/api/v1/parking/spaces")
    total = int(whole.headers["X-Total-Count"])
    assert whole.status == 200 and len(whole.doc) == min(total, FLEET_PAGE) and total >= 3, whole.headers
    walked: list[str] = []
    url: str | None = "/api/v1/parking/spaces?limit=2"
    while url is not None:
        reply = await web.get(url)
        assert len(reply.doc) == (2 if len(walked) + 2 <= total else total - len(walked))
        walked += [s["space"] for s in reply.doc]
        link = reply.headers.get("Link")
        url = link[1:link.index(">")] if link else None
        assert (link is None) == (len(walked) == total) and (link is None or link.endswith('>; rel="next"'))
    assert walked == [s["space"] for s in whole.doc] == sorted(walked)
    reply = await web.get("/api/v1/traffic/junctions?limit=3&offset=7")
    assert reply.status == 200 and reply.doc == [] and "Link" not in reply.headers


@pytest.mark.parametrize(("path", "member"), PAGED)
@pytest.mark.parametrize("query", ["limit=0", f"limit={MAX_FLEET_PAGE + 1}", "limit=abc", "offset=-1", "offset=1e3",
                                   "limit=", "limit=%201"])
async def test_a_bad_page_is_a_400_naming_the_parameter(web: Web, path: str, member: str | None, query: str) -> None:
    headers = await viewer(web)
    reply = await web.get(f"{path}?{query}", headers=headers)
    assert reply.status == 400 and reply.content_type == "application/problem+json", (path, query, reply.text)
    assert reply.doc["parameter"] == query.split("=")[0], reply.doc


@pytest.mark.parametrize(("path", "member"), PAGED)
async def test_every_paged_route_says_its_total_and_takes_the_maximum(web: Web, path: str, member: str | None) -> None:
    headers = await viewer(web)
    top = 1000 if "communes" in path else MAX_FLEET_PAGE
    reply = await web.get(f"{path}?limit={top}&offset=0", headers=headers)
    assert reply.status == 200, reply.text
    if member is None:
        assert isinstance(reply.doc, list) and reply.headers["X-Total-Count"].isdigit()
    else:
        assert reply.doc["limit"] == top and isinstance(reply.doc["total"], int) and member in reply.doc


# -- the alarm log and the command audit: a `before` cursor, since they grow at their head ---------------


async def alarm_log(web: Web, n: int) -> list[int]:
    """`n` alarms of one cabinet received a millisecond apart (two at the same instant: the id breaks the
    tie); their ids newest first."""
    gw = (await web.add_cabinet("gw-alarms", "21231", 47.32, 5.04)).gateway
    t0 = now_ms()
    for i in range(n):
        await web.store.record_alarm(gw.id, Alarm(f"a{i}", "lamp-1", t0 + i, "lamp_failure", "major"),  # type: ignore[attr-defined]
                                     t0 + min(i, n - 2))
    rows = await web.store.alarms(limit=100)  # type: ignore[attr-defined]
    return [a.id for a in rows]


async def walk_log(web: Web, url: str, member: str, key: str, headers: dict[str, str],
                   between: Any = None) -> list[list[Any]]:
    """Every page from `url` by its `next` (`between()` awaited after the first page), each page's keys."""
    pages: list[list[Any]] = []
    next_url: str | None = url
    while next_url is not None:
        reply = await web.get(next_url, headers=headers)
        assert reply.status == 200, reply.text
        pages.append([row[key] for row in reply.doc[member]])
        next_url = reply.doc["next"]
        assert next_url is None or ("before=" in next_url and "limit=2" in next_url), next_url
        if len(pages) == 1 and between is not None:
            await between()
        assert len(pages) < 10
    return pages


async def test_the_alarm_log_is_walked_by_a_before_cursor_and_a_new_alarm_shifts_nothing(web: Web) -> None:
    newest_first = await alarm_log(web, 5)
    headers = await viewer(web)
    gw = web.cabinets["gw-alarms"].gateway

    async def a_new_alarm_arrives() -> None:  # at the head: an offset would show the first page's last row again
        await web.store.record_alarm(gw.id, Alarm("late", "lamp-2", now_ms(), "lamp_failure", "major"),  # type: ignore[attr-defined]
                                     now_ms() + 60_000)

    pages = await walk_log(web, "/api/v1/control/alarms?limit=2&gateway=gw-alarms", "alarms", "id", headers,
                           a_new_alarm_arrives)
    assert [len(p) for p in pages] == [2, 2, 1] and [i for p in pages for i in p] == newest_first
    whole = (await web.get("/api/v1/control/alarms", headers=headers)).doc
    assert whole["limit"] == 100 and whole["next"] is None and whole["before"] is None and len(whole["alarms"]) == 6
    # exactly a page's worth: no next page (the route reads one row more to know)
    assert (await web.get("/api/v1/control/alarms?limit=6", headers=headers)).doc["next"] is None
    filtered = (await web.get("/api/v1/control/alarms?limit=1&status=open", headers=headers)).doc
    assert "status=open" in filtered["next"]


async def test_the_command_audit_is_walked_by_a_before_cursor(web: Web) -> None:
    gw = (await web.add_cabinet("gw-cmds", "21231", 47.32, 5.04)).gateway
    t0 = now_ms()
    for i in range(5):  # two issued at the same instant: the id breaks the tie
        issued = t0 + min(i, 3)
        await web.store.add_command(Command(f"cmd-{i}", "lighting.override", {"lamp": "l1", "level_pct": 10},  # type: ignore[attr-defined]
                                            issued, issued + 60_000, "test"), "gateway:gw-cmds", [gw.id])
    headers = await viewer(web)
    pages = await walk_log(web, "/api/v1/control/commands?limit=2", "commands", "id", headers)
    assert pages == [["cmd-4", "cmd-3"], ["cmd-2", "cmd-1"], ["cmd-0"]]
    whole = (await web.get("/api/v1/control/commands", headers=headers)).doc
    assert [c["id"] for c in whole["commands"]] == [i for p in pages for i in p] and whole["next"] is None


@pytest.mark.parametrize("path", ["/api/v1/control/alarms", "/api/v1/control/commands"])
@pytest.mark.parametrize("query", ["limit=0", "limit=10001", "limit=x", "before=", "before=12", "before=x:1",
                                   "before=-1:1", "before=1:", "before=99999999999999999999:1"])
async def test_a_bad_log_page_is_a_400_naming_the_parameter(web: Web, path: str, query: str) -> None:
    headers = await viewer(web)
    reply = await web.get(f"{path}?{query}", headers=headers)
    assert reply.status == 400 and reply.content_type == "application/problem+json", (path, query, reply.text)
    assert reply.doc["parameter"] == query.split("=")[0], reply.doc
    if "alarms" in path:  # an alarm's id is a number
        reply = await web.get(f"{path}?before=1:abc", headers=headers)
        assert reply.status == 400 and reply.doc["parameter"] == "before"
