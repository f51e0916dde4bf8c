"""End to end, as deployed: what crossed each lane is what open data publishes, per lane and interval.

Three real processes: `citygate-sim signals` (the controller on Modbus TCP, its clock 30 times real
time from Monday 08:00, 10 s counting intervals), `citygate-agent run` (killed with SIGKILL in the
middle of an interval, then started again) and `citygate-collector serve`. The simulator's ground
truth is its demand model, which gives the same vehicles for the same seed, lane and interval in
any process: the test rebuilds it and compares it with the open-data CSV and the NGSI-LD entities.
"""

from __future__ import annotations

import csv
import io
import sqlite3
import time
import urllib.error
import urllib.request
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

import orjson

from drivers.traffic.config import load_timings
from simulators.procs import Proc, add_gateway, bin_path, free_port, start_collector, wait_tcp
from simulators.signals_engine import lanes_of
from simulators.traffic_demand import DemandModel
from tests.traffic.traffic_testkit import DIJON, PARIS

GW = "gw-counts-e2e"
SEED, INTERVAL_S = 5, 10
START = datetime(2026, 6, 1, 8, 0, tzinfo=PARIS)
JUNCTION = "dijon-jaures-tram"


def get(url: str, accept: str = "text/csv") -> tuple[int, bytes]:
    req = urllib.request.Request(url, headers={"Accept": accept})
    with urllib.request.urlopen(req, timeout=10) as resp:
        return resp.status, resp.read()


def csv_rows(url: str) -> list[dict[str, str]]:
    try:
        _, body = get(f"{url}/opendata/v1/traffic/{JUNCTION}/2026-06-01.csv")
    except urllib.error.HTTPError as exc:
        assert exc.code == 404  # no count from the junction yet
        return []
    return list(csv.DictReader(io.StringIO(body.decode())))


def interval_of(iso: str) -> int:
    return int(datetime.fromisoformat(iso).timestamp()) // INTERVAL_S


def agent_config(tmp_path: Path, url: str, token: Path, port: int) -> Path:
    config = tmp_path / "agent.toml"
    config.write_text(f"""
[gateway]
id = "{GW}"
commune = "21231"
state_dir = "{tmp_path / 'state'}"

[uplink]
url = "{url}"
token_file = "{token}"
interval_s = 0.2

[[bus]]
name = "signals-1"
type = "signals"
host = "127.0.0.1"
port = {port}
intersection = "{DIJON}"
interval_s = 0.2
backup_time_s = 3600
refresh_s = 60
""")
    return config


def wait_rows(url: str, at_least: int, timeout: float = 60.0) -> list[dict[str, str]]:
    deadline = time.monotonic() + timeout
    while len(rows := csv_rows(url)) < at_least:
        assert time.monotonic() < deadline, f"{len(rows)} rows of {at_least}"
        time.sleep(0.2)
    return rows


def test_ground_truth_per_lane_and_interval_is_what_open_data_publishes(tmp_path: Path) -> None:
    db = tmp_path / "collector.db"
    token = tmp_path / "token"
    add_gateway(str(db), GW, "21231", token, location=(47.3306, 5.0456))
    collector, url = start_collector(str(db))
    port = free_port()
    sim = Proc("signals", [bin_path("citygate-sim"), "signals", "--intersection", str(DIJON),
                           "--tcp", f"127.0.0.1:{port}", "--speed", "30", "--interval", str(INTERVAL_S),
                           "--kept", "64", "--seed", str(SEED), "--start", START.isoformat()])
    config = agent_config(tmp_path, url, token, port)
    agents: list[Proc] = []
    try:
        sim.wait_for("signals: controller dijon-jaures-tram on modbus-tcp", timeout=60)
        wait_tcp("127.0.0.1", port)
        agents.append(Proc("agent", [bin_path("citygate-agent"), "run", "--config", str(config)]))
        agents[0].wait_for("agent .* started", timeout=60)
        wait_rows(url, 6 * 4)  # 4 intervals of the six lanes stored
        time.sleep(0.15)  # the controller's clock mid-interval (an interval is a third of a second here)
        agents[0].kill9()
        time.sleep(1.5)  # four intervals complete while no agent reads
        agents.append(Proc("agent", [bin_path("citygate-agent"), "run", "--config", str(config)]))
        agents[1].wait_for("agent .* started", timeout=60)
        wait_rows(url, 6 * 16)
        sim.stop()  # no more intervals: what the agent journalled reaches the collector, then nothing changes
        time.sleep(1.5)
        compare(url, csv_rows(url))
        # the restarted agent read again the intervals it had not saved as journalled: stored as samples
        # twice, counted once (above)
        con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
        try:
            n, distinct = con.execute("SELECT COUNT(*), COUNT(DISTINCT json_extract(vals, '$.interval')) FROM samples"
                                      " WHERE device = 'signals-1.N1'").fetchone()
        finally:
            con.close()
        assert n > distinct, "the crash should have made the agent read an interval again"
    finally:
        for a in agents:
            a.stop()
        sim.stop()
        collector.stop()


def compare(url: str, rows: list[dict[str, str]]) -> None:
    truth = DemandModel(lanes_of(load_timings(DIJON)), tz=PARIS, seed=SEED)
    lanes = {(la.approach, la.lane): la for la in truth.lanes}
    first = int(START.timestamp()) // INTERVAL_S
    seen: dict[tuple[str, int, int], dict[str, str]] = {}
    for r in rows:
        key = (r["approach"], int(r["lane"]), interval_of(r["date_observed_from"]))
        assert key not in seen, f"interval published twice: {key}"
        seen[key] = r
    indexes = sorted({k[2] for k in seen})
    assert indexes == list(range(first, indexes[-1] + 1)), "an interval is missing"
    assert {k[:2] for k in seen} == set(lanes) and len(seen) == len(lanes) * len(indexes)
    total = 0
    for (approach, lane, index), r in seen.items():
        t = truth.interval(lanes[(approach, lane)], index, INTERVAL_S)
        assert int(r["vehicles (veh)"]) == t.count, (approach, lane, index)
        assert float(r["occupancy_pct (%)"]) == t.occupancy_permille / 10
        assert r["flagged"] == "0"
        total += t.count
    # the junction's day rollup counts each interval once, restart or not
    _, body = get(f"{url}/api/v1/traffic/junctions/{JUNCTION}/rollups?level=junction&period=day&from=2026-06-01"
                  "&to=2026-06-01", "application/json")
    [day] = orjson.loads(body)["buckets"]
    assert day["vehicles"] == total
    ngsi_matches(url, truth, lanes, seen)


def ngsi_matches(url: str, truth: DemandModel, lanes: dict[tuple[str, int], Any],
                 seen: dict[tuple[str, int, int], dict[str, str]]) -> None:
    _, body = get(f"{url}/ngsi-ld/v1/entities?type=TrafficFlowObserved&limit=1000&options=keyValues",
                  "application/json")
    entities = orjson.loads(body)
    by_key = {}
    for e in entities:
        approach, lane = e["name"].split()[-3], e["laneId"]
        start = int(datetime.fromisoformat(e["dateObservedFrom"]).astimezone(UTC).timestamp())
        by_key[(approach, lane, start // INTERVAL_S)] = e
    assert set(seen) == set(by_key)
    for (approach, lane, index), e in by_key.items():
        assert e["intensity"] == truth.interval(lanes[(approach, lane)], index, INTERVAL_S).count
    one = next(iter(by_key.values()))
    status, _ = get(f"{url}/ngsi-ld/v1/entities/{quote(one['id'], safe='')}", "application/json")
    assert status == 200
