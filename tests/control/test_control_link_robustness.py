"""The collector's MQTT link never dies silently: a malformed message, a locked database and a
broker restart each leave it receiving alarms and delivering commands, on a real Mosquitto and
real stores."""

from __future__ import annotations

import asyncio
import sqlite3
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest
from mqtt_testkit import COMMUNE, Fleet, client, wait_for

from citygate_wire.mqtt import Ack, Alarm, Command, decode_command, encode_ack, encode_alarm, topic
from collector.app import create_app, start
from collector.control.link import ControlLink, LinkConfig
from collector.control.routes import attach_link
from collector.store import Store, open_store
from collector.store_sqlite import SqliteStore
from collector.tokens import hash_token
from simulators.mosquitto import Mosquitto

pytestmark = pytest.mark.timeout(120)


@dataclass
class Centre:
    store: Store
    link: ControlLink
    url: str
    gateway_ids: dict[str, int]


@asynccontextmanager
async def centre(store: Store, fleet: Fleet, broker: Mosquitto) -> AsyncIterator[Centre]:
    ids = {name: (await store.add_gateway(name, COMMUNE, hash_token(token))).id
           for name, token in fleet.gateways.items()}
    app = create_app(store)
    link = attach_link(app, LinkConfig(broker.url, fleet.collector_password, resend_s=0.5, keepalive_s=5,
                                       backoff_max_s=1.0, store_retry_s=0.1))
    runner, url = await start(app, "127.0.0.1", 0)
    try:
        await wait_for(lambda: link.connected, 30, "the collector's MQTT link")
        yield Centre(store, link, url, ids)
    finally:
        await runner.cleanup()


def alarm(code: str, detail: dict[str, object] | None = None) -> Alarm:
    return Alarm(f"a-{uuid.uuid4().hex[:12]}", "lamp-1", int(time.time() * 1000), code, "major", detail or {})


async def publish(broker: Mosquitto, fleet: Fleet, gateway: str, kind: str, payload: bytes) -> None:
    async with client(broker, gateway, fleet.gateways[gateway]) as gw:
        await gw.publish(topic(COMMUNE, gateway, kind), payload, qos=1)  # type: ignore[arg-type]


async def logged_codes(store: Store) -> list[str]:
    return [a.code for a in await store.alarms()]


async def wait_alarm(store: Store, code: str, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while code not in await logged_codes(store):
        assert time.monotonic() < deadline, f"alarm {code!r} never logged: {await logged_codes(store)}"
        await asyncio.sleep(0.05)


async def command_is_delivered_and_answered(c: Centre, broker: Mosquitto, fleet: Fleet) -> None:
    """An operator's command reaches gw-a, whose answer is recorded: the link sends and receives."""
    async with client(broker, "gw-a", fleet.gateways["gw-a"], identifier=f"gw-a-{uuid.uuid4().hex[:6]}") as gw:
        await gw.subscribe(topic(COMMUNE, "gw-a", "cmd"), qos=1)
        now = int(time.time() * 1000)
        cmd = Command(uuid.uuid4().hex, "device.read", {"device": "meter-1"}, now, now + 60_000, "alice")
        await c.store.add_command(cmd, "gateway:gw-a", [c.gateway_ids["gw-a"]])
        c.link.kick()
        async with asyncio.timeout(20):
            async for message in gw.messages:
                assert isinstance(message.payload, bytes)
                received = decode_command(message.payload)
                if received.id == cmd.id:
                    break
        await gw.publish(topic(COMMUNE, "gw-a", "ack"), encode_ack(Ack(cmd.id, "done", now, result={"x": 1})),
                         qos=1)
    deadline = time.monotonic() + 20
    while True:
        row = await c.store.command(cmd.id)
        assert row is not None
        if row.deliveries[0].status == "done":
            return
        assert time.monotonic() < deadline, row
        await asyncio.sleep(0.05)


async def metrics(c: Centre) -> str:
    async with aiohttp.ClientSession() as http, http.get(c.url + "/metrics") as resp:
        return await resp.text()


def nested_alarm(depth: int) -> bytes:
    """An alarm whose detail nests `depth` objects deep, written by hand (orjson writes at most 254)."""
    head = encode_alarm(alarm("too_deep")).removesuffix(b'"detail":{}}')
    return head + b'"detail":' + b'{"n":' * depth + b"1" + b"}" * depth + b"}"


async def test_a_malformed_message_is_refused_alone_and_the_link_goes_on(
    db_url: str, fleet: Fleet, broker: Mosquitto, caplog: pytest.LogCaptureFixture
) -> None:
    async with open_store(db_url) as store, centre(store, fleet, broker) as c:
        # read back fine (orjson reads 1024 levels) but too deep to be written as JSON again (254)
        await publish(broker, fleet, "gw-b", "alarm", nested_alarm(300))
        await publish(broker, fleet, "gw-b", "state", b"{not json")
        # PostgreSQL cannot store U+0000: refused on both stores alike
        await publish(broker, fleet, "gw-b", "alarm", encode_alarm(alarm("nul", {"note": "a\x00b"})))
        await publish(broker, fleet, "gw-a", "alarm", encode_alarm(alarm("ordinary")))
        await wait_alarm(store, "ordinary")
        await command_is_delivered_and_answered(c, broker, fleet)
        assert await logged_codes(store) == ["ordinary"]
        assert c.link.connected and c.link.connections == 1 and c.link.restarts == 0
        text = await metrics(c)
    assert 'citygate_mqtt_refused_messages_total{kind="alarm",reason="unstorable"} 1.0' in text
    assert 'citygate_mqtt_refused_messages_total{kind="state",reason="invalid"} 1.0' in text
    assert 'citygate_mqtt_refused_messages_total{kind="alarm",reason="invalid"} 1.0' in text
    assert "citygate_mqtt_link_connected 1.0" in text
    refusals = [r.getMessage() for r in caplog.records if "refused" in r.getMessage()]
    assert len(refusals) == 3 and all("gw-b" in m for m in refusals), refusals  # the sender is named
    assert any("/detail/note" in m and "U+0000" in m for m in refusals), refusals


async def test_an_alarm_arriving_while_sqlite_is_locked_is_stored_once_the_lock_is_released(
    tmp_path: Path, fleet: Fleet, broker: Mosquitto
) -> None:
    path = tmp_path / "collector.db"
    # a short busy timeout, so the lock below outlasts it several times within a quick test
    async with SqliteStore(path, busy_timeout_ms=300) as store, centre(store, fleet, broker) as c:
        other = sqlite3.connect(path, isolation_level=None)
        try:
            other.execute("BEGIN IMMEDIATE")  # another process holds the write lock
            await publish(broker, fleet, "gw-a", "alarm", encode_alarm(alarm("during_lock")))
            await wait_for(lambda: c.link.store_retries >= 2, 20, "the link to meet the lock twice")
            assert await logged_codes(store) == []
            assert c.link.last_error is not None and "locked" in c.link.last_error
            await asyncio.sleep(1.0)
        finally:
            other.execute("COMMIT")
            other.close()
        await wait_alarm(store, "during_lock")
        assert c.link.connected and c.link.connections == 1 and c.link.restarts == 0
        await publish(broker, fleet, "gw-a", "alarm", encode_alarm(alarm("after_lock")))
        await wait_alarm(store, "after_lock")
        await command_is_delivered_and_answered(c, broker, fleet)
        assert "citygate_mqtt_store_retries_total" in await metrics(c)


async def test_after_a_broker_restart_the_link_reconnects_and_alarms_and_commands_flow(
    db_url: str, fleet: Fleet, broker: Mosquitto
) -> None:
    async with open_store(db_url) as store, centre(store, fleet, broker) as c:
        await asyncio.to_thread(broker.restart)  # same port
        await wait_for(lambda: c.link.connected and c.link.connections == 2, 30, "the link to reconnect")
        assert c.link.last_error  # the outage is kept for the operator
        await publish(broker, fleet, "gw-a", "alarm", encode_alarm(alarm("after_restart")))
        await wait_alarm(store, "after_restart")
        await command_is_delivered_and_answered(c, broker, fleet)


async def test_a_failure_outside_a_message_restarts_the_link_and_is_shown(
    db_url: str, fleet: Fleet, broker: Mosquitto
) -> None:
    async with open_store(db_url) as store, centre(store, fleet, broker) as c:
        # a session that fails for a reason other than the broker or the database being down: a
        # command whose stored arguments are not JSON (a hand edit of the database) cannot be read to be sent
        now = int(time.time() * 1000)
        broken = Command(uuid.uuid4().hex, "device.read", {"device": "meter-1"}, now, now + 2_000, "alice")
        await store.add_command(broken, "gateway:gw-a", [c.gateway_ids["gw-a"]])
        await store._ctl_exec("UPDATE commands SET args = $1 WHERE id = $2", "{not json", broken.id)  # type: ignore[attr-defined]
        c.link.kick()
        await wait_for(lambda: c.link.restarts >= 1, 20, "the link to fail and restart")
        assert c.link.last_error
        await wait_for(lambda: c.link.connected, 30, "the link to reconnect")
        await asyncio.sleep(2.5)  # the broken command expires and is no longer sent
        await command_is_delivered_and_answered(c, broker, fleet)
        assert "citygate_mqtt_link_restarts_total" in await metrics(c)

