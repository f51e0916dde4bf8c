"""Two collector instances on one real Mosquitto with a shared subscription (`$share/citygate/...`):
each MQTT message is handled by one instance; one killed (SIGKILL) and started again loses none of
what was published while it was dead. (What it had received and not stored yet is not lost either:
the link acknowledges a message after its commit, tests/scaleout/test_mqtt_kill.py.)"""

from __future__ import annotations

import asyncio
import re
import secrets
import time
from pathlib import Path

import aiohttp
import aiomqtt
from scaleout_kit import COMMUNE, TS0, HAProxy, Instance, fetch

from citygate_wire.mqtt import COLLECTOR_IDENTITY, Alarm, encode_alarm, topic
from collector.control.acl import acl_file, mosquitto_hash, password_file
from collector.store import open_store
from collector.tokens import hash_token
from simulators.mosquitto import Mosquitto

KNOWN = ["gw-a", "gw-b", "gw-c"]
STRANGER = "gw-x"  # known to the broker, not to the collector's registry: each message is refused, and counted


async def metric(session: aiohttp.ClientSession, inst: Instance, pattern: str) -> int:
    async with session.get(inst.url + "/metrics") as resp:
        text = await resp.text()
    m = re.search(pattern + r"\S* (\d+(?:\.\d+)?)", text)
    return int(float(m.group(1))) if m else 0


REFUSED = r'citygate_mqtt_refused_messages_total\{kind="alarm",reason="unknown-gateway"\}'


async def publish_alarms(broker: Mosquitto, tokens: dict[str, str], gateway: str, ids: range) -> None:
    async with aiomqtt.Client("127.0.0.1", broker.port, username=gateway, password=tokens[gateway],
                              identifier=f"{gateway}-{secrets.token_hex(3)}", timeout=20,
                              max_inflight_messages=100) as client:
        for i in ids:
            alarm = Alarm(f"{gateway}-{i}", "lamp-1", TS0 + i, "lamp_failure", "major")
            await client.publish(topic(COMMUNE, gateway, "alarm"), encode_alarm(alarm), qos=1)


async def stored_alarms(url: str, n: int, timeout_s: float = 90) -> list[str]:
    """The stored alarms' ids once there are `n` (or at the timeout)."""
    deadline = time.monotonic() + timeout_s
    while True:
        ids = [r[0] for r in await fetch(url, "SELECT alarm_id FROM alarms")]
        if len(ids) >= n or time.monotonic() > deadline:
            return ids
        await asyncio.sleep(0.2)


async def test_each_message_goes_to_one_instance_and_a_killed_one_loses_none(
        pg_schema_url: str, tmp_path: Path, procs: list[Instance | HAProxy]) -> None:
    url = pg_schema_url
    tokens = {name: "cgw_" + secrets.token_urlsafe(32) for name in [*KNOWN, STRANGER]}
    collector_password = secrets.token_urlsafe(24)
    (tmp_path / "acl").mkdir()
    pw, acl = tmp_path / "acl" / "passwd", tmp_path / "acl" / "acl"
    pw.write_text(password_file([(COLLECTOR_IDENTITY, mosquitto_hash(collector_password)),
                                 *[(n, mosquitto_hash(t)) for n, t in tokens.items()]]))
    acl.write_text(acl_file(tokens))
    (tmp_path / "collector-password").write_text(collector_password)
    broker = Mosquitto(tmp_path / "broker", password_file=pw, acl_file=acl)
    broker.start()
    try:
        async with open_store(url) as store:
            for name in KNOWN:
                await store.add_gateway(name, COMMUNE, hash_token(tokens[name]))

        def instance(name: str) -> Instance:
            return Instance(name, url, tmp_path, "--mqtt-url", broker.url, "--mqtt-password-file",
                            str(tmp_path / "collector-password"), "--mqtt-client-id", f"citygate-collector-{name}",
                            "--mqtt-share-group", "citygate")

        a, b = instance("a"), instance("b")
        for inst in (a, b):
            procs.append(inst)
            inst.start()
        deadline = time.monotonic() + 30
        while not all(f"as citygate-collector-{n}" in broker.log() for n in "ab"):
            assert time.monotonic() < deadline, "the instances did not connect to the broker"
            await asyncio.sleep(0.05)
        await asyncio.sleep(1.0)  # their SUBSCRIBE follows the CONNECT

        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as session:
            # 1. each message to exactly one instance: every stranger's alarm is refused (and counted) once
            await publish_alarms(broker, tokens, STRANGER, range(200))
            counts = (0, 0)
            deadline = time.monotonic() + 60
            while sum(counts) < 200 and time.monotonic() < deadline:
                counts = (await metric(session, a, REFUSED), await metric(session, b, REFUSED))
                await asyncio.sleep(0.1)
            await asyncio.sleep(1.0)  # a copy to the other instance would have arrived by now
            counts = (await metric(session, a, REFUSED), await metric(session, b, REFUSED))
            print(f"stranger's alarms handled by a, b: {counts}")
            assert sum(counts) == 200, counts  # not 400: no message went to both
            assert min(counts) > 0, counts  # both took their share

            # 2. b killed: what the broker gives its session meanwhile waits for it (persistent session)
            await asyncio.gather(*(publish_alarms(broker, tokens, n, range(0, 50)) for n in KNOWN))
            await stored_alarms(url, 150)
            b.kill9()
            await asyncio.gather(*(publish_alarms(broker, tokens, n, range(50, 200)) for n in KNOWN))
            b.start()  # as systemd would
            expected = {f"{n}-{i}" for n in KNOWN for i in range(200)}
            ids = await stored_alarms(url, len(expected))
            assert len(ids) == len(expected) and set(ids) == expected, (len(ids), len(expected))
    finally:
        broker.kill()
