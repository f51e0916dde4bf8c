"""End to end: the agent's cameras bus watches simulated cameras, its events reach the collector's store
exactly once, the operators' camera view shows them, and no credential is in any log, journal or answer."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import sqlite3
import tomllib
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from drivers.model import Event, Record
from edge_agent.agent import Agent
from edge_agent.config import parse_config
from simulators.cameras import CameraSim, write_bus_files
from simulators.procs import add_gateway, start_collector
from tests.cameras.camkit import FAST, PASSWORD
from tests.e2e.e2e_kit import stored_seqs

GW = "gw-cams-e2e"
PLACE = "Carrefour Jaurès, mât 3"


def _stored_events(db: Path) -> list[tuple[int, str, str, str]]:
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return con.execute("SELECT e.seq, e.device, e.code, e.detail FROM events e JOIN gateways g"
                           " ON g.id = e.gateway_id WHERE g.name = ? ORDER BY e.seq", (GW,)).fetchall()
    finally:
        con.close()


def _get(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=5) as resp:
        return json.loads(resp.read())


async def test_camera_faults_travel_from_the_cameras_to_the_operators_view_once(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    db = tmp_path / "collector.db"
    token_file = tmp_path / "token"
    await asyncio.to_thread(add_gateway, str(db), GW, "21231", token_file)
    collector, url = await asyncio.to_thread(start_collector, str(db))
    cams = [CameraSim(f"cam-{i}", password=PASSWORD) for i in (1, 2)]
    try:
        for cam in cams:
            await cam.go_online()
        write_bus_files(tmp_path, cams)
        bus = tomllib.loads((tmp_path / "cameras-bus.toml").read_text())["bus"][0]
        bus.update(FAST, credentials=str(tmp_path / "cameras.secret"), time_source="kernel")
        bus["camera"][0]["location"] = PLACE  # for the technician on site: never uploaded
        doc = {"gateway": {"id": GW, "commune": "21231", "state_dir": str(tmp_path / "state")},
               "uplink": {"url": url, "token_file": str(token_file), "interval_s": 0.1},
               "local_api": {"socket": str(tmp_path / "state" / "agent.sock")},
               "bus": [bus]}
        agent = Agent(parse_config(doc, tmp_path / "agent.toml"))
        (cameras,) = agent.buses
        seen: list[Record] = []
        agent.context.subscribe(seen.append)
        task = asyncio.create_task(agent.run())
        try:
            async def until(what: Any, timeout_s: float = 10.0) -> None:
                for _ in range(int(timeout_s / 0.05)):
                    if await what():
                        return
                    await asyncio.sleep(0.05)
                raise AssertionError(f"not in time; seen {[(r.device, r.code) for r in seen if isinstance(r, Event)]}")

            async def drained() -> bool:
                return (await agent.journal.stats()).records == 0

            async def event(code: str) -> bool:
                return any(isinstance(r, Event) and r.code == code for r in seen) and await drained()

            await until(lambda: event("camera_identified"))
            assert type(getattr(cameras, "time_sync", None)).__name__ == "KernelTimeSync"  # the agent's adjtimex read
            cams[0].raise_fault("tampering")
            cams[1].rtsp_status = 404
            await until(lambda: event("camera_tampering"))
            await until(lambda: event("camera_stream_unavailable"))
            cams[0].clear_fault("tampering")
            await until(lambda: event("camera_tampering_cleared"))
            view = await asyncio.to_thread(_get, f"{url}/api/v1/cameras")
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
    finally:
        for cam in cams:
            await cam.go_offline()
        await asyncio.to_thread(collector.stop)
    seqs = stored_seqs(db, GW)
    assert len(seqs) == len(set(seqs))  # each record stored once
    codes = [code for _, _, code, _ in _stored_events(db)]
    assert codes.count("camera_tampering") == 1 and codes.count("camera_tampering_cleared") == 1
    assert codes.count("camera_stream_unavailable") == 1 and codes.count("camera_identified") == 2
    status = {c["device"]: c for c in view["cameras"]}
    assert status["cam-1"]["status"] == "ok" and status["cam-2"]["status"] == "faulty"
    assert status["cam-2"]["faults"][0]["rtsp_status"] == 404
    journal = b"".join(p.read_bytes() for p in (tmp_path / "state").glob("journal*"))
    everything = "\n".join([caplog.text, collector.output(), json.dumps(view), repr(_stored_events(db))])
    with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as con:
        samples = con.execute("SELECT vals FROM samples").fetchall()
    assert samples
    everything += repr(samples)
    for secret in (PASSWORD, "watch:", "rtsp://watch", PLACE, "Jaur"):
        assert secret not in everything and secret.encode() not in journal, secret
