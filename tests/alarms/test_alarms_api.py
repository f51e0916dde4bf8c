"""The alarms API over real HTTP: list with filters and counts, one alarm, the actions, the problems."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest

from citygate_wire.common import now_ms
from collector.app import create_app, start
from collector.live import CHANGES
from collector.store import Store
from collector.tokens import hash_token, new_operator_token
from tests.alarms.alarms_testkit import COMMUNE, OTHER_COMMUNE, Feed, bus_back, bus_lost


@dataclass
class Api:
    url: str
    http: aiohttp.ClientSession
    feed: Feed
    tokens: dict[str, str]
    app: Any

    async def call(self, method: str, path: str, body: Any = None, who: str | None = "alice") -> tuple[int, Any]:
        headers = {"Authorization": f"Bearer {self.tokens[who]}"} if who else {}
        async with self.http.request(method, self.url + path, json=body, headers=headers) as resp:
            return resp.status, await resp.json(content_type=None)


@pytest.fixture
async def api(store: Store) -> AsyncIterator[Api]:
    tokens = {}
    for name, roles in (("alice", frozenset({"operator"})), ("vera", frozenset({"viewer"}))):
        tokens[name] = new_operator_token()
        await store.add_operator(name, hash_token(tokens[name]), now_ms())
        await store.set_operator_roles(name, roles, "test", now_ms())
    app = create_app(store)
    runner, url = await start(app, port=0)
    try:
        async with aiohttp.ClientSession() as http:
            yield Api(url, http, Feed(store), tokens, app)
    finally:
        await runner.cleanup()


async def test_the_list_its_filters_and_counts(api: Api) -> None:
    await api.feed.upload("gw-a", *bus_lost([f"lamp-{i}" for i in range(8)], 100),
                          ("cabinet", "door_open", 50, "critical", {}))
    await api.feed.gateway("gw-b", OTHER_COMMUNE)
    await api.feed.mqtt("gw-b", "lamp-1", "lamp_failure", 10)
    status, doc = await api.call("GET", "/api/v1/alarms")  # the API folds what came in before answering
    assert status == 200 and doc["total"] == 3
    assert doc["alarms"][0]["kind"] == "door_open"  # critical first
    bus = next(a for a in doc["alarms"] if a["kind"] == "communication_failure")
    assert (bus["devices_total"], bus["devices_active"], bus["commune"]) == (8, 8, COMMUNE)
    assert doc["counts"]["commune"] == {COMMUNE: 2, OTHER_COMMUNE: 1}
    assert doc["counts"]["state"] == {"open": 3, "acknowledged": 0, "cleared": 0}
    status, doc = await api.call("GET", f"/api/v1/alarms?commune={OTHER_COMMUNE}&severity=major")
    assert status == 200 and [a["gateway"] for a in doc["alarms"]] == ["gw-b"]
    status, doc = await api.call("GET", "/api/v1/alarms?kind=door_open&gateway=gw-a&limit=1&offset=0", who="vera")
    assert status == 200 and doc["total"] == 1 and doc["limit"] == 1
    status, doc = await api.call("GET", "/api/v1/alarms?state=open,acknowledged,cleared")
    assert doc["total"] == 3


async def test_an_alarm_with_devices_history_and_its_restore(api: Api) -> None:
    lamps = ["lamp-1", "lamp-2", "lamp-3"]
    await api.feed.upload("gw-a", *bus_lost(lamps, 100))
    _, doc = await api.call("GET", "/api/v1/alarms")
    alarm_id = doc["alarms"][0]["id"]
    version = api.app[CHANGES].version
    await api.feed.upload("gw-a", *bus_back(lamps, 500))
    status, one = await api.call("GET", f"/api/v1/alarms/{alarm_id}")
    assert status == 200 and one["state"] == "cleared" and one["cleared_how"] == "restored"
    assert one["duration_ms"] == 402_000  # from the first raise to the last device back
    assert [d["device"] for d in one["devices"]] == lamps and not any(d["active"] for d in one["devices"])
    assert [h["kind"] for h in one["history"]] == ["raise"] * 3 + ["clear"] * 3
    assert api.app[CHANGES].version > version  # the page heard of it


async def test_acknowledge_assign_comment_clear_from_the_api(api: Api) -> None:
    await api.feed.upload("gw-a", ("lamp-1", "lamp_failure", 10, "major", {}))
    _, doc = await api.call("GET", "/api/v1/alarms")
    path = f"/api/v1/alarms/{doc['alarms'][0]['id']}"
    status, one = await api.call("POST", f"{path}/ack", {"comment": "seen"})
    assert status == 200 and (one["state"], one["acknowledged_by"]) == ("acknowledged", "alice")
    status, problem = await api.call("POST", f"{path}/ack")
    assert status == 409 and problem["type"].endswith("alarm-state") and problem["state"] == "acknowledged"
    status, one = await api.call("POST", f"{path}/assign", {"operator": "vera"})
    assert status == 200 and one["assignee"] == "vera"
    status, one = await api.call("POST", f"{path}/comment", {"comment": "crew on site"})
    assert status == 200 and [c["text"] for c in one["comments"]] == ["seen", "crew on site"]
    status, one = await api.call("POST", f"{path}/clear", {"comment": "lamp replaced"})
    assert status == 200 and (one["state"], one["cleared_by"], one["cleared_how"]) == ("cleared", "alice", "manual")
    assert [(a["operator"], a["action"]) for a in one["audit"]] == [
        ("alice", "acknowledge"), ("alice", "assign"), ("alice", "comment"), ("alice", "clear")]
    _, doc = await api.call("GET", "/api/v1/alarms?state=cleared")
    assert doc["total"] == 1


@pytest.mark.parametrize(("method", "path", "body", "who", "status", "slug"), [
    ("GET", "/api/v1/alarms?state=closed", None, "alice", 400, "invalid-parameter"),
    ("GET", "/api/v1/alarms?severity=minor", None, "alice", 400, "invalid-parameter"),
    ("GET", "/api/v1/alarms?commune=99999", None, "alice", 400, "invalid-parameter"),
    ("GET", "/api/v1/alarms?limit=0", None, "alice", 400, "invalid-parameter"),
    ("GET", "/api/v1/alarms/999999", None, "alice", 404, "unknown-alarm"),
    ("GET", "/api/v1/alarms/abc", None, "alice", 404, "unknown-alarm"),
    ("POST", "/api/v1/alarms/{id}/ack", None, None, 401, "unauthorized"),
    ("POST", "/api/v1/alarms/{id}/ack", None, "vera", 403, "forbidden-role"),
    ("POST", "/api/v1/alarms/{id}/snooze", {}, "alice", 404, "not-found"),
    ("POST", "/api/v1/alarms/{id}/clear", {}, "alice", 400, "invalid-body"),
    ("POST", "/api/v1/alarms/{id}/comment", {"comment": "x" * 1001}, "alice", 400, "invalid-body"),
    ("POST", "/api/v1/alarms/{id}/comment", ["not", "an object"], "alice", 400, "invalid-body"),
    ("POST", "/api/v1/alarms/{id}/ack", {"note": "old name"}, "alice", 400, "invalid-body"),
    ("POST", "/api/v1/alarms/{id}/assign", {"operator": "nobody"}, "alice", 400, "unknown-operator"),
    ("POST", "/api/v1/alarms/424242/ack", None, "alice", 404, "unknown-alarm"),
])
async def test_bad_requests_get_a_problem(api: Api, method: str, path: str, body: Any, who: str | None, status: int,
                                          slug: str) -> None:
    await api.feed.upload("gw-a", ("lamp-1", "lamp_failure", 10, "major", {}))
    _, doc = await api.call("GET", "/api/v1/alarms")
    got, problem = await api.call(method, path.replace("{id}", str(doc["alarms"][0]["id"])), body, who)
    assert (got, problem["type"].rsplit(":", 1)[-1]) == (status, slug), problem


async def test_a_police_vehicles_alarms_are_for_the_police_role_only(api: Api) -> None:
    store = api.feed.store
    await api.feed.gateway("gw-police-1")
    await store.add_vehicle("police-1", "police", "21231", "gw-police-1", "gps", now_ms())
    api.tokens["paula"] = new_operator_token()
    await store.add_operator("paula", hash_token(api.tokens["paula"]), now_ms())
    await store.set_operator_roles("paula", frozenset({"operator", "police"}), "test", now_ms())
    await api.feed.upload("gw-police-1", ("gps", "gnss_no_fix", 10, "major", {"satellites": 0}))
    await api.feed.upload("gw-a", ("lamp-1", "lamp_failure", 10, "major", {}))
    _, seen = await api.call("GET", "/api/v1/alarms", who="paula")
    assert sorted(a["gateway"] for a in seen["alarms"]) == ["gw-a", "gw-police-1"]
    police_id = next(a["id"] for a in seen["alarms"] if a["gateway"] == "gw-police-1")
    _, doc = await api.call("GET", "/api/v1/alarms")
    assert [a["gateway"] for a in doc["alarms"]] == ["gw-a"] and doc["total"] == 1
    assert sum(doc["counts"]["commune"].values()) == 1 and sum(doc["counts"]["state"].values()) == 1
    for method, path in (("GET", f"/api/v1/alarms/{police_id}"), ("POST", f"/api/v1/alarms/{police_id}/ack")):
        status, problem = await api.call(method, path)
        assert status == 404 and problem["type"].endswith("unknown-alarm")
    status, _ = await api.call("POST", f"/api/v1/alarms/{police_id}/ack", who="paula")
    assert status == 200
