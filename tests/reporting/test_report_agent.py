"""The agent's logic sees every poll; the journal, and so the collector, only what is reported."""

from __future__ import annotations

import asyncio
import tomllib
from pathlib import Path

from drivers.model import Event, Record, Sample, Severity
from edge_agent.agent import Agent
from edge_agent.config import parse_config
from edge_agent.journal import Journal
from edge_agent.live_feed import LiveFeed
from simulators.lamps import LampSimulator
from simulators.procs import add_gateway, start_collector
from tests.e2e.e2e_kit import stored_samples, stored_seqs

REPO = Path(__file__).resolve().parents[2]
LC100 = REPO / "configs" / "registermaps" / "lamp-lc100.toml"
GW = "gw-report"
LAMPS = (1, 2, 3)
QUANTITIES = {"level_cmd_pct", "level_pct", "lamp_on", "fault_bits", "lamp_failure", "voltage_v", "current_a",
              "power_w", "temperature_c", "energy_wh", "operating_hours_h"}
T0 = 1_780_000_000_000


async def test_observers_see_records_in_emit_order_each_once_what_was_journalled_before_it_is_committed(
    tmp_path: Path,
) -> None:
    async with Journal(tmp_path / "journal.db") as journal:
        delivered: list[Record] = []
        feed = LiveFeed(journal.append, delivered.append)
        journal.observers.append(feed.committed)
        alarm = Event("lamp-1", T0, "communication_restored", Severity.INFO, {"failures": 3})
        poll1 = Sample("lamp-1", T0 + 1, {"power_w": 60.0, "lamp_on": True})
        poll2 = Sample("lamp-1", T0 + 2, {"power_w": 30.0, "lamp_on": True})
        kept2 = Sample("lamp-1", T0 + 2, {"power_w": 30.0})
        feed.emit(alarm, (alarm,))
        feed.emit(poll1, ())  # nothing of it is reported
        feed.emit(poll2, (kept2,))
        assert delivered == [], "the alarm is not committed yet, and no poll may overtake it"
        await journal.flush()
        assert delivered == [alarm, poll1, poll2], "whole polls, in emit order"
        poll3 = Sample("lamp-1", T0 + 3, {"power_w": 30.0, "lamp_on": True})
        feed.emit(poll3, ())
        assert delivered[-1] is poll3, "with nothing awaiting a commit, an unreported poll is seen at once"
        own = Event("gateway", T0 + 4, "clock_suspect")
        journal.append(own)  # the uploader's own events do not come through the feed
        await journal.flush()
        assert delivered[-1] is own
        assert feed.backlog == 0
        pending = await journal.read_pending(100, 1_000_000)
        assert pending is not None and len(pending.records) == 3  # alarm, kept2, own: nothing of poll1 or poll3


def agent_doc(tmp_path: Path, url: str, token_file: Path, port: int) -> str:
    devices = "".join(f'\n[[bus.device]]\nid = "lamp-{u}"\nunit = {u}\nregister_map = "{LC100}"\nrated_power_w = 100\n'
                      for u in LAMPS)
    return f"""
[gateway]
id = "{GW}"
commune = "21231"
state_dir = "{tmp_path / 'state'}"
[uplink]
url = "{url}"
token_file = "{token_file}"
interval_s = 0.1
[local_api]
socket = "{tmp_path / 'state' / 'agent.sock'}"
[[bus]]
name = "rs485"
type = "modbus-tcp"
host = "127.0.0.1"
port = {port}
interval_s = 0.2
{devices}"""


async def until(condition: object, what: str, timeout: float = 30.0) -> None:
    assert callable(condition)
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.05)


async def test_a_dimmed_lamp_is_reported_at_once_and_the_collector_stores_what_was_reported_exactly_once(
    tmp_path: Path,
) -> None:
    db = tmp_path / "collector.db"
    token_file = tmp_path / "token"
    await asyncio.to_thread(add_gateway, str(db), GW, "21231", token_file)
    collector, url = await asyncio.to_thread(start_collector, str(db))
    seen: list[Sample] = []
    try:
        async with LampSimulator(LAMPS, LC100, rated_power_w=100, level_pct=70) as sim:
            port = await sim.serve_tcp("127.0.0.1", 0)
            agent = Agent(parse_config(tomllib.loads(agent_doc(tmp_path, url, token_file, port)), tmp_path / "a.toml"))
            agent.context.subscribe(lambda r: seen.append(r) if isinstance(r, Sample) else None)
            task = asyncio.create_task(agent.run())
            try:
                await until(lambda: all(sum(s.device == f"lamp-{u}" for s in seen) >= 6 for u in LAMPS), "6 polls a lamp")
                sim.set_level(2, 30)
                dimmed = len(seen)
                await until(lambda: sum(s.device == "lamp-2" for s in seen[dimmed:]) >= 3, "3 polls of the dimmed lamp")
                await until(lambda: agent.journal.backlog == 0, "the journal to drain")
                polls = list(seen)
            finally:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
    finally:
        await asyncio.to_thread(collector.stop)

    assert all(set(s.values) == QUANTITIES for s in polls), "the observers see every quantity of every poll"
    by_poll = {(s.device, s.ts_ms): s.values for s in polls}
    stored = sorted(stored_samples(db, GW).values(), key=lambda row: row[1])
    seqs = stored_seqs(db, GW)
    assert seqs == sorted(set(seqs)) == list(range(seqs[0], seqs[-1] + 1)), "each journalled record stored once"
    for device, ts, values in stored:
        assert (device, ts) in by_poll, "a stored sample is a poll the agent made"
        assert values.items() <= dict(by_poll[(device, ts)]).items(), "with the values that poll read"
    for u in LAMPS:
        mine = [values for device, _, values in stored if device == f"lamp-{u}"]
        assert set(mine[0]) == QUANTITIES, "a lamp's first poll is reported whole"
        assert len(mine) < sum(s.device == f"lamp-{u}" for s in polls), "repeated readings are not reported"
    first_dim = next(s for s in polls if s.device == "lamp-2" and s.values["level_pct"] == 30)
    reported = next(values for device, ts, values in stored if (device, ts) == ("lamp-2", first_dim.ts_ms))
    assert reported["level_pct"] == 30 and reported["level_cmd_pct"] == 30, "a level change in the poll that saw it"
    assert reported["power_w"] == first_dim.values["power_w"], "power moved beyond its 5 % deadband with it"
    before = [s for s in polls if s.device == "lamp-2" and s.ts_ms < first_dim.ts_ms][-1]
    if before.ts_ms // 900_000 == first_dim.ts_ms // 900_000:  # no quarter hour began between the two polls
        assert "energy_wh" not in reported, "a counter waits for its period"
