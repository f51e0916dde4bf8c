"""Lighting commands over MQTT reach the lighting service of a running agent, whose lamps are real
Modbus controllers (the lamp simulator): override a street, clear it, push a program set (a bad
one is refused with its reason and the previous set keeps running)."""

from __future__ import annotations

import time
import tomllib
from pathlib import Path
from typing import Any

import pytest
from mqtt_testkit import Fleet, Operator, lamp_street, running_agent, wait_for

from edge_agent.lighting.model import merge_docs
from simulators.lamps import LampSimulator
from simulators.mosquitto import Mosquitto

pytestmark = pytest.mark.timeout(120)

REPO = Path(__file__).resolve().parents[2]
MAP = REPO / "configs" / "registermaps" / "lamp-lc100.toml"
PROGRAMS = REPO / "configs" / "lighting"
LEVEL_CMD = 0  # level_cmd_pct in the LC100 map


def programs_doc(*names: str) -> dict[str, Any]:
    return merge_docs(tomllib.loads((PROGRAMS / n).read_text()) for n in names)


async def test_override_clear_and_program_pushes_through_the_lighting_service(
    tmp_path: Path, fleet: Fleet, broker: Mosquitto
) -> None:
    async with LampSimulator([7, 8], MAP) as lamps:
        port = await lamps.serve_tcp()
        async with Operator(broker, fleet) as op, \
                running_agent(tmp_path, fleet, broker, **lamp_street(port)) as agent:
            svc: Any = agent.context.services.lighting
            until = int(time.time() * 1000) + 3_600_000
            raised = await op.ack(await op.send("gw-a", "lighting.override",
                                                {"group": "rue-de-la-liberte", "level_pct": 100, "until_ms": until}))
            await wait_for(lambda: lamps.register_image(7)[LEVEL_CMD] == 100 == lamps.register_image(8)[LEVEL_CMD],
                           20, "both lamps at 100 %")
            unknown = await op.ack(await op.send("gw-a", "lighting.override",
                                                 {"lamp": "lamp-99", "level_pct": 50, "until_ms": until}))
            cleared = await op.ack(await op.send("gw-a", "lighting.clear_override", {"group": "rue-de-la-liberte"}))
            before = svc.programs
            bad = await op.ack(await op.send("gw-a", "lighting.push_programs", programs_doc("common.toml")))
            kept = svc.programs is before
            good = await op.ack(await op.send("gw-a", "lighting.push_programs",
                                              programs_doc("common.toml", "dijon.toml", "quetigny.toml")))
            swapped = svc.programs is not before
    assert raised.status == "done" and raised.result == {"group": "rue-de-la-liberte", "level_pct": 100,
                                                         "until_ms": until}
    assert (unknown.status, unknown.code) == ("refused", "rejected") and "lamp-99" in (unknown.reason or "")
    assert cleared.status == "done" and cleared.result["had_override"] is True
    assert (bad.status, bad.code) == ("refused", "rejected") and "dijon" in (bad.reason or "") and kept
    assert good.status == "done" and good.result["programs"] >= 2 and swapped
