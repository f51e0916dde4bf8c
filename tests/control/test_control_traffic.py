"""Traffic commands over MQTT reach a real (simulated) signal controller through the signals bus:
yellow flash for 30 min, a plan selection, and the bus's own refusals come back as refused acks."""

from __future__ import annotations

from pathlib import Path

import pytest
from mqtt_testkit import Fleet, Operator, running_agent, signals_bus, wait_for

from drivers.traffic.registers import Mode
from simulators.mosquitto import Mosquitto

pytestmark = pytest.mark.timeout(180)



async def test_yellow_flash_plan_and_refusals_through_the_signals_bus(
    tmp_path: Path, fleet: Fleet, broker: Mosquitto, controller: int
) -> None:
    async with Operator(broker, fleet) as op, running_agent(tmp_path, fleet, broker, bus=[signals_bus(controller)]) as agent:
        signals = agent.context.buses["signals-jaures"]
        await wait_for(lambda: getattr(signals, "_in_sync", False), 60, "the controller to hold our tables")

        flash = await op.ack(await op.send("gw-a", "traffic.set_position",
                                           {"controller": "signals-jaures", "position": "yellow_flash",
                                            "timeout_s": 1800}))
        await wait_for(lambda: (c := signals.controller) is not None and c.mode == Mode.YELLOW_FLASH,
                       30, "the controller in yellow flash")
        plan = await op.ack(await op.send("gw-a", "traffic.select_plan",
                                          {"controller": "signals-jaures", "plan": 2, "timeout_s": 600}))
        unknown = await op.ack(await op.send("gw-a", "traffic.select_plan",
                                             {"controller": "signals-jaures", "plan": 99, "timeout_s": 600}))
        back = await op.ack(await op.send("gw-a", "traffic.set_position",
                                          {"controller": "signals-jaures", "position": "normal", "timeout_s": 60}))
    assert flash.status == "done" and flash.result["position"] == "yellow_flash"
    assert plan.status == "accepted" and plan.result["plan"] == 2
    assert (unknown.status, unknown.code) == ("refused", "rejected") and "plan 99" in (unknown.reason or "")
    assert back.status == "done"
