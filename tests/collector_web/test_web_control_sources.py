"""The control-centre data says where presence comes from: uploads when the collector runs without
MQTT, the MQTT presence table when its control link runs. Its alarms are the operators' alarms
(collector.alarms), folded from both sources: the uploaded events and, with the link, the MQTT alarm
log; the fold runs a moment after what it folds arrives, so the tests wait for it."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp
import orjson
import pytest
from web_testkit import Web, event, now_ms, sample

from citygate_wire.mqtt import Alarm
from collector.app import create_app, start
from collector.control.link import LinkConfig
from collector.control.routes import attach_link
from collector.store import Store


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
async def mqtt_web(store: Store) -> AsyncIterator[Web]:
    """A collector whose control link runs, towards a broker that is not there (it keeps retrying)."""
    app = create_app(store)
    attach_link(app, LinkConfig(url=f"mqtt://127.0.0.1:{closed_port()}", password="unused", backoff_max_s=1.0))
    runner, url = await start(app, "127.0.0.1", 0)
    try:
        async with aiohttp.ClientSession() as session:
            yield Web(url, store, session)
    finally:
        await runner.cleanup()


async def summary_until(web: Web, cond: Callable[[dict[str, Any]], bool], what: str) -> dict[str, Any]:
    """The summary once `cond` holds of it (the alarm fold and the summary's short cache take a moment)."""
    deadline = asyncio.get_running_loop().time() + 15
    while True:
        doc: dict[str, Any] = (await web.get("/control/api/summary")).doc
        if cond(doc):
            return doc
        assert asyncio.get_running_loop().time() < deadline, f"{what}: {doc['alarms']}"
        await asyncio.sleep(0.1)


async def seed(web: Web) -> None:
    t = now_ms() - 5_000
    for name, commune in (("gw-a", "21231"), ("gw-b", "21231")):
        await web.add_cabinet(name, commune, 47.32, 5.04)
        await web.upload(name, [sample(0, "lamp-1", t, lamp_on=True),
                                event(0, "cabinet", t + 1, "supply_loss", "critical")])


async def test_without_mqtt_presence_and_alarms_come_from_uploads(web: Web) -> None:
    await seed(web)
    doc = await summary_until(web, lambda d: d["totals"]["alarms"] == 2, "both cabinets' supply loss")
    assert doc["presence_source"] == "uploads"
    assert doc["totals"]["online"] == 2
    assert {a["code"] for a in doc["alarms"]} == {"supply_loss"}
    # the clearing event closes an uploaded alarm
    await web.upload("gw-a", [event(0, "cabinet", now_ms(), "supply_loss_cleared", "info")])
    doc = await summary_until(web, lambda d: d["totals"]["alarms"] == 1, "gw-a's alarm cleared")
    assert [a["gateway"] for a in doc["alarms"]] == ["gw-b"]


async def test_with_mqtt_presence_and_alarms_come_from_the_control_plane(mqtt_web: Web) -> None:
    web = mqtt_web
    await seed(web)
    now = now_ms()
    a, b = web.cabinets["gw-a"].gateway, web.cabinets["gw-b"].gateway
    await web.store.record_state(a.id, True, "21231", orjson.dumps({"v": 1, "online": True, "interval_s": 60}), now)
    await web.store.record_state(b.id, False, "21231", orjson.dumps({"v": 1, "online": False}), now)
    await web.store.record_alarm(a.id, Alarm("al-1", "door", now, "door_open", "major"), now)
    doc = await summary_until(web, lambda d: any(x["code"] == "door_open" for x in d["alarms"]),
                              "the MQTT alarm folded")
    assert doc["presence_source"] == "mqtt"
    # gw-b uploaded a moment ago, but its Last Will said offline: MQTT decides
    assert (doc["totals"]["gateways"], doc["totals"]["online"]) == (2, 1)
    door = [x for x in doc["alarms"] if x["code"] == "door_open"]
    assert [(x["gateway"], x["status"], x["commune"]) for x in door] == [("gw-a", "open", "21231")]
    await web.store.act_on_alarm(door[0]["id"], "acknowledge", "alice", None, now_ms())
    doc = await summary_until(web, lambda d: [x["status"] for x in d["alarms"] if x["code"] == "door_open"]
                              == ["acknowledged"], "the acknowledgement")  # still open work
    await web.store.act_on_alarm(door[0]["id"], "clear", "alice", "porte refermée", now_ms())
    doc = await summary_until(web, lambda d: not any(x["code"] == "door_open" for x in d["alarms"]),
                              "the alarm cleared")
    assert doc["totals"]["alarms"] == len(doc["alarms"])  # the uploaded supply losses, one per cabinet
    cabinet = (await web.get("/control/api/cabinets/gw-b")).doc
    assert cabinet["presence_source"] == "mqtt" and cabinet["gateway"]["online"] is False
    metrics = (await web.get("/metrics")).text
    assert "citygate_gateways_online 1.0" in metrics
