"""A reading polled from a lamp controller reaches the collector's store with the same values and timestamp."""

from __future__ import annotations

import asyncio
import tomllib
from pathlib import Path

from drivers.model import Record, Sample
from edge_agent.agent import Agent
from edge_agent.config import parse_config
from simulators.lamps import LampSimulator
from simulators.procs import add_gateway, start_collector
from tests.e2e.e2e_kit import stored_samples

REPO = Path(__file__).resolve().parents[2]
REGMAP = REPO / "configs" / "registermaps" / "lamp-lc100.toml"
GW = "gw-lamps-e2e"


async def test_polled_lamp_samples_arrive_unchanged_in_the_collector(tmp_path: Path) -> None:
    db = tmp_path / "collector.db"
    token_file = tmp_path / "token"
    await asyncio.to_thread(add_gateway, str(db), GW, "21231", token_file)
    collector, url = await asyncio.to_thread(start_collector, str(db))
    try:
        async with LampSimulator(range(1, 4), REGMAP, rated_power_w=150, level_pct=70) as sim:
            port = await sim.serve_tcp("127.0.0.1", 0)
            # report = "every": each poll journalled whole, whatever the map's report policies
            # (tests/reporting proves what report by exception journals)
            devices = "".join(
                f'[[bus.device]]\nid = "lamp-{u}"\nunit = {u}\nregister_map = "{REGMAP}"\nrated_power_w = 150\n'
                'report = "every"\n'
                for u in (1, 2, 3)
            )
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
name = "rs485"
type = "modbus-tcp"
host = "127.0.0.1"
port = {port}
interval_s = 0.2
{devices}""")
            agent = Agent(parse_config(doc, tmp_path / "agent.toml"))
            seen: list[Sample] = []

            def keep(record: Record) -> None:
                if isinstance(record, Sample):
                    seen.append(record)

            agent.context.subscribe(keep)
            task = asyncio.create_task(agent.run())
            uploaded: list[Sample] = []
            try:
                for _ in range(200):
                    # what was seen before an empty journal is known to be stored; later samples may not be
                    before = list(seen)
                    if len(before) >= 9 and (await agent.journal.stats()).records == 0:
                        uploaded = before
                        break
                    await asyncio.sleep(0.05)
            finally:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
            level = sim.lamp(2).level_pct
    finally:
        await asyncio.to_thread(collector.stop)
    assert len(uploaded) >= 9
    stored = {(device, ts): values for device, ts, values in stored_samples(db, GW).values()}
    for sample in uploaded:
        assert stored[(sample.device, sample.ts_ms)] == dict(sample.values)
    lamp2 = [s for s in uploaded if s.device == "lamp-2"]
    assert lamp2 and lamp2[-1].values["level_pct"] == level == 70
    assert lamp2[-1].values["power_w"] > 0
