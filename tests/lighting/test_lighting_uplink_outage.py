"""Lamp keeps its program while the uplink is down: 24 simulated hours of a Dijon cabinet with no
collector, every switch point on time and every reading journalled, then all of it uploaded once
the collector comes back. The agent runs in-process on a FakeClock, its Modbus bus talks to the
lamp simulator over TCP, the collector is a real subprocess on a port chosen in advance."""

from __future__ import annotations

import asyncio
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import orjson
import pytest

from drivers.model import Event, Record, Sample
from edge_agent.agent import Agent
from edge_agent.clock import FakeClock
from edge_agent.config import AgentConfig, load_config
from edge_agent.lighting.engine import Engine
from edge_agent.lighting.pacing import WatchedWaiter
from edge_agent.lighting.service import LightingService
from simulators.lamps import LampSimulator
from simulators.procs import add_gateway, free_port, start_collector

ROOT = Path(__file__).resolve().parents[2]
PARIS = ZoneInfo("Europe/Paris")
GW = "gw-lighting-outage"
LAMPS = 6  # lamp-1..4 in Dijon's avenue, lamp-5..6 on Sennecey's program


def config_text(tmp: Path, sim_port: int, uplink_port: int, token_file: Path) -> str:
    devices = "".join(
        f'\n[[bus.device]]\nid = "lamp-{u}"\nunit = {u}\nregister_map = "{ROOT}/configs/registermaps/lamp-lc100.toml"\nreport = "every"\n'
        f"rated_power_w = 60\n" for u in range(1, LAMPS + 1))
    return f"""
[gateway]
id = "{GW}"
commune = "21231"
state_dir = "{tmp}/state"

[uplink]
url = "http://127.0.0.1:{uplink_port}"
token_file = "{token_file}"
interval_s = 0.1
backoff_max_s = 1

[local_api]
socket = "{tmp}/agent.sock"

[[bus]]
name = "cabinet"
type = "modbus-tcp"
host = "127.0.0.1"
port = {sim_port}
interval_s = 0.1
timeout_s = 0.5
{devices}
[lighting]
programs = ["{ROOT}/configs/lighting/common.toml", "{ROOT}/configs/lighting/dijon.toml",
            "{ROOT}/configs/lighting/sennecey-les-dijon.toml"]
latitude = 47.322
longitude = 5.042
time_source = "none"
report_interval_s = 3600

[[lighting.group]]
name = "avenue"
lamps = ["lamp-1", "lamp-2", "lamp-3", "lamp-4"]
calendar = "dijon"

[[lighting.group]]
name = "impasse"
lamps = ["lamp-5", "lamp-6"]
calendar = "sennecey-les-dijon"
"""


def stored(db: Path) -> tuple[list[int], list[tuple[str, int, dict[str, Any]]]]:
    """Every seq the collector stored for the gateway, and its samples (device, ts_ms, values)."""
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        gid = con.execute("SELECT id FROM gateways WHERE name=?", (GW,)).fetchone()[0]
        seqs = [r[0] for r in con.execute(
            "SELECT seq FROM samples WHERE gateway_id=? UNION ALL SELECT seq FROM events WHERE gateway_id=? "
            "AND seq IS NOT NULL", (gid, gid))]
        samples = [(d, ts, orjson.loads(v)) for d, ts, v in con.execute(
            "SELECT device, ts_ms, vals FROM samples WHERE gateway_id=?", (gid,))]
    finally:
        con.close()
    return seqs, samples


def noon_in_three_days() -> datetime:
    """A simulated day after the real clock: the lamps' readings, stamped by it, all come before it."""
    day = datetime.now(PARIS).date() + timedelta(days=3)
    return datetime(day.year, day.month, day.day, 12, tzinfo=PARIS).astimezone(UTC)


async def step_through(clock: FakeClock, waiter: WatchedWaiter, until: datetime) -> None:
    """Move the clock from one instant the service waits for to the next, letting it act at each."""
    async def settled(after: int) -> None:
        for _ in range(20_000):
            if waiter.idle.is_set() and waiter.cycles > after:
                return
            await asyncio.sleep(0.001)
        raise AssertionError("the lighting service did not settle")

    await settled(0)
    while True:
        assert waiter.next_wake is not None
        target = min(waiter.next_wake, until)
        before = waiter.cycles
        await clock.advance_to(target)
        if target < until or target == waiter.next_wake:
            await settled(before)
        if target >= until:
            return
        await asyncio.sleep(0.02)  # real time passes too: the poller keeps reading the lamps


def assert_every_switch_on_time(journalled: list[Record], config: AgentConfig, start: datetime) -> None:
    """Commanded levels at the plan's instants, exactly, and read back as commanded."""
    engine = Engine(config.sections["lighting"].programs, config.sections["lighting"].site)
    day = engine.program_day(start)
    for lamp, calendar in [(f"lamp-{u}", "dijon" if u <= 4 else "sennecey-les-dijon")
                           for u in range(1, LAMPS + 1)]:
        plan = engine.plan(calendar, day)
        commands = [(r.ts_ms, r.values["commanded_level_pct"]) for r in journalled
                    if isinstance(r, Sample) and r.device == lamp and "commanded_level_pct" in r.values]
        expected = [(int(start.timestamp() * 1000), 0)] + [
            (int(s.at.timestamp() * 1000), s.level) for s in plan.switches]
        assert commands == expected, lamp
        levels = [lv for _, lv in commands]
        assert levels == ([0, 100, 70, 100, 0] if calendar == "dijon" else [0, 100, 0, 100, 0])
        assert all(r.values["level_pct"] == r.values["commanded_level_pct"] for r in journalled
                   if isinstance(r, Sample) and r.device == lamp and "commanded_level_pct" in r.values)


async def test_lamps_keep_their_program_while_the_uplink_is_down_then_everything_is_uploaded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the simulated days lie ahead of the collector's clock: it must take their records all the same
    monkeypatch.setenv("CITYGATE_MAX_FUTURE_S", str(7 * 86_400))
    db = tmp_path / "collector.db"
    token_file = tmp_path / "token"
    await asyncio.to_thread(add_gateway, str(db), GW, "21231", token_file)
    uplink_port = free_port()  # nobody listens here for the first 24 simulated hours
    start = noon_in_three_days()
    async with LampSimulator(range(1, LAMPS + 1), ROOT / "configs/registermaps/lamp-lc100.toml",
                             rated_power_w=60) as sim:
        sim_port = await sim.serve_tcp()
        file = tmp_path / "agent.toml"
        file.write_text(config_text(tmp_path, sim_port, uplink_port, token_file))
        config = load_config(file)
        clock = FakeClock(start)
        agent = Agent(config, clock)
        journalled: list[Record] = []
        append = agent.journal.append

        def journal_spy(record: Record) -> None:  # every record handed to the journal
            journalled.append(record)
            append(record)

        agent.journal.append = journal_spy  # type: ignore[method-assign]
        svc = next(s for s in agent.services if isinstance(s, LightingService))
        svc.waiter = waiter = WatchedWaiter()
        task = asyncio.create_task(agent.run())
        collector = None
        try:
            await step_through(clock, waiter, start + timedelta(hours=24))
            await agent.journal.flush()
            assert agent.uploader.state.consecutive_failures > 0 and agent.uploader.state.last_success_ms is None
            stats = await agent.journal.stats()
            assert stats.records == len(journalled) and stats.dropped_total == 0  # all kept, nothing sent
            outage, outage_last_seq = list(journalled), stats.last_seq
            assert outage_last_seq is not None
            polls = [r for r in journalled if isinstance(r, Sample) and "power_w" in r.values]
            assert len(polls) >= 5 * LAMPS  # the lamps were read all along

            assert_every_switch_on_time(journalled, config, start)
            reports = [r for r in journalled if isinstance(r, Sample) and r.device == "cabinet"]
            assert len(reports) == 24  # hourly burn hours and energy, journalled like any sample
            assert not [r for r in journalled if isinstance(r, Event) and r.code in ("lamp_failure", "command_failure")]

            # the uplink returns: the backlog drains, each record stored once
            collector, _ = await asyncio.to_thread(start_collector, str(db), port=uplink_port)
            for _ in range(600):  # the outage backlog is acknowledged, so deleted from the journal
                first = (await agent.journal.stats()).first_seq
                if first is None or first > outage_last_seq:
                    break
                await asyncio.sleep(0.1)
            else:
                raise AssertionError(f"backlog not uploaded: {await agent.journal.stats()}")
            seqs, samples = await asyncio.to_thread(stored, db)
            assert len(seqs) == len(set(seqs))  # each record stored once
            assert len([q for q in seqs if q <= outage_last_seq]) == len(outage)
            as_stored = {(d, ts, orjson.dumps(v, option=orjson.OPT_SORT_KEYS)) for d, ts, v in samples}
            sent = [(r.device, r.ts_ms, orjson.dumps(r.values, option=orjson.OPT_SORT_KEYS))
                    for r in outage if isinstance(r, Sample)]
            missing = [x for x in sent if x not in as_stored]
            assert not missing, missing[:3]
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            if collector is not None:
                collector.stop()
