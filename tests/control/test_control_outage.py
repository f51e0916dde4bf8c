"""Broker outages: a restart mid-command still delivers the ack, and an hour without a broker does
not stop programs or journalling; alarms wait (bounded) and go out on return."""

from __future__ import annotations

import asyncio
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from mqtt_testkit import COMMUNE, Fleet, Operator, bus, control, running_agent, wait_for

from citygate_wire.mqtt import decode_alarm
from drivers.model import Event, Severity
from edge_agent.clock import FakeClock
from simulators.lamps import LampSimulator
from simulators.mosquitto import Mosquitto

pytestmark = pytest.mark.timeout(180)

REPO = Path(__file__).resolve().parents[2]
LAMP_MAP = REPO / "configs" / "registermaps" / "lamp-lc100.toml"
PROGRAMS = REPO / "configs" / "lighting"
LEVEL_CMD = 0  # level_cmd_pct in the LC100 map


async def test_broker_restart_mid_command_the_agent_reconnects_and_the_pending_ack_arrives(
    tmp_path: Path, fleet: Fleet, broker: Mosquitto
) -> None:
    async with running_agent(tmp_path, fleet, broker) as agent:
        async with Operator(broker, fleet, identifier="control-centre") as op:
            bus(agent).gate.clear()
            cmd_id = await op.send("gw-a", "device.read", {"device": "meter-1"}, valid_s=120)
            await wait_for(lambda: bus(agent).reads == ["meter-1"], 20, "the command to start")
            await asyncio.to_thread(broker.stop)
        # the device answers while the broker is down: the ack can only wait
        bus(agent).gate.set()
        await wait_for(lambda: not control(agent).connected, 20, "the agent to notice")
        await asyncio.sleep(0.5)
        await asyncio.to_thread(broker.restart)
        await wait_for(lambda: control(agent).connections == 2, 30, "the agent to reconnect")
        # the control centre's persistent session kept what arrived while it was away
        async with Operator(broker, fleet, identifier="control-centre") as op2:
            ack = await op2.ack(cmd_id, timeout=30)
    assert ack.status == "done" and ack.result["device"] == "meter-1"
    assert bus(agent).reads == ["meter-1"]  # run once
    assert op.acks_for(cmd_id) == []  # nothing arrived before the outage


async def test_an_hour_without_broker_does_not_stop_programs_or_journalling(
    tmp_path: Path, fleet: Fleet, broker: Mosquitto
) -> None:
    # Dijon's program: 100 % at night, 70 % from 22:00. The hour from 21:30 to 22:30 (Paris) passes
    # on the agent's clock with no broker; the real lighting service drives real Modbus lamps.
    start = datetime(2026, 1, 15, 20, 30, tzinfo=UTC)  # 21:30 in Paris
    clock = FakeClock(start)
    async with LampSimulator([7], LAMP_MAP) as lamps:
        bus = {"name": "lc100", "type": "modbus-tcp", "host": "127.0.0.1", "port": await lamps.serve_tcp(),
               "interval_s": 0.2, "timeout_s": 0.5,
               # report = "every": each poll journalled, so the journal visibly goes on through the outage
               "device": [{"id": "lamp-7", "unit": 7, "register_map": str(LAMP_MAP), "report": "every"}]}
        lighting = {"programs": [str(PROGRAMS / "common.toml"), str(PROGRAMS / "dijon.toml")],
                    "latitude": 47.322, "longitude": 5.041, "time_source": "none",
                    "group": [{"name": "rue-de-la-liberte", "lamps": ["lamp-7"], "calendar": "dijon"}]}
        async with running_agent(tmp_path, fleet, broker, clock=clock, bus=[bus], lighting=lighting,
                                 mqtt={"alarm_buffer": 3}) as agent:
            await wait_for(lambda: lamps.register_image(7)[LEVEL_CMD] == 100, 20, "the night level")
            await asyncio.to_thread(broker.stop)
            await wait_for(lambda: not control(agent).connected, 20, "the link to drop")
            await agent.journal.flush()
            journalled_before = (await agent.journal.stats()).records
            levels: dict[int, int] = {}
            for minute in range(1, 61):
                await clock.advance_to(start + timedelta(minutes=minute))
                if minute % 12 == 0:
                    agent.emit(Event(f"lamp-{minute}", int(clock.now().timestamp() * 1000), "lamp_failure",
                                     Severity.MAJOR))
                await asyncio.sleep(0.05)  # real time passes too: polling goes on, the link keeps trying
                levels[minute] = lamps.register_image(7)[LEVEL_CMD]
            await agent.journal.flush()
            stats = await agent.journal.stats()
            failed_while_down = control(agent).last_error
            assert not control(agent).connected

            await asyncio.to_thread(broker.restart)
            async with Operator(broker, fleet) as op:
                await wait_for(lambda: control(agent).connections == 2, 30, "the link to come back")
                await wait_for(lambda: (s := op.last_state("gw-a")) is not None and s.alarms_dropped == 2, 30,
                               "a state counting the dropped alarms")
            state = op.last_state("gw-a")
    assert levels[29] == 100 and levels[31] == 70 and levels[60] == 70  # 22:00 switched on time, offline
    assert stats.records - journalled_before >= 5 + 10  # the five alarms and the lamp's polled samples
    assert failed_while_down is not None
    assert state is not None and state.online


async def test_alarms_raised_during_an_outage_go_out_on_return_oldest_dropped_beyond_the_bound(
    tmp_path: Path, fleet: Fleet, broker: Mosquitto
) -> None:
    async with running_agent(tmp_path, fleet, broker, mqtt={"alarm_buffer": 3}) as agent:
        async with Operator(broker, fleet, identifier="control-centre"):
            pass
        await asyncio.to_thread(broker.stop)
        await wait_for(lambda: not control(agent).connected, 20, "the link to drop")
        for i in range(5):
            agent.emit(Event(f"lamp-{i}", 1_768_496_400_000 + i, "lamp_failure", Severity.CRITICAL))
        await agent.journal.flush()
        await asyncio.to_thread(broker.restart)
        async with Operator(broker, fleet, identifier="control-centre") as op:
            await wait_for(lambda: len([t for t, _ in op.raw if t.endswith("/alarm")]) == 3, 30, "three alarms")
            await asyncio.sleep(0.3)
    alarms = [decode_alarm(p) for t, p in op.raw if t == f"city/{COMMUNE}/gw-a/alarm"]
    assert [a.device for a in alarms] == ["lamp-2", "lamp-3", "lamp-4"]
    assert control(agent).alarms_dropped == 2


async def _silent_broker() -> tuple[asyncio.Server, list[int]]:
    """Accepts TCP and never answers CONNACK (an overloaded broker, a broken middlebox)."""
    seen: list[int] = []

    async def hold(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        seen.append(1)
        try:
            await reader.read()  # until the client closes its side
        finally:
            writer.close()

    return await asyncio.start_server(hold, "127.0.0.1", 0), seen


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


async def test_a_broker_that_never_answers_costs_no_file_descriptor_per_attempt(
    tmp_path: Path, fleet: Fleet
) -> None:
    server, attempts = await _silent_broker()
    silent = Mosquitto(tmp_path / "unused", port=server.sockets[0].getsockname()[1])
    async with server:
        async with running_agent(tmp_path, fleet, silent, connected=False, mqtt={"timeout_s": 0.5}):
            await wait_for(lambda: len(attempts) >= 2, 30, "two attempts")
            before = open_fds()
            await wait_for(lambda: len(attempts) >= 6, 60, "four more attempts")
            await asyncio.sleep(0.3)
            after = open_fds()
    assert after - before <= 2, f"{after - before} descriptors more after {len(attempts)} attempts"


async def test_the_collector_link_neither_leaks_on_a_silent_broker(tmp_path: Path) -> None:
    from collector.control.link import ControlLink, LinkConfig
    from collector.store import open_store

    server, attempts = await _silent_broker()
    async with server, open_store(str(tmp_path / "c.db")) as store:
        link = ControlLink(store, LinkConfig(f"mqtt://127.0.0.1:{server.sockets[0].getsockname()[1]}", "pw",
                                             timeout_s=0.5, backoff_max_s=0.5))
        task = asyncio.create_task(link.run())
        try:
            await wait_for(lambda: len(attempts) >= 2, 30, "two attempts")
            before = open_fds()
            await wait_for(lambda: len(attempts) >= 6, 60, "four more attempts")
            await asyncio.sleep(0.3)
            after = open_fds()
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
    assert after - before <= 2, f"{after - before} descriptors more after {len(attempts)} attempts"
