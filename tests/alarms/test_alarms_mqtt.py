"""Alarms that come over a real Mosquitto, through the collector's MQTT link, into operators' alarms: a lost
bus is one alarm however many deliveries (QoS 1 repeats, the upload's copy), and the uploaded restore
clears it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from citygate_wire.common import now_ms
from citygate_wire.mqtt import Alarm, encode_alarm, topic
from collector.app import create_app, start
from collector.control.acl import mosquitto_hash
from collector.control.link import LinkConfig
from collector.control.routes import attach_link
from collector.store import Store
from collector.tokens import hash_token
from tests.alarms.alarms_testkit import COMMUNE, Feed, bus_back
from tests.control.mqtt_testkit import Fleet, client, wait_for

pytestmark = pytest.mark.timeout(180)
LAMPS = ["lamp-1", "lamp-2", "lamp-3", "lamp-4"]


@pytest.fixture
async def centre(tmp_path: Path, store: Store) -> AsyncIterator[tuple[str, Fleet, Any, Feed]]:
    fleet = Fleet(tmp_path / "acl")
    token = fleet.add("gw-a")
    gateway = await store.add_gateway("gw-a", COMMUNE, hash_token(token))
    await store.set_mqtt_password(gateway.id, mosquitto_hash(token), now_ms())
    broker = fleet.broker(tmp_path / "broker")
    broker.start()
    try:
        app = create_app(store)
        link = attach_link(app, LinkConfig(broker.url, fleet.collector_password, keepalive_s=5))
        runner, url = await start(app, "127.0.0.1", 0)
        try:
            await wait_for(lambda: link.connected, 30, "the collector's MQTT link")
            feed = Feed(store)
            feed.adopt(gateway)
            yield url, fleet, broker, feed
        finally:
            await runner.cleanup()
    finally:
        broker.kill()


async def alarms(url: str, query: str = "") -> dict[str, Any]:
    async with aiohttp.ClientSession() as http, http.get(f"{url}/api/v1/alarms{query}") as resp:
        assert resp.status == 200
        doc: dict[str, Any] = await resp.json()
        return doc


async def test_a_lost_bus_over_mqtt_is_one_alarm_and_its_uploaded_restore_clears_it(centre) -> None:  # type: ignore[no-untyped-def]
    url, fleet, broker, feed = centre
    t0 = feed.t0
    sent = [Alarm(f"a{i}", lamp, t0 + i * 1500, "communication_failure", "major", {"failures": 3})
            for i, lamp in enumerate(LAMPS)]
    async with client(broker, "gw-a", fleet.gateways["gw-a"]) as gw:
        for alarm in sent + sent[:2]:  # the first two delivered twice (QoS 1 repeats)
            await gw.publish(topic(COMMUNE, "gw-a", "alarm"), encode_alarm(alarm), qos=1)
    for _ in range(300):
        doc = await alarms(url)
        if doc["alarms"] and doc["alarms"][0]["devices_total"] == len(LAMPS):
            break
        await asyncio.sleep(0.1)
    assert doc["total"] == 1 and doc["alarms"][0]["devices_total"] == len(LAMPS), doc
    # the same journalled events reach the collector in the upload too: still one alarm of 4 devices
    await feed.upload("gw-a", *[(a.device, a.code, (a.ts_ms - t0) / 1000, "major", dict(a.detail)) for a in sent])
    doc = await alarms(url)
    assert doc["total"] == 1 and doc["alarms"][0]["devices_total"] == len(LAMPS)
    await feed.upload("gw-a", *bus_back(LAMPS, 600))
    assert (await alarms(url))["total"] == 0
    cleared = (await alarms(url, "?state=cleared"))["alarms"]
    assert [(a["cleared_how"], a["devices_total"]) for a in cleared] == [("restored", len(LAMPS))]
