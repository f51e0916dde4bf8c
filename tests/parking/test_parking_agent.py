"""The whole chain with the real agent: the simulated streets publish to Mosquitto, an agent with a
lorawan-chirpstack bus journals and uploads, a `citygate-collector serve` stores and projects, and
its API and open data say what the simulator sent: each space's last state, silent ones unknown,
every change counted once per street."""

from __future__ import annotations

import asyncio
import csv
import io
import time
import tomllib
import urllib.request
from pathlib import Path
from typing import Any

import orjson

from drivers.lorawan.bus import LorawanBus
from drivers.model import Record, Sample
from edge_agent.agent import Agent
from edge_agent.config import parse_config
from simulators.mosquitto import Mosquitto
from simulators.parking import Faults, ParkingSim, publish, spaces_of, write_sensors_csv
from simulators.procs import add_gateway, start_collector

GW = "gw-dijon-lora"  # configs/parking/21231.toml: the collector's inventory


def get(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=10) as resp:
        body = resp.read()
        return body.decode() if resp.headers.get_content_type() == "text/csv" else orjson.loads(body)


async def test_the_agent_carries_the_streets_to_the_collectors_open_data(tmp_path: Path, broker: Mosquitto) -> None:
    db = tmp_path / "collector.db"
    token_file = tmp_path / "token"
    await asyncio.to_thread(add_gateway, str(db), GW, "21231", token_file)
    collector, url = await asyncio.to_thread(start_collector, str(db))
    spaces = spaces_of()
    write_sensors_csv(spaces, tmp_path / "sensors.csv", 1.0)
    doc = tomllib.loads(f"""
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
name = "lora0"
type = "lorawan-chirpstack"
port = {broker.port}
sensors_file = "sensors.csv"
silence_grace_s = 1.5
tick_s = 0.1
""")
    agent = Agent(parse_config(doc, tmp_path / "agent.toml"))
    unknown: set[str] = set()  # spaces whose `unknown` sample the journal committed (observers see only those)

    def keep(record: Record) -> None:
        if isinstance(record, Sample) and record.values.get("parking_state") == "unknown":
            unknown.add(record.device)

    agent.context.subscribe(keep)
    task = asyncio.create_task(agent.run())
    try:
        (bus,) = agent.buses
        assert isinstance(bus, LorawanBus)
        for _ in range(200):  # the bus subscribes
            if bus.connected:
                break
            await asyncio.sleep(0.02)
        sim = ParkingSim(spaces, int(time.time() * 1000), heartbeat_s=1.0, mean_stay_s=1.5, seed=11,
                         faults=Faults(silent=0.15, flapping=0.05, low_battery=0.1, duplicate=0.1, late=0.1))
        await publish(sim, "127.0.0.1", broker.port, speed=1.0, duration_s=3.0, tick_s=0.05)
        heard_then_silent = set(sim.truth.silent) & set(sim.truth.first)  # the others were unknown all along
        for _ in range(200):  # the bus judges the silent ones, the journal commits it, the agent uploads all
            await asyncio.sleep(0.1)
            if heard_then_silent <= unknown and (await agent.journal.stats()).records == 0:
                break
        assert (await agent.journal.stats()).records == 0, "the agent did not upload everything"
        states = {s["space"]: s["state"] for s in await asyncio.to_thread(get, f"{url}/api/v1/parking/spaces")}
        table = await asyncio.to_thread(get, f"{url}/opendata/v1/parking/hourly.csv")
        # after the run every sensor falls silent in turn: the bus judges one before the agent uploads it
        end_silent = {st.sensor.space for st in bus.tracker.states.values() if st.silent}
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await asyncio.to_thread(collector.stop)
    truth = sim.truth
    assert set(truth.silent) <= end_silent
    for space in truth.silent:
        assert states[space] == "unknown", space
    for space, changes in truth.changes.items():
        if space not in truth.silent:  # its last state, or unknown once the bus judged it silent after the run
            assert states[space] == changes[-1][1] or (states[space] == "unknown" and space in end_silent), space
    per_street: dict[str, int] = {}
    for s in spaces:
        first = truth.first.get(s.space)
        counted = [c for c in truth.changes.get(s.space, []) if first is not None and c[0] > first[0]]
        per_street[s.street] = per_street.get(s.street, 0) + len(counted)
    got: dict[str, int] = {}
    for row in csv.DictReader(io.StringIO(table)):
        got[row["street_id"]] = got.get(row["street_id"], 0) + int(row["changes"])
    assert got == per_street
