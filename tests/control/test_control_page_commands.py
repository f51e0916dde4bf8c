"""The commands the control centre's page sends, end to end: a real collector (its MQTT link), a real
Mosquitto, real agents (lamps on the lamp simulator, a signal controller on the signals simulator):
a lamp dimmed from the API and its ack, the page's stream told; a junction put to flashing amber and
back, by a supervisor only and with a reason; `citygate-collector command send --wait`."""

from __future__ import annotations

import asyncio
import gzip
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest
from aiohttp import web
from click.testing import CliRunner
from mqtt_testkit import LAMP_MAP, Fleet, lamp_street, running_agent, signals_bus, wait_for

from citygate_wire.batch import PATH
from collector.app import create_app, start
from collector.cli import main
from collector.control.link import LinkConfig
from collector.control.routes import attach_link
from collector.live import CHANGES
from collector.store import Store, open_store
from drivers.traffic.registers import Mode
from simulators.lamps import LampSimulator
from simulators.mosquitto import Mosquitto

pytestmark = pytest.mark.timeout(180)

LEVEL_CMD = 0  # level_cmd_pct in the LC100 map
RANKS = ("viewer", "operator", "supervisor")


async def cli(*args: str, code: int = 0) -> str:
    """`citygate-collector ARGS` in-process (a thread: the commands run their own event loop)."""
    done = await asyncio.to_thread(CliRunner().invoke, main, list(args))
    assert done.exit_code == code, done.output
    return done.output


@dataclass
class Desk:
    """A collector with its MQTT link, and an operator of each rank."""

    url: str
    app: web.Application
    http: aiohttp.ClientSession
    tokens: dict[str, str]  # rank -> operator token
    fleet: Fleet
    broker: Mosquitto
    store: Store
    db: str
    seqs: dict[str, int]

    async def call(self, method: str, path: str, body: Any = None, rank: str = "operator") -> tuple[int, Any]:
        headers = {"Authorization": f"Bearer {self.tokens[rank]}"}
        async with self.http.request(method, self.url + path, json=body, headers=headers) as resp:
            return resp.status, await resp.json(content_type=None)

    async def final(self, command_id: str) -> dict[str, Any]:
        status, doc = await self.call("GET", f"/api/v1/control/commands/{command_id}?wait_s=30", rank="viewer")
        assert status == 200 and doc["final"], doc
        return doc

    async def upload(self, gateway: str, records: list[dict[str, Any]]) -> None:
        numbered = []
        for r in records:
            self.seqs[gateway] = self.seqs.get(gateway, 0) + 1
            numbered.append({**r, "seq": self.seqs[gateway]})
        body = orjson.dumps({"v": 1, "gateway": gateway, "commune": "21231", "records": numbered})
        headers = {"Content-Type": "application/json", "Content-Encoding": "gzip",
                   "Authorization": f"Bearer {self.fleet.gateways[gateway]}"}
        async with self.http.post(self.url + PATH, data=gzip.compress(body), headers=headers) as resp:
            assert resp.status == 200, await resp.text()


@pytest.fixture
async def desk(tmp_path: Path) -> AsyncIterator[Desk]:
    db = str(tmp_path / "collector.db")
    fleet = Fleet(tmp_path / "acl")
    for name in ("gw-a", "gw-b"):
        await cli("gateway", "add", name, "--commune", "21231", "--db", db, "--token-file", str(tmp_path / f"{name}.token"))
        fleet.gateways[name] = (tmp_path / f"{name}.token").read_text().strip()
    tokens = {}
    for rank in RANKS:
        await cli("operator", "add", f"op-{rank}", "--role", rank, "--db", db, "--token-file", str(tmp_path / f"{rank}.token"))
        tokens[rank] = (tmp_path / f"{rank}.token").read_text().strip()
    await cli("mqtt-acl", "--out", str(tmp_path / "acl"), "--collector-password-file", str(tmp_path / "pw"),
              "--db", db)
    fleet.collector_password = (tmp_path / "pw").read_text().strip()
    broker = Mosquitto(tmp_path / "broker", password_file=tmp_path / "acl" / "passwd", acl_file=tmp_path / "acl" / "acl")
    broker.start()
    try:
        async with open_store(db) as store:
            app = create_app(store)
            link = attach_link(app, LinkConfig(broker.url, fleet.collector_password, resend_s=1.0, keepalive_s=5,
                                               expiry_grace_s=0.5, command_key=fleet.command_key))
            runner, url = await start(app, "127.0.0.1", 0)
            try:
                await wait_for(lambda: link.connected, 30, "the collector's MQTT link")
                async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=90)) as http:
                    yield Desk(url, app, http, tokens, fleet, broker, store, db, {})
            finally:
                await runner.cleanup()
    finally:
        broker.kill()


async def test_a_lamp_dimmed_from_the_api_is_acknowledged_and_the_page_is_told(tmp_path: Path, desk: Desk) -> None:
    async with LampSimulator([7, 8], LAMP_MAP) as lamps:
        port = await lamps.serve_tcp()
        async with running_agent(tmp_path, desk.fleet, desk.broker, **lamp_street(port)):
            until = int(time.time() * 1000) + 3_600_000
            dim = {"gateway": "gw-a", "action": "lighting.override",
                   "args": {"lamp": "lamp-7", "level_pct": 40, "until_ms": until}}
            status, refused = await desk.call("POST", "/api/v1/control/commands", dim, rank="viewer")
            assert status == 403 and refused["type"].endswith("forbidden-role") and refused["needed"] == "operator"

            told = desk.app[CHANGES].next("commands")  # taken before: no change can be missed
            status, sent = await desk.call("POST", "/api/v1/control/commands", dim)
            # pending, or already sent when the link sent it before this answer was written (a loaded machine)
            assert status == 202 and sent["issued_by"] == "op-operator" and sent["deliveries"][0]["status"] in (
                "pending", "sent")
            async with asyncio.timeout(10):
                await told.wait()
            acked = desk.app[CHANGES].next("commands")
            done = await desk.final(sent["id"])
            assert [(d["gateway"], d["status"]) for d in done["deliveries"]] == [("gw-a", "done")]
            assert done["deliveries"][0]["result"] == {"lamp": "lamp-7", "level_pct": 40, "until_ms": until}
            async with asyncio.timeout(10):
                await acked.wait()  # the ack itself told the page's stream
            await wait_for(lambda: lamps.register_image(7)[LEVEL_CMD] == 40, 20, "lamp 7 at 40 %")

            status, sent = await desk.call("POST", "/api/v1/control/commands", {
                "gateway": "gw-a", "action": "lighting.clear_override", "args": {"lamp": "lamp-7"}})
            cleared = await desk.final(sent["id"])
            status, sent = await desk.call("POST", "/api/v1/control/commands", {
                "commune": "21231", "action": "device.read", "args": {"device": "lamp-8"}, "valid_s": 20})
            read = await desk.final(sent["id"])
    assert cleared["deliveries"][0]["status"] == "done" and cleared["deliveries"][0]["result"]["had_override"]
    # a commune's command reaches each gateway registered there: gw-b runs no agent, it stays unanswered
    by_gateway = {d["gateway"]: d for d in read["deliveries"]}
    assert by_gateway["gw-a"]["status"] == "done" and "level_cmd_pct" in by_gateway["gw-a"]["result"]["values"]
    assert by_gateway["gw-b"]["status"] == "unanswered"
    status, audit = await desk.call("GET", "/api/v1/control/commands", rank="viewer")
    assert [(c["action"], c["issued_by"], c["final"]) for c in audit["commands"]] == [
        ("device.read", "op-operator", True), ("lighting.clear_override", "op-operator", True),
        ("lighting.override", "op-operator", True)]


async def test_a_junction_goes_to_flashing_amber_and_back_by_a_supervisor_with_a_reason(
        tmp_path: Path, desk: Desk, controller: int) -> None:
    now = int(time.time() * 1000)
    quarter = now - now % 900_000
    # what the collector knows of the junction: its counts (a detector of the signals bus) and the controller's state
    await desk.upload("gw-a", [
        {"kind": "sample", "device": "signals-jaures.d1", "ts_ms": quarter,
         "values": {"junction": "dijon-jaures-tram", "approach": "north", "lane": 1, "interval": 1,
                    "interval_s": 900, "count_veh": 42, "occupancy_pct": 12.5}},
        {"kind": "sample", "device": "signals-jaures", "ts_ms": quarter + 1000,
         "values": {"mode": "fixed_time", "plan": 1, "stage": 2, "interstage": False, "cycle_second": 12,
                    "central": True, "plan_target": 1, "position_target": "normal", "alarms": 0}},
    ])
    status, listing = await desk.call("GET", "/api/v1/control/junctions", rank="viewer")
    assert status == 200, listing
    [junction] = listing["junctions"]
    assert (junction["junction"], junction["gateway"], junction["controller"], junction["mode"], junction["plan"]) == (
        "dijon-jaures-tram", "gw-a", "signals-jaures", "fixed_time", 1)
    assert set(listing["modes"]) == {"normal", "yellow_flash", "dark"}

    path = "/api/v1/control/junctions/dijon-jaures-tram/mode"
    flash = {"mode": "yellow_flash", "reason": "accident on the crossing, police on site", "duration_s": 1800}
    for rank in ("viewer", "operator"):
        status, doc = await desk.call("POST", path, flash, rank=rank)
        assert status == 403 and doc["type"].endswith("forbidden-role") and doc["rank"] == rank, doc
    assert doc["needed"] == "supervisor"
    # nor by the raw commands route
    status, doc = await desk.call("POST", "/api/v1/control/commands", {
        "gateway": "gw-a", "action": "traffic.set_position", "reason": "x",
        "args": {"controller": "signals-jaures", "position": "dark", "timeout_s": 600}})
    assert status == 403, doc
    status, doc = await desk.call("POST", path, {"mode": "yellow_flash", "reason": "  "}, rank="supervisor")
    assert status == 400 and doc["type"].endswith("reason-needed") and doc["pointer"] == "/reason"
    for bad in ({"mode": "red", "reason": "x"}, {"mode": "yellow_flash", "reason": "x", "stage": 3},
                {"mode": "dark", "reason": "x", "duration_s": 10}):
        status, doc = await desk.call("POST", path, bad, rank="supervisor")
        assert status == 400, (bad, doc)
    status, doc = await desk.call("POST", "/api/v1/control/junctions/nowhere/mode", flash, rank="supervisor")
    assert status == 404

    async with running_agent(tmp_path, desk.fleet, desk.broker, bus=[signals_bus(controller)]) as agent:
        signals = agent.context.buses["signals-jaures"]
        await wait_for(lambda: getattr(signals, "_in_sync", False), 60, "the controller to hold our tables")
        status, sent = await desk.call("POST", path, flash, rank="supervisor")
        assert status == 202, sent
        flashed = await desk.final(sent["id"])
        await wait_for(lambda: (c := signals.controller) is not None and c.mode == Mode.YELLOW_FLASH,
                       30, "the controller in yellow flash")
        status, sent = await desk.call("POST", path, {"mode": "normal", "reason": "crossing cleared"},
                                       rank="supervisor")
        back = await desk.final(sent["id"])
    assert flashed["issued_by"] == "op-supervisor" and flashed["reason"] == flash["reason"]
    assert flashed["args"] == {"controller": "signals-jaures", "position": "yellow_flash", "timeout_s": 1800}
    assert flashed["deliveries"][0]["status"] == "done", flashed
    assert back["deliveries"][0]["status"] == "done" and back["args"]["position"] == "normal"


async def test_command_send_waits_for_the_ack_and_prints_it(tmp_path: Path, desk: Desk) -> None:
    async with running_agent(tmp_path, desk.fleet, desk.broker, "gw-a"):
        out = await cli("command", "send", "device.read", "--gateway", "gw-a", "--arg", "device=meter-1",
                        "--wait", "--timeout", "30", "--db", desk.db)
        refused = await cli("command", "send", "device.read", "--gateway", "gw-a", "--arg", "device=nothing",
                            "--wait", "--timeout", "30", "--db", desk.db, code=1)
    assert "device.read to gateway:gw-a, by cli:" in out and "gw-a: done" in out, out
    assert '"temperature_c":21.5' in out
    assert "gw-a: refused (unavailable)" in refused and "no device 'nothing'" in refused, refused
    assert all(len(line) <= 80 for line in (out + refused).splitlines())
    # checked as the gateway checks it, before anything is stored; a traffic command needs a reason
    bad = await cli("command", "send", "lighting.override", "--gateway", "gw-a", "--arg", "lamp=l1",
                    "--arg", "level_pct=140", "--for", "60", "--db", desk.db, code=1)
    assert "/args/level_pct" in bad
    why = await cli("command", "send", "traffic.set_position", "--gateway", "gw-a", "--arg", "controller=x",
                    "--arg", "position=dark", "--arg", "timeout_s=60", "--db", desk.db, code=2)
    assert "needs a reason" in why
    listed = await cli("command", "list", "--db", desk.db)
    assert listed.count("device.read") == 2 and "1 done" in listed and "1 refused" in listed
    assert all(len(line) <= 80 for line in listed.splitlines())
