"""Commands reach a running agent over a real Mosquitto, run once, never late, and each gets its ack."""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path
from typing import Any

import pytest
from mqtt_testkit import COMMUNE, Fleet, Operator, bus, running_agent, wait_for

from citygate_wire.mqtt import answer_of
from drivers.model import Event, Severity
from simulators.mosquitto import Mosquitto

pytestmark = pytest.mark.timeout(120)



async def test_a_live_read_command_comes_back_done_with_the_values_and_is_journalled(
    tmp_path: Path, fleet: Fleet, broker: Mosquitto
) -> None:
    async with Operator(broker, fleet) as op, running_agent(tmp_path, fleet, broker) as agent:
        cmd_id = await op.send("gw-a", "device.read", {"device": "meter-1"})
        ack = await op.ack(cmd_id)
        await agent.journal.flush()
        stats = await agent.journal.stats()
    assert ack.status == "done", ack
    assert ack.result["device"] == "meter-1" and ack.result["values"] == {"temperature_c": 21.5}
    assert bus(agent).reads == ["meter-1"]
    assert stats.samples == 1


async def test_a_repeated_id_runs_once_and_is_refused_as_replayed_with_the_first_ack_inside(
    tmp_path: Path, fleet: Fleet, broker: Mosquitto
) -> None:
    async with Operator(broker, fleet) as op, running_agent(tmp_path, fleet, broker) as agent:
        cmd_id = await op.send("gw-a", "device.read", {"device": "meter-1"})
        first = await op.ack(cmd_id)
        await op.send("gw-a", "device.read", {"device": "meter-1"}, cmd_id=cmd_id)
        await wait_for(lambda: len(op.acks_for(cmd_id)) == 2, 20, "the answer to the second copy")
    assert bus(agent).reads == ["meter-1"]
    again = op.acks_for(cmd_id)[1]
    assert (again.status, again.code) == ("refused", "replayed") and "not run again" in (again.reason or "")
    assert answer_of(again) == first


async def test_a_repeated_id_is_not_run_again_after_an_agent_restart(
    tmp_path: Path, fleet: Fleet, broker: Mosquitto
) -> None:
    async with Operator(broker, fleet) as op:
        async with running_agent(tmp_path, fleet, broker) as agent:
            cmd_id = await op.send("gw-a", "device.read", {"device": "meter-1"})
            first = await op.ack(cmd_id)
        async with running_agent(tmp_path, fleet, broker) as again:
            await op.send("gw-a", "device.read", {"device": "meter-1"}, cmd_id=cmd_id)
            await wait_for(lambda: len(op.acks_for(cmd_id)) == 2, 20, "the ack after the restart")
    assert bus(agent).reads == ["meter-1"] and bus(again).reads == []
    assert op.acks_for(cmd_id)[1].code == "replayed" and answer_of(op.acks_for(cmd_id)[1]) == first


async def test_an_expired_command_is_refused_and_not_run(tmp_path: Path, fleet: Fleet, broker: Mosquitto) -> None:
    async with Operator(broker, fleet) as op, running_agent(tmp_path, fleet, broker) as agent:
        issued = int(time.time() * 1000) - 120_000
        cmd_id = await op.send("gw-a", "device.read", {"device": "meter-1"}, valid_s=60, issued_ms=issued)
        ack = await op.ack(cmd_id)
    assert (ack.status, ack.code) == ("refused", "expired")
    assert "expired at" in (ack.reason or "")
    assert bus(agent).reads == []


async def test_a_command_that_expires_while_queued_behind_a_slow_one_is_refused_not_run_late(
    tmp_path: Path, fleet: Fleet, broker: Mosquitto
) -> None:
    async with Operator(broker, fleet) as op, running_agent(tmp_path, fleet, broker) as agent:
        bus(agent).gate.clear()
        slow = await op.send("gw-a", "device.read", {"device": "meter-1"}, valid_s=30)
        await wait_for(lambda: bus(agent).reads == ["meter-1"], 20, "the slow read to start")
        short = await op.send("gw-a", "device.read", {"device": "lamp-1"}, valid_s=1.0)
        await asyncio.sleep(1.5)
        bus(agent).gate.set()
        slow_ack, short_ack = await op.ack(slow), await op.ack(short)
    assert slow_ack.status == "done"
    assert (short_ack.status, short_ack.code) == ("refused", "expired")
    assert bus(agent).reads == ["meter-1"]


async def test_an_invalid_command_is_refused_with_the_bad_field(
    tmp_path: Path, fleet: Fleet, broker: Mosquitto
) -> None:
    async with Operator(broker, fleet) as op, running_agent(tmp_path, fleet, broker) as agent:
        cmd_id = await op.send("gw-a", "lighting.override", {"lamp": "lamp-1", "level_pct": 140, "until_ms": 2**40})
        ack = await op.ack(cmd_id)
    assert (ack.status, ack.code) == ("refused", "invalid")
    assert "/args/level_pct" in (ack.reason or "") and "out of range" in (ack.reason or "")
    assert bus(agent).reads == []


@pytest.mark.parametrize(("action", "args", "code", "words"), [
    ("lighting.override", {"group": "rue-x", "level_pct": 100, "until_ms": 4_000_000_000_000}, "unavailable",
     "no lighting service"),
    ("traffic.set_position", {"controller": "tl-9", "position": "yellow_flash", "timeout_s": 1800}, "unavailable",
     "no device 'tl-9'"),
    ("traffic.select_plan", {"controller": "meter-1", "plan": 2, "timeout_s": 600}, "unavailable",
     "not a traffic signal controller"),
    ("device.read", {"device": "nope"}, "unavailable", "no device 'nope'"),
])
async def test_a_command_for_a_service_or_device_this_gateway_lacks_is_refused_with_a_clear_reason(
    tmp_path: Path, fleet: Fleet, broker: Mosquitto, action: str, args: dict[str, Any], code: str, words: str
) -> None:
    async with Operator(broker, fleet) as op, running_agent(tmp_path, fleet, broker):
        ack = await op.ack(await op.send("gw-a", action, args))
    assert (ack.status, ack.code) == ("refused", code)
    assert words in (ack.reason or "")


async def test_set_log_level_changes_the_logger(tmp_path: Path, fleet: Fleet, broker: Mosquitto) -> None:
    name = "citygate.test-control"
    logging.getLogger(name).setLevel(logging.INFO)
    async with Operator(broker, fleet) as op, running_agent(tmp_path, fleet, broker):
        ack = await op.ack(await op.send("gw-a", "agent.set_log_level", {"level": "debug", "logger": name}))
    assert ack.status == "done" and ack.result == {"logger": name, "level": "debug"}
    assert logging.getLogger(name).level == logging.DEBUG


async def test_major_and_critical_events_become_alarms_at_once_and_minor_ones_do_not(
    tmp_path: Path, fleet: Fleet, broker: Mosquitto
) -> None:
    from citygate_wire.mqtt import decode_alarm

    async with Operator(broker, fleet) as op, running_agent(tmp_path, fleet, broker) as agent:
        agent.emit(Event("door-1", 1_764_547_200_000, "door_open", Severity.MINOR))
        agent.emit(Event("tl-1", 1_764_547_200_100, "conflict", Severity.CRITICAL, {"groups": [1, 3]}))
        agent.emit(Event("lamp-1", 1_764_547_200_200, "lamp_failure", Severity.MAJOR))

        def alarms() -> list[Any]:
            return [decode_alarm(p) for t, p in op.raw if t == f"city/{COMMUNE}/gw-a/alarm"]

        await wait_for(lambda: len(alarms()) == 2, 20, "two alarms")
        await agent.journal.flush()
        stats = await agent.journal.stats()
    got = alarms()
    assert [(a.device, a.code, a.severity) for a in got] == [("tl-1", "conflict", "critical"),
                                                             ("lamp-1", "lamp_failure", "major")]
    assert got[0].detail == {"groups": [1, 3]}
    assert stats.events == 3  # the journal keeps all of them, minor included


async def test_state_is_retained_online_with_backlog_version_and_clock(
    tmp_path: Path, fleet: Fleet, broker: Mosquitto
) -> None:
    async with running_agent(tmp_path, fleet, broker):
        # a late subscriber still learns the state: it is retained
        async with Operator(broker, fleet) as op:
            await wait_for(lambda: op.last_state("gw-a") is not None, 20, "the retained state")
    state = op.last_state("gw-a")
    assert state is not None and state.online and state.commune == COMMUNE
    assert state.journal_backlog is not None and state.version
    assert state.config_hash is None or state.config_hash.startswith("sha256:")
    assert next(retained for g, _, retained in op.states if g == "gw-a") is True


async def test_a_clean_stop_publishes_offline_at_once(tmp_path: Path, fleet: Fleet, broker: Mosquitto) -> None:
    async with Operator(broker, fleet) as op:
        async with running_agent(tmp_path, fleet, broker):
            await wait_for(lambda: (s := op.last_state("gw-a")) is not None and s.online, 20, "online")
        await wait_for(lambda: (s := op.last_state("gw-a")) is not None and not s.online, 5, "offline")
    state = op.last_state("gw-a")
    assert state is not None and state.reason == "agent stopped"

