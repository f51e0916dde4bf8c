"""Meters end to end: simulated Linky and M-Bus water meter on ptys -> `citygate-agent run` -> collector -> store.

Everything is real: the simulators write protocol bytes into ptys, the agent is a subprocess
reading them through pyserial (8N1: a pty refuses 7E1/8E1), journals, and uploads to a
collector subprocess; the test reads the stored samples back through the collector's HTTP API.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import aiohttp

from drivers.tic.codec import Mode
from simulators.mbus_meter import MbusWaterMeter
from simulators.procs import Proc, add_gateway, bin_path, start_collector
from simulators.tic_meter import TicMeter

GW = "gw-meters-e2e"


def agent_toml(tmp: Path, url: str, tic_port: str, mbus_port: str) -> str:
    return f"""
[gateway]
id = "{GW}"
commune = "21231"
state_dir = "{tmp / "state"}"

[uplink]
url = "{url}"
token_file = "{tmp / "token"}"
interval_s = 0.2
backoff_max_s = 1

[local_api]
socket = "{tmp / "agent.sock"}"

[[bus]]
name = "linky"
type = "tic"
port = "{tic_port}"
mode = "standard"
parity = "N"
bytesize = 8
device = "cab-meter"
sample_interval_s = 0.5

[[bus]]
name = "mbus0"
type = "mbus"
port = "{mbus_port}"
parity = "N"
timeout_s = 2
interval_s = 0.5
[[bus.device]]
id = "water-1"
primary = 1
"""


async def samples_of(session: aiohttp.ClientSession, url: str, device: str) -> list[dict[str, Any]]:
    async with session.get(
        f"{url}/api/v1/gateways/{GW}/devices/{device}/samples", params={"limit": "50"}
    ) as r:
        if r.status == 404:
            return []
        r.raise_for_status()
        body = await r.json()
    samples: list[dict[str, Any]] = body["samples"]
    return samples


async def test_meter_readings_reach_the_collector_store(tmp_path: Path) -> None:
    db = str(tmp_path / "collector.db")
    await asyncio.to_thread(add_gateway, db, GW, "21231", tmp_path / "token")
    collector, url = await asyncio.to_thread(start_collector, db)
    agent: Proc | None = None
    try:
        tic = TicMeter(mode=Mode.STANDARD, load_w=2400.0, period_s=0.2, corrupt_rate=0.05, seed=3)
        water = MbusWaterMeter(primary=1, volume_m3=42.0, leak_m3h=0.03, telegrams=2)
        async with tic, water:
            config = tmp_path / "agent.toml"
            config.write_text(agent_toml(tmp_path, url, tic.port, water.port))
            agent = Proc("agent", [bin_path("citygate-agent"), "run", "--config", str(config)])
            async with aiohttp.ClientSession() as session:
                deadline = time.monotonic() + 90
                meter: list[dict[str, Any]] = []
                water_samples: list[dict[str, Any]] = []
                while time.monotonic() < deadline:
                    meter = await samples_of(session, url, "cab-meter")
                    water_samples = await samples_of(session, url, "water-1")
                    if len(meter) >= 3 and len(water_samples) >= 2:
                        break
                    if agent.popen.poll() is not None:
                        break
                    await asyncio.sleep(0.3)
                assert len(meter) >= 3 and len(water_samples) >= 2, agent.output()[-3000:]
    finally:
        if agent is not None:
            await asyncio.to_thread(agent.stop)
        await asyncio.to_thread(collector.stop)

    # with corrupt_rate some groups fail their checksum and are left out of that frame's sample
    complete = [s for s in meter if {"meter_id", "tariff", "apparent_power_va", "energy_wh"} <= s["values"].keys()]
    assert complete, meter
    latest = max(complete, key=lambda s: s["ts_ms"])["values"]
    assert latest["meter_id"] == tic.meter_id and latest["tariff"] == "BASE"
    assert latest["apparent_power_va"] == round(2400 / 0.95)
    assert abs(latest["energy_wh"] - tic.energy_wh) < 50  # the meter's index, a few frames behind at most
    energies = [s["values"]["energy_wh"] for s in sorted(meter, key=lambda s: s["ts_ms"]) if "energy_wh" in s["values"]]
    assert energies == sorted(energies)
    w = max(water_samples, key=lambda s: s["ts_ms"])["values"]
    assert (w["meter_id"], w["manufacturer"], w["medium"]) == ("00182007", "GWF", "water")
    assert 42.0 <= w["volume_m3"] <= water.volume_m3 + 0.001
    assert w["flow_m3h"] == round(water.flow_m3h(), 3)  # l/h on the wire; from the 2nd telegram of the read
