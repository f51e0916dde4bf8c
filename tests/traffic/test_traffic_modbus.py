"""The agent's signals bus and the simulated controller over real Modbus TCP on 127.0.0.1.

The controller runs on its own clock, stepped by the test; the agent's injected clock reads
the controller's, so a 30-minute yellow flash takes a second or two.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from pymodbus.client import AsyncModbusTcpClient
from traffic_testkit import DIJON, PARIS, RURAL, small_doc, until, utc, write_toml

from drivers.base import Bus, BusContext
from drivers.errors import ConfigError
from drivers.modbus.link import LinkDown
from drivers.model import Event, Record, Sample, Severity
from drivers.registry import make_bus
from drivers.traffic.bus import CommandRefused, PlanRefused, SignalsBus, build, parse_config
from drivers.traffic.config import load_timings, parse_timings
from drivers.traffic.registers import (
    HR_COMMIT,
    HR_CONTROL,
    HR_PLAN,
    HR_POSITION,
    HR_UPLOAD,
    IR_COUNT,
    Alarm,
    Mode,
    Refusal,
    UploadStatus,
    crc32_words,
    decode_state,
    encode_timings,
)
from drivers.traffic.timeline import Aspect
from simulators.signals import SignalControllerServer
from simulators.signals_engine import SignalController
from tests.tasks_testkit import stop

START = utc(2026, 6, 1, 10, 0)  # Monday 12:00 CEST: the Dijon weekday table runs plan 1


@dataclass
class Rig:
    ctrl: SignalController
    server: SignalControllerServer
    port: int
    bus: SignalsBus
    records: list[Record] = field(default_factory=list)
    task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self.task = asyncio.create_task(self.bus.run(self.records.append))

    async def stop_agent(self) -> None:
        if self.task is not None:
            await stop(self.task)
            self.task = None
        await self.bus.aclose()

    async def seen(self) -> None:
        """Wait until the agent has polled the controller's current second."""
        await until(lambda: self.bus.controller is not None and self.bus.controller.clock_s == self.ctrl.clock_s,
                    what="the agent's poll")

    async def advance(self, seconds: int, chunk: int = 5) -> None:
        """Run the controller's clock, letting the agent poll (and refresh its control) along the way."""
        while seconds > 0:
            n = min(chunk, seconds)
            self.ctrl.steps(n)
            seconds -= n
            await self.seen()

    def events(self, code: str) -> list[Event]:
        return [r for r in self.records if isinstance(r, Event) and r.code == code]

    def samples(self) -> list[Sample]:
        return [r for r in self.records if isinstance(r, Sample)]


def make_bus_for(port: int, ctrl: SignalController, intersection: Path, **extra: Any) -> SignalsBus:
    raw = {"name": "signals-1", "type": "signals", "host": "127.0.0.1", "port": port, "intersection": str(intersection),
           "interval_s": 0.01, "backup_time_s": 60, "refresh_s": 20, **extra}
    return build(parse_config(raw, BusContext("bus[0]", intersection.parent)),
                 now=lambda: datetime.fromtimestamp(ctrl.clock_s, UTC))


@contextlib.asynccontextmanager
async def rig_for(intersection: Path, *, installed: bool = True, controller_file: Path | None = None,
                  start: datetime = START, **extra: Any) -> AsyncIterator[Rig]:
    timings = load_timings(controller_file or intersection)
    ctrl = SignalController(timings.intersection, timings if installed else None, start=start, tz=PARIS)
    server = SignalControllerServer(ctrl)
    port = await server.serve_tcp()
    rig = Rig(ctrl, server, port, make_bus_for(port, ctrl, intersection, **extra))
    try:
        yield rig
    finally:
        await rig.stop_agent()
        await rig.server.aclose()


async def raw_client(port: int) -> AsyncModbusTcpClient:
    client = AsyncModbusTcpClient("127.0.0.1", port=port, timeout=2, retries=0, reconnect_delay=0)
    assert await client.connect()
    return client


async def test_the_agent_uploads_validated_tables_to_an_empty_controller_once(tmp_path: Path) -> None:
    async with rig_for(DIJON, installed=False) as rig:
        assert rig.ctrl.mode() is Mode.DARK
        rig.start()
        await until(lambda: bool(rig.events("upload_accepted")), what="upload")
        await rig.advance(120)
        state = rig.ctrl.state()
        assert state.upload_generation == 1 and state.table_crc == crc32_words(encode_timings(load_timings(DIJON)))
        assert state.mode is Mode.NORMAL and state.plan == 1
        await rig.stop_agent()
        # A new agent (a restart) finds its tables in the controller: no second upload.
        rig.bus = make_bus_for(rig.port, rig.ctrl, DIJON)
        rig.records.clear()
        rig.start()
        await rig.advance(10)
        assert rig.ctrl.state().upload_generation == 1 and not rig.events("upload_accepted")


async def test_tables_that_break_a_rule_are_never_uploaded(tmp_path: Path) -> None:
    doc = small_doc()
    stages = doc["plan"][0]["stages"]
    stages[0]["green_s"], stages[0]["interstage_s"] = 32, 6  # P1→V2 6 s < 8 s
    bad = write_toml(tmp_path / "bad.toml", doc)
    good = write_toml(tmp_path / "good.toml", small_doc())
    async with rig_for(bad, installed=False, controller_file=good) as rig:
        rig.start()
        await until(lambda: bool(rig.events("upload_refused")), what="refusal event")
        event = rig.events("upload_refused")[0]
        assert event.severity is Severity.MAJOR and event.detail["by"] == "agent"
        assert [(v["rule"], v["groups"], v["required"], v["actual"]) for v in event.detail["violations"]] == [
            ("intergreen", ["P1", "V2"], 8, 6)
        ]
        await rig.advance(20)
        state = rig.ctrl.state()
        assert state.upload_status is UploadStatus.NONE and state.upload_generation == 0
        assert state.mode is Mode.DARK  # nothing to run: the agent did not hand it unsafe tables
        assert len(rig.events("upload_refused")) == 1  # reported once, not every poll
        with pytest.raises(PlanRefused) as err:
            await rig.bus.upload(parse_timings(doc))
        assert err.value.violations[0].rule == "intergreen"
        assert rig.ctrl.state().upload_status is UploadStatus.NONE
        # The lawful version goes through, and the controller starts up.
        await rig.bus.upload(parse_timings(small_doc()))
        await rig.advance(100)
        assert rig.ctrl.state().mode is Mode.NORMAL


async def test_tables_for_another_intersection_are_refused() -> None:
    async with rig_for(DIJON, controller_file=RURAL) as rig:
        rig.start()
        await until(lambda: bool(rig.events("upload_refused")), what="mismatch")
        assert rig.events("upload_refused")[0].detail["violations"][0]["rule"] == "intersection_mismatch"
        with pytest.raises(PlanRefused):
            await rig.bus.upload(load_timings(RURAL))
        assert rig.ctrl.state().upload_generation == 0
        with pytest.raises(CommandRefused):
            await rig.bus.select_plan(1, timeout_s=60, expires_at=START + timedelta(hours=1))


async def test_the_controller_refuses_an_unsafe_block_written_past_the_agent() -> None:
    async with rig_for(DIJON) as rig:
        timings = load_timings(DIJON)
        plan = timings.plans[0]
        stage1 = replace(plan.stages[0], groups=plan.stages[0].groups | {"V3"})  # V3 crosses V1: conflict
        unsafe = replace(timings, plans=(replace(plan, stages=(stage1, *plan.stages[1:])), *timings.plans[1:]))
        words = encode_timings(unsafe)
        client = await raw_client(rig.port)
        try:
            assert not (await client.write_registers(HR_CONTROL, [60], device_id=1)).isError()
            for offset in range(0, len(words), 100):
                reply = await client.write_registers(HR_UPLOAD + offset, words[offset : offset + 100], device_id=1)
                assert not reply.isError()
            crc = crc32_words(words)
            reply = await client.write_registers(HR_COMMIT, [len(words), crc >> 16, crc & 0xFFFF], device_id=1)
            assert reply.isError() and reply.exception_code == 3
            state = decode_state((await client.read_input_registers(0, count=IR_COUNT, device_id=1)).registers)
        finally:
            client.close()
        assert state.upload_status is UploadStatus.REFUSED
        assert state.refusal is not None and state.refusal.code is Refusal.CONFLICT and state.refusal.plan == 1
        names = [g.id for g in timings.intersection.groups]
        assert {names[state.refusal.group_a - 1], names[state.refusal.group_b - 1]} in ({"V1", "V3"}, {"V2", "V3"},
                                                                                          {"T1", "V3"}, {"P3", "V3"})
        rig.ctrl.steps(300)
        assert rig.ctrl.trip is None  # the old tables kept running


async def test_no_register_sets_a_signal_colour_or_clears_a_failure() -> None:
    async with rig_for(DIJON) as rig:
        rig.ctrl.steps(100)
        before = list(rig.ctrl.out.aspects)
        client = await raw_client(rig.port)
        try:
            assert not (await client.write_registers(HR_CONTROL, [60], device_id=1)).isError()
            commands = {HR_CONTROL, HR_PLAN, HR_PLAN + 1, HR_POSITION, HR_POSITION + 1, HR_COMMIT, HR_COMMIT + 1,
                        HR_COMMIT + 2}
            for address in range(0, HR_UPLOAD):
                reply = await client.write_register(address, 3, device_id=1)  # 3 = green, were there such a register
                if address not in commands:
                    assert reply.isError() and reply.exception_code == 2, address
            # Command registers take whole commands only; alone, a plan or position word is refused.
            for address in (HR_PLAN, HR_POSITION, HR_COMMIT):
                reply = await client.write_register(address, 1, device_id=1)
                assert reply.isError() and reply.exception_code == 2
            # Input registers cannot be written at all, nor are there coils.
            assert (await client.write_coil(0, True, device_id=1)).isError()
            assert (await client.read_coils(0, count=1, device_id=1)).isError()
            # In failure, nothing written clears it.
            rig.ctrl.inject_hardware_error()
            rig.ctrl.step()
            for address, values in ((HR_CONTROL, [60]), (HR_POSITION, [0, 60]), (HR_PLAN, [1, 60])):
                await client.write_registers(address, values, device_id=1)
            reply = await client.write_registers(HR_POSITION, [0, 60], device_id=1)
            assert reply.isError() and reply.exception_code == 4
        finally:
            client.close()
        rig.ctrl.steps(10)
        assert rig.ctrl.mode() is Mode.FAILURE
        assert before != [Aspect.GREEN] * len(before)


async def test_a_selected_plan_takes_effect_at_the_next_cycle_boundary() -> None:
    async with rig_for(DIJON) as rig:
        rig.start()
        await rig.advance(100)
        assert rig.ctrl.state().plan == 1
        rig.ctrl.steps(30)
        await rig.seen()
        await rig.bus.select_plan(2, timeout_s=600, expires_at=datetime.fromtimestamp(rig.ctrl.clock_s + 10, UTC))
        assert rig.ctrl.state().plan == 1 and rig.ctrl.state().plan_target == 2
        await rig.advance(80, chunk=1)
        changes = [s for s in rig.samples() if s.values["plan"] == 2]
        assert changes and changes[0].values["cycle_second"] == 0 and changes[0].values["stage"] == 1
        assert rig.events("plan_selected")[0].detail == {"plan": 2, "timeout_s": 600}


async def test_yellow_flash_for_30_min_reverts_by_itself() -> None:
    async with rig_for(DIJON) as rig:
        rig.start()
        await rig.advance(100)
        ordered = rig.ctrl.clock_s
        await rig.bus.set_position("yellow_flash", timeout_s=1800,
                                   expires_at=datetime.fromtimestamp(ordered + 30, UTC))
        await rig.advance(10)
        assert rig.ctrl.mode() is Mode.YELLOW_FLASH
        await rig.advance(ordered + 1795 - rig.ctrl.clock_s)
        assert rig.ctrl.mode() is Mode.YELLOW_FLASH and rig.ctrl.central
        await rig.advance(10)  # past 30 min: the controller reverts by itself, the agent does not insist
        assert rig.ctrl.state().position_target.value == "normal"
        await rig.advance(120)
        assert rig.ctrl.mode() is Mode.NORMAL and rig.ctrl.trip is None
        modes = [s.values["mode"] for s in rig.samples()]
        assert modes.index("yellow_flash") < modes.index("startup", modes.index("yellow_flash"))
        assert len(rig.events("position_commanded")) == 1


async def test_when_the_agent_stops_refreshing_the_controller_returns_to_its_table() -> None:
    async with rig_for(DIJON, backup_time_s=30, refresh_s=10) as rig:
        rig.start()
        await rig.advance(100)
        await rig.bus.select_plan(2, timeout_s=3600, expires_at=datetime.fromtimestamp(rig.ctrl.clock_s + 5, UTC))
        await rig.advance(100)
        assert rig.ctrl.state().plan == 2 and rig.ctrl.central
        await rig.stop_agent()  # the agent dies
        last = rig.ctrl.state().control_left_s
        rig.ctrl.steps(last - 1)
        assert rig.ctrl.central and rig.ctrl.state().plan_target == 2
        rig.ctrl.step()
        state = rig.ctrl.state()
        assert not state.central and state.plan_target == 1  # backup time over: local table
        rig.ctrl.steps(100)
        assert rig.ctrl.state().plan == 1


async def test_stale_commands_are_refused() -> None:
    async with rig_for(DIJON) as rig:
        rig.start()
        await rig.advance(100)
        now = datetime.fromtimestamp(rig.ctrl.clock_s, UTC)
        with pytest.raises(CommandRefused, match="expired"):
            await rig.bus.set_position("dark", timeout_s=600, expires_at=now - timedelta(seconds=1))
        with pytest.raises(CommandRefused, match="expired"):
            await rig.bus.select_plan(2, timeout_s=600, expires_at=now)
        with pytest.raises(CommandRefused, match="unknown position"):
            await rig.bus.set_position("green", timeout_s=600, expires_at=now + timedelta(seconds=5))
        with pytest.raises(CommandRefused, match="timeout"):
            await rig.bus.select_plan(2, timeout_s=0, expires_at=now + timedelta(seconds=5))
        state = rig.ctrl.state()
        assert state.position_command_left_s == 0 and state.plan_command_left_s == 0
        assert [e.detail["reason"] for e in rig.events("command_refused")] == ["expired", "expired"]


async def test_after_a_link_outage_nothing_stale_is_replayed() -> None:
    async with rig_for(DIJON, backup_time_s=30, refresh_s=10) as rig:
        rig.start()
        await rig.advance(100)
        await rig.bus.select_plan(2, timeout_s=600, expires_at=datetime.fromtimestamp(rig.ctrl.clock_s + 5, UTC))
        await rig.advance(5)
        before_outage = len(rig.records)
        await rig.server.aclose()  # the link goes down
        await until(lambda: bool(rig.events("communication_failure")), what="link loss")
        assert rig.events("communication_failure")[0].severity is Severity.MINOR
        with pytest.raises(LinkDown, match="not queued"):  # not queued for later
            await rig.bus.set_position("yellow_flash", timeout_s=600,
                                       expires_at=datetime.fromtimestamp(rig.ctrl.clock_s + 5, UTC))
        rig.ctrl.steps(120)  # longer than the backup time: the controller went back to its table
        assert not rig.ctrl.central and rig.ctrl.state().plan_target == 1
        rig.server = SignalControllerServer(rig.ctrl)
        await rig.server.serve_tcp(port=rig.port)
        await until(lambda: bool(rig.events("communication_restored")), what="link back")
        await rig.advance(200)
        state = rig.ctrl.state()
        assert state.plan == 1 and state.plan_target == 1 and state.mode is Mode.NORMAL
        assert state.plan_command_left_s == 0 and state.position_command_left_s == 0
        after = [r for r in rig.records[before_outage:] if isinstance(r, Sample)]
        assert after and "yellow_flash" not in [s.values["mode"] for s in after]
        dropped = rig.events("override_dropped")
        assert [(e.detail["what"], e.detail["value"], e.detail["reason"]) for e in dropped] == [("plan", "2", "link lost")]


async def test_an_injected_conflict_is_forwarded_at_once_and_never_reset_by_the_agent() -> None:
    async with rig_for(DIJON) as rig:
        rig.start()
        await rig.advance(100)
        rig.records.clear()
        forced = rig.ctrl.inject_conflict()
        rig.ctrl.step()
        await rig.seen()  # one poll later
        safety = rig.events("safety_error")
        assert len(safety) == 1 and safety[0].severity is Severity.CRITICAL
        assert safety[0].ts_ms == rig.ctrl.clock_s * 1000
        assert rig.samples()[-1].values["mode"] == "failure"
        assert forced in {g.id for g in load_timings(DIJON).intersection.groups}
        with pytest.raises(CommandRefused, match="failure"):
            await rig.bus.set_position("normal", timeout_s=60, expires_at=datetime.fromtimestamp(rig.ctrl.clock_s + 5, UTC))
        await rig.advance(600)
        assert rig.ctrl.mode() is Mode.FAILURE and len(rig.events("safety_error")) == 1


async def test_door_lamp_and_hardware_alarms_with_their_severities() -> None:
    async with rig_for(DIJON) as rig:
        rig.start()
        await rig.advance(100)
        rig.ctrl.set_door_open(True)
        rig.ctrl.set_lamp_failure("P2")
        await rig.advance(1)
        rig.ctrl.set_lamp_failure("V4")
        await rig.advance(1)
        rig.ctrl.set_door_open(False)
        await rig.advance(1)
        rig.ctrl.inject_hardware_error()
        await rig.advance(1)
        seen = [(e.code, e.severity, e.detail.get("groups")) for e in rig.records if isinstance(e, Event)
                and e.code not in ("upload_accepted",)]
        assert seen == [
            ("door_open", Severity.MINOR, None),
            ("lamp_failure", Severity.MAJOR, ["P2"]),
            ("lamp_failure", Severity.MAJOR, ["V4"]),
            ("door_open_cleared", Severity.INFO, None),
            ("hardware_error", Severity.CRITICAL, None),
        ]
        assert Alarm.HARDWARE in rig.ctrl.state().alarms


async def test_bus_config_keys() -> None:
    ctx = BusContext("bus[3]", DIJON.parent)
    base = {"name": "s", "type": "signals", "host": "127.0.0.1", "intersection": DIJON.name}
    bus = make_bus(base, ctx)
    assert isinstance(bus, SignalsBus) and isinstance(bus, Bus)
    assert bus.cfg.port == 502 and bus.cfg.refresh_s == 20 and bus.cfg.intersection == DIJON
    assert bus.states()[0].address == "127.0.0.1:502 unit 1"
    for extra, key in (({"colour": "red"}, "bus[3].colour"), ({"refresh_s": 60}, "bus[3].refresh_s"),
                       ({"timezone": "Mars/Olympus"}, "bus[3].timezone"), ({"intersection": "nope.toml"}, "bus[3].intersection"),
                       ({"backup_time_s": 1}, "bus[3].backup_time_s")):
        with pytest.raises(ConfigError) as err:
            make_bus({**base, **extra}, ctx)
        assert err.value.key == key


async def test_the_agent_brings_the_controller_back_to_the_table() -> None:
    """Someone else (a laptop on site) selected plan 3: the agent, following its table, asks for plan 1 again."""
    async with rig_for(DIJON) as rig:
        rig.start()
        await rig.advance(100)
        client = await raw_client(rig.port)
        try:
            await client.write_registers(HR_CONTROL, [60], device_id=1)
            assert not (await client.write_registers(HR_PLAN, [3, 3600], device_id=1)).isError()
        finally:
            client.close()
        await rig.advance(5)
        # the poll that sees plan 3 is followed by the agent's write of plan 1: wait for the write
        await until(lambda: rig.ctrl.state().plan_target == 1, what="the agent to ask for plan 1 again")
        state = rig.ctrl.state()
        # Monday 12:00 CEST + 105 s: the next switch is 16:30 CEST, so the table's command lasts until then.
        next_switch = int(utc(2026, 6, 1, 14, 30).timestamp())
        assert abs(state.plan_command_left_s - (next_switch - rig.ctrl.clock_s)) <= 5


async def test_a_controller_clock_off_by_minutes_is_reported() -> None:
    timings = load_timings(DIJON)
    ctrl = SignalController(timings.intersection, timings, start=START, tz=PARIS)
    async with SignalControllerServer(ctrl) as server:
        port = await server.serve_tcp()
        raw = {"name": "signals-1", "type": "signals", "host": "127.0.0.1", "port": port, "intersection": str(DIJON),
               "interval_s": 0.01}
        bus = build(parse_config(raw, BusContext("bus[0]", DIJON.parent)),
                    now=lambda: datetime.fromtimestamp(ctrl.clock_s + 120, UTC))
        records: list[Record] = []
        task = asyncio.create_task(bus.run(records.append))
        try:
            await until(lambda: any(isinstance(r, Event) and r.code == "clock_skew" for r in records), what="skew")
        finally:
            await stop(task)
            await bus.aclose()
        skew = next(r for r in records if isinstance(r, Event) and r.code == "clock_skew")
        assert skew.severity is Severity.MINOR and skew.detail == {"controller_minus_agent_s": -120}
