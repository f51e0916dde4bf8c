"""A refuse truck drives its round for two hours with no collector to reach (a rural round, the uplink gone):
the real agent journals its positions and its trip all along, then, once the collector answers, uploads the
whole trip in order, each record stored exactly once. The receiver is the simulator on a real pty, run 1000x
as fast as a 1 Hz receiver (every sentence carries its own GNSS time, one second an epoch); the collector is
a real subprocess on a port chosen in advance."""

from __future__ import annotations

import asyncio
import sqlite3
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson

from drivers.model import Event, Record, Sample
from edge_agent.agent import Agent
from edge_agent.config import load_config
from simulators.gps import DIJON_ROUND, GpsReceiver
from simulators.procs import add_gateway, bin_path, free_port, start_collector
from tests.meters.meters_testkit import until

GW = "gw-truck-7"
DRIVE_EPOCHS = 2 * 3600  # two hours of GNSS time


def config_text(tmp: Path, port: str, uplink_port: int, token_file: Path) -> str:
    return f"""
[gateway]
id = "{GW}"
commune = "21231"
state_dir = "{tmp}/state"

[uplink]
url = "http://127.0.0.1:{uplink_port}"
token_file = "{token_file}"
interval_s = 0.1
backoff_max_s = 0.5

[local_api]
socket = "{tmp}/agent.sock"

[[bus]]
name = "gps"
type = "gnss"
port = "{port}"
device = "gps"
silent_after_s = 5
clock_offset_alarm_s = 0
"""


def stored(db: Path) -> list[tuple[int, str, int, str, dict[str, Any]]]:
    """(seq, kind, ts_ms, device or code, values or detail) the collector stored for the truck, by seq."""
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        gid = con.execute("SELECT id FROM gateways WHERE name=?", (GW,)).fetchone()[0]
        rows = [(s, "sample", ts, d, orjson.loads(v)) for s, ts, d, v in con.execute(
            "SELECT seq, ts_ms, device, vals FROM samples WHERE gateway_id=?", (gid,))]
        rows += [(s, "event", ts, c, orjson.loads(v)) for s, ts, c, v in con.execute(
            "SELECT seq, ts_ms, code, detail FROM events WHERE gateway_id=? AND seq IS NOT NULL", (gid,))]
    finally:
        con.close()
    return sorted(rows)


def assert_stored_once_in_order(rows: list[tuple[int, str, int, str, dict[str, Any]]], before: list[Record],
                                last_seq: int) -> None:
    seqs = [r[0] for r in rows]
    assert len(seqs) == len(set(seqs))  # each record stored once
    outage = [r for r in rows if r[0] <= last_seq]
    assert len(outage) == len(before)
    # in order: the collector's records by seq are the journal's, one for one
    for (_, kind, ts, name, values), record in zip(outage, before, strict=True):
        assert ts == record.ts_ms
        if isinstance(record, Sample):
            assert (kind, name, values) == ("sample", record.device, dict(record.values))
        else:
            assert (kind, name) == ("event", record.code)
    times = [r[2] for r in outage if r[1] == "sample"]
    assert times == sorted(times)


async def test_a_truck_two_hours_offline_uploads_its_whole_trip_in_order_exactly_once(tmp_path: Path) -> None:
    db = tmp_path / "collector.db"
    token_file = tmp_path / "token"
    await asyncio.to_thread(add_gateway, str(db), GW, "21231", token_file)
    proc = await asyncio.create_subprocess_exec(
        bin_path("citygate-collector"), "vehicle", "add", "truck-7", "--service", "waste", "--commune", "21231",
        "--gateway", GW, "--db", str(db), stdout=asyncio.subprocess.DEVNULL)
    assert await proc.wait() == 0
    uplink_port = free_port()  # nobody listens here while the truck drives
    start = datetime.now(UTC) - timedelta(hours=2, minutes=30)  # the drive ends in the collector's past
    gps = GpsReceiver(DIJON_ROUND, speed_kmh=25, stop_s=40, loop=True, period_s=0.001, start=start)
    await gps.__aenter__()
    file = tmp_path / "agent.toml"
    file.write_text(config_text(tmp_path, gps.port, uplink_port, token_file))
    agent = Agent(load_config(file))
    journalled: list[Record] = []
    agent.journal.observers.append(journalled.append)  # each record once committed, in journal order
    task = asyncio.create_task(agent.run())
    collector = None
    try:
        await gps.wait_epochs(DRIVE_EPOCHS)
        gps.park()  # at the depot: the trip ends after trip_stop_after_s (180 epochs) standing still
        await until(lambda: any(isinstance(r, Event) and r.code == "trip_ended" for r in journalled), 60)
        await gps.__aexit__(None, None, None)  # switched off (its time runs 1000x: it would soon be ahead)
        await agent.journal.flush()
        assert agent.uploader.state.last_success_ms is None and agent.uploader.state.consecutive_failures > 0
        stats = await agent.journal.stats()
        assert stats.records == len(journalled) and stats.dropped_total == 0  # all kept, nothing sent
        last_seq, before = stats.last_seq, list(journalled)  # a silence alarm may follow: not in this outage
        assert last_seq is not None
        trip = [r for r in journalled if isinstance(r, Event) and r.code in ("trip_started", "trip_ended")]
        assert [e.code for e in trip] == ["trip_started", "trip_ended"]
        ended = trip[1]
        # from the first fixes to where it last stopped (perhaps at a bin stop just before it parked)
        assert 2 * 3600 - 200 <= ended.detail["duration_s"] <= 2 * 3600 and ended.detail["distance_m"] > 10_000
        positions = [r for r in journalled if isinstance(r, Sample)]
        assert 100 < len(positions) < DRIVE_EPOCHS / 10  # thinned: not one an epoch

        collector, url = await asyncio.to_thread(start_collector, str(db), port=uplink_port)
        for _ in range(300):
            first = (await agent.journal.stats()).first_seq
            if first is None or first > last_seq:
                break
            await asyncio.sleep(0.1)
        else:
            raise AssertionError(f"backlog not uploaded: {await agent.journal.stats()}")
        assert_stored_once_in_order(await asyncio.to_thread(stored, db), before, last_seq)
        since = ended.detail["started_ms"] - 1000
        trips = await asyncio.to_thread(_get, f"{url}/api/v1/vehicles/truck-7/trips?from={since}")
        assert [t["distance_m"] for t in trips["trips"]] == [ended.detail["distance_m"]]
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await gps.__aexit__(None, None, None)
        if collector is not None:
            collector.stop()


def _get(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=10) as resp:
        return orjson.loads(resp.read())
