"""The control-centre data says where presence and alarms come from: uploads when the collector
runs without MQTT, the MQTT presence table and alarm log when its control link runs."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator

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


async def seed(web: Web) -> None:
    t = now_ms() - 5_000
    for name, commune in (("gw-a", "21231"), ("gw-b", "21231")):
        await web.add_cabinet(name, commune, 47.32, 5.04)
        await web.upload(name, [sample(0, "lamp-1", t, lamp_on=True),
                                event(0, "cabinet", t + 1, "supply_loss", "critical")])


async def test_without_mqtt_presence_and_alarms_come_from_uploads(web: Web) -> None:
    await seed(web)
    doc = (await web.get("/control/api/summary")).doc
    assert doc["presence_source"] == "uploads"
    assert (doc["totals"]["online"], doc["totals"]["alarms"]) == (2, 2)
    assert {a["code"] for a in doc["alarms"]} == {"supply_loss"}
    # the clearing event closes an uploaded alarm
    await web.upload("gw-a", [event(0, "cabinet", now_ms(), "supply_loss_cleared", "info")])
    doc = (await web.get("/control/api/summary")).doc
    assert [a["gateway"] for a in doc["alarms"]] == ["gw-b"]


async def test_with_mqtt_presence_and_alarms_come_from_the_control_plane(mqtt_web: Web) -> None:
    web = mqtt_web
    await seed(web)
    now = now_ms()
    a, b = web.cabinets["gw-a"].gateway, web.cabinets["gw-b"].gateway
    await web.store.record_state(a.id, True, "21231", orjson.dumps({"v": 1, "online": True, "interval_s": 60}), now)
    await web.store.record_state(b.id, False, "21231", orjson.dumps({"v": 1, "online": False}), now)
    await web.store.record_alarm(a.id, Alarm("al-1", "door", now, "door_open", "major"), now)
    doc = (await web.get("/control/api/summary")).doc
    assert doc["presence_source"] == "mqtt"
    # gw-b uploaded a moment ago, but its Last Will said offline: MQTT decides
    assert (doc["totals"]["gateways"], doc["totals"]["online"]) == (2, 1)
    assert [(x["gateway"], x["code"], x["status"], x["commune"]) for x in doc["alarms"]] == \
        [("gw-a", "door_open", "open", "21231")]
    [row] = await web.store.alarms(status="open")
    await web.store.update_alarm(row.id, "acknowledge", "alice", None, now_ms())
    doc = (await web.get("/control/api/summary")).doc
    assert [x["status"] for x in doc["alarms"]] == ["acknowledged"]  # still open work
    await web.store.update_alarm(row.id, "clear", "alice", "porte refermée", now_ms())
    doc = (await web.get("/control/api/summary")).doc
    assert doc["alarms"] == [] and doc["totals"]["alarms"] == 0
    cabinet = (await web.get("/control/api/cabinets/gw-b")).doc
    assert cabinet["presence_source"] == "mqtt" and cabinet["gateway"]["online"] is False
    metrics = (await web.get("/metrics")).text
    assert "citygate_gateways_online 1.0" in metrics
