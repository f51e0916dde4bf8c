"""The demo's embedded amqtt broker: loopback only, and the control link works through it (MQTT 3.1.1)."""

from __future__ import annotations

import socket
from pathlib import Path

import aiomqtt
import pytest
from mqtt_testkit import Fleet, Operator, running_agent, wait_for

from simulators.embedded_broker import start_embedded_broker
from simulators.mosquitto import Mosquitto

pytestmark = pytest.mark.timeout(120)



def listening_on_any(port: int) -> bool:
    """Whether some socket other than loopback's accepts on `port` (the machine's own outward address)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.connect(("192.0.2.1", 9))  # no packet is sent: this only picks the outward interface
        outward = probe.getsockname()[0]
    if outward.startswith("127."):
        raise AssertionError("this machine has no non-loopback address to probe")
    with socket.socket() as s:
        s.settimeout(2)
        return s.connect_ex((outward, port)) == 0


async def test_it_listens_on_loopback_only_and_takes_an_aiomqtt_311_client() -> None:
    async with start_embedded_broker("127.0.0.1", 0) as broker:
        assert broker.url == f"mqtt://127.0.0.1:{broker.port}"
        assert not listening_on_any(broker.port)
        async with aiomqtt.Client("127.0.0.1", broker.port, protocol=aiomqtt.ProtocolVersion.V311,
                                  identifier="probe") as c:
            await c.subscribe("city/+/gw-a/state", qos=1)
            await c.publish("city/21231/gw-a/state", b"{}", qos=1, retain=True)
            message = await anext(aiter(c.messages))
    assert message.payload == b"{}"


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.0.2.10", ""])
async def test_it_refuses_to_bind_anything_but_loopback(host: str) -> None:
    with pytest.raises(ValueError, match="loopback"):
        async with start_embedded_broker(host, 0):
            pass


async def test_an_agent_round_trip_through_the_embedded_broker(tmp_path: Path, fleet: Fleet) -> None:
    async with start_embedded_broker() as embedded:
        broker = Mosquitto(tmp_path / "unused", port=embedded.port)  # only its url is used: amqtt serves it
        async with Operator(broker, fleet) as op, running_agent(tmp_path, fleet, broker, "gw-a"):
            await wait_for(lambda: (s := op.last_state("gw-a")) is not None and s.online, 20, "online")
            ack = await op.ack(await op.send("gw-a", "device.read", {"device": "meter-1"}))
    assert ack.status == "done"
