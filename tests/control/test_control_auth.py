"""Commands are authenticated end to end: a running agent over a real Mosquitto runs only what the
collector's key signed for it, once, and answers every other message on its command topic with an
ack that says why it did not run it."""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import orjson
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from mqtt_testkit import Fleet, Operator, bus, control, running_agent, wait_for

from citygate_wire.mqtt import Command, answer_of, encode_command
from simulators.mosquitto import Mosquitto

pytestmark = pytest.mark.timeout(120)
READ = {"device": "meter-1"}



def signed(fleet: Fleet, gateway: str = "gw-a", *, issued_ms: int | None = None, issued_by: str = "alice") -> bytes:
    now = int(time.time() * 1000) if issued_ms is None else issued_ms
    cmd = Command(uuid.uuid4().hex, "device.read", READ, now, now + 60_000, issued_by, gateway)
    return encode_command(cmd, fleet.command_key)


async def test_a_signed_command_runs_once(tmp_path: Path, fleet: Fleet, broker: Mosquitto) -> None:
    async with Operator(broker, fleet) as op, running_agent(tmp_path, fleet, broker) as agent:
        ack = await op.ack(await op.send("gw-a", "device.read", READ))
    assert ack.status == "done"
    assert bus(agent).reads == ["meter-1"]


@pytest.mark.parametrize(("how", "code", "words"), [
    ("another key", "forged", "signature does not match"),
    ("unsigned", "unsigned", "no signature"),
    ("23 h ahead", "future", "in the future"),
    ("for gw-b", "misaddressed", "addressed to 'gw-b'"),
])
async def test_a_command_not_signed_for_this_gateway_now_is_refused_with_an_ack_that_says_why(
    tmp_path: Path, fleet: Fleet, broker: Mosquitto, how: str, code: str, words: str
) -> None:
    async with Operator(broker, fleet) as op, running_agent(tmp_path, fleet, broker) as agent:
        if how == "another key":
            cmd_id = await op.send("gw-a", "device.read", READ, key=Ed25519PrivateKey.generate())
        elif how == "unsigned":
            cmd_id = await op.send("gw-a", "device.read", READ, key=None)
        elif how == "23 h ahead":
            cmd_id = await op.send("gw-a", "device.read", READ, issued_ms=int(time.time() * 1000) + 23 * 3600_000)
        else:
            cmd_id = await op.send("gw-a", "device.read", READ, addressee="gw-b")
        ack = await op.ack(cmd_id)
    assert (ack.status, ack.code) == ("refused", code)
    assert words in (ack.reason or ""), ack.reason
    assert bus(agent).reads == []
    assert control(agent).refused == 1


async def test_issued_by_is_signed_a_copy_with_another_operator_is_forged(
    tmp_path: Path, fleet: Fleet, broker: Mosquitto
) -> None:
    doc = orjson.loads(signed(fleet, issued_by="alice"))
    doc["issued_by"] = "mallory"
    async with Operator(broker, fleet) as op, running_agent(tmp_path, fleet, broker) as agent:
        await op.publish("gw-a", orjson.dumps(doc))
        ack = await op.ack(doc["id"])
    assert (ack.status, ack.code) == ("refused", "forged")
    assert bus(agent).reads == []


async def test_a_replayed_command_is_refused_and_not_run_again(tmp_path: Path, fleet: Fleet, broker: Mosquitto) -> None:
    captured = signed(fleet)
    cmd_id = orjson.loads(captured)["id"]
    async with Operator(broker, fleet) as op, running_agent(tmp_path, fleet, broker) as agent:
        await op.publish("gw-a", captured)
        first = await op.ack(cmd_id)
        await op.publish("gw-a", captured)
        await wait_for(lambda: len(op.acks_for(cmd_id)) == 2, 20, "the answer to the replay")
    replay = op.acks_for(cmd_id)[1]
    assert first.status == "done"
    assert (replay.status, replay.code) == ("refused", "replayed") and "not run again" in (replay.reason or "")
    assert answer_of(replay) == first  # a collector that lost the first answer still learns it
    assert bus(agent).reads == ["meter-1"]


async def test_a_forged_copy_does_not_use_up_the_id_of_the_genuine_command(
    tmp_path: Path, fleet: Fleet, broker: Mosquitto
) -> None:
    genuine = signed(fleet)
    doc = orjson.loads(genuine)
    forged = dict(doc, sig=orjson.loads(signed(fleet))["sig"])  # a real signature, of another command
    async with Operator(broker, fleet) as op, running_agent(tmp_path, fleet, broker) as agent:
        await op.publish("gw-a", orjson.dumps(forged))
        await wait_for(lambda: bool(op.acks_for(doc["id"])), 20, "the refusal of the forged copy")
        await op.publish("gw-a", genuine)
        await wait_for(lambda: len(op.acks_for(doc["id"])) == 2, 20, "the genuine command's ack")
    refused, done = op.acks_for(doc["id"])
    assert (refused.status, refused.code) == ("refused", "forged")
    assert done.status == "done" and bus(agent).reads == ["meter-1"]


async def test_a_gateway_without_a_command_key_refuses_every_command_saying_the_key_is_missing(
    tmp_path: Path, fleet: Fleet, broker: Mosquitto
) -> None:
    async with Operator(broker, fleet) as op, \
            running_agent(tmp_path, fleet, broker, mqtt={"command_key": None}) as agent:
        ack = await op.ack(await op.send("gw-a", "device.read", READ))
    assert (ack.status, ack.code) == ("refused", "unverifiable")
    assert "no command key" in (ack.reason or "")
    assert bus(agent).reads == []
