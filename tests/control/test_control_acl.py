"""Mosquitto run with the generated password and ACL files: a gateway can neither command another
gateway, nor read its commands, nor fake its state; only the collector's identity commands."""

from __future__ import annotations

import asyncio
import uuid

import aiomqtt
import pytest
from mqtt_testkit import COMMUNE, Fleet, Operator, client, wait_for

from citygate_wire.mqtt import COLLECTOR_IDENTITY, State, decode_command, decode_state, encode_state, topic
from simulators.mosquitto import Mosquitto

pytestmark = pytest.mark.timeout(120)

REFUSED = r"[Nn]ot authori[sz]ed|[Bb]ad user"


class Listener:
    """A client that records every message it gets."""

    def __init__(self, c: aiomqtt.Client) -> None:
        self.client = c
        self.got: list[tuple[str, bytes, bool]] = []
        self.task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Listener:
        await self.client.__aenter__()
        self.task = asyncio.create_task(self._read())
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.task is not None
        self.task.cancel()
        await self.client.__aexit__(None, None, None)

    async def _read(self) -> None:
        async for m in self.client.messages:
            assert isinstance(m.payload, bytes)
            self.got.append((m.topic.value, m.payload, m.retain))


def gw(broker: Mosquitto, fleet: Fleet, name: str, password: str | None = None) -> aiomqtt.Client:
    return client(broker, name, password or fleet.gateways[name], identifier=f"{name}-{uuid.uuid4().hex[:6]}")


async def test_a_gateway_cannot_command_another_gateway_nor_itself(broker: Mosquitto, fleet: Fleet) -> None:
    async with Listener(gw(broker, fleet, "gw-a")) as a, gw(broker, fleet, "gw-b") as b, \
            Operator(broker, fleet) as op:
        await a.client.subscribe("city/+/gw-a/cmd", qos=1)
        forged = b'{"v":1,"id":"forged-by-b","action":"device.read","args":{"device":"x"},' \
                 b'"issued_at_ms":1764547200000,"expires_at_ms":1764547260000,"issued_by":"gw-b"}'
        await b.publish(topic(COMMUNE, "gw-a", "cmd"), forged, qos=1)
        await a.client.publish(topic(COMMUNE, "gw-a", "cmd"), forged.replace(b"gw-b", b"gw-a"), qos=1)
        # the control centre's command, sent after both forgeries were taken by the broker, arrives alone
        real = await op.send("gw-a", "device.read", {"device": "x"})
        await wait_for(lambda: len(a.got) >= 1, 20, "the collector's command")
        await asyncio.sleep(0.3)
    assert [decode_command(p).id for _, p, _ in a.got] == [real]


async def test_a_gateway_cannot_read_another_gateways_commands(broker: Mosquitto, fleet: Fleet) -> None:
    async with Listener(gw(broker, fleet, "gw-a")) as a, Listener(gw(broker, fleet, "gw-b")) as b, \
            Operator(broker, fleet) as op:
        await a.client.subscribe("city/+/gw-a/cmd", qos=1)
        for pattern in ("city/+/gw-a/cmd", f"city/{COMMUNE}/+/cmd", "city/#", "#"):
            await b.client.subscribe(pattern, qos=1)
        cmd = await op.send("gw-a", "device.read", {"device": "x"})
        await wait_for(lambda: len(a.got) == 1, 20, "gw-a's own command")
        await asyncio.sleep(0.3)
    assert decode_command(a.got[0][1]).id == cmd
    assert b.got == []


async def test_a_gateway_cannot_fake_another_gateways_state_live_or_retained(broker: Mosquitto, fleet: Fleet) -> None:
    async with Operator(broker, fleet) as op, gw(broker, fleet, "gw-a") as a, gw(broker, fleet, "gw-b") as b:
        real = encode_state(State("gw-a", COMMUNE, True, 1_764_547_200_000, version="real"))
        fake = encode_state(State("gw-a", COMMUNE, False, 1_764_547_201_000, reason="faked by gw-b"))
        await a.publish(topic(COMMUNE, "gw-a", "state"), real, qos=1, retain=True)
        await wait_for(lambda: op.last_state("gw-a") is not None, 20, "gw-a's real state")
        await b.publish(topic(COMMUNE, "gw-a", "state"), fake, qos=1, retain=True)
        await b.publish(topic("21452", "gw-a", "state"), fake, qos=1, retain=True)
        await b.publish(topic(COMMUNE, "gw-b", "state"), encode_state(State("gw-b", COMMUNE, True, version="b")),
                        qos=1, retain=True)
        await wait_for(lambda: op.last_state("gw-b") is not None, 20, "gw-b's own state")
    assert [s.version for g, s, _ in op.states if g == "gw-a"] == ["real"]
    # and a late subscriber finds only gw-a's own retained state
    async with Listener(client(broker, COLLECTOR_IDENTITY, fleet.collector_password)) as late:
        await late.client.subscribe("city/+/gw-a/state", qos=1)
        await wait_for(lambda: len(late.got) == 1, 20, "the retained state")
        await asyncio.sleep(0.3)
    assert [decode_state(p).version for _, p, _ in late.got] == ["real"]


async def test_only_the_own_token_opens_a_gateways_identity(broker: Mosquitto, fleet: Fleet) -> None:
    with pytest.raises(aiomqtt.MqttCodeError, match=REFUSED):
        async with gw(broker, fleet, "gw-a", password=fleet.gateways["gw-b"]):
            pass
    with pytest.raises(aiomqtt.MqttCodeError, match=REFUSED):
        async with aiomqtt.Client("127.0.0.1", broker.port, protocol=aiomqtt.ProtocolVersion.V311):
            pass
    with pytest.raises(aiomqtt.MqttCodeError, match=REFUSED):
        async with client(broker, COLLECTOR_IDENTITY, fleet.gateways["gw-a"]):
            pass
    async with gw(broker, fleet, "gw-a"):
        pass


async def test_a_gateway_reads_its_commands_whatever_the_commune_level(broker: Mosquitto, fleet: Fleet) -> None:
    # a gateway installed before the Neuilly-Crimolois merger may still say 21213: its name is what counts
    async with Listener(gw(broker, fleet, "gw-a")) as a, Operator(broker, fleet) as op:
        await a.client.subscribe("city/+/gw-a/cmd", qos=1)
        await op.send("gw-a", "device.read", {"device": "x"}, commune="21213")
        await wait_for(lambda: len(a.got) == 1, 20, "the command")
