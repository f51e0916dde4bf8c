"""One override model: a lamp held through the lighting service or straight through its bus
(no [lighting] section) shows the same way in `devices`, and its expiry is journalled."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from lighting_testkit import Harness, LampModel, lighting_config

from drivers.model import Event
from edge_agent.clock import epoch_ms
from edge_agent.lighting.model import NotALamp, UnknownTarget
from edge_agent.lighting.overrides import DirectLamps, LightingOverrides

START = datetime(2026, 1, 12, 20, tzinfo=ZoneInfo("Europe/Paris"))


def harness(tmp_path: Path) -> Harness:
    cfg = lighting_config([("avenue", ["lamp-1", "lamp-2"], "dijon")])
    return Harness(cfg, tmp_path / "state", START, [LampModel("lamp-1"), LampModel("lamp-2")])


async def test_a_lamp_held_through_lighting_or_its_bus_shows_alike_and_its_expiry_is_journalled(tmp_path: Path) -> None:
    lit = harness(tmp_path / "lit")
    await lit.start()
    until = START + timedelta(hours=1)
    lighting = LightingOverrides(lit.svc)
    await lighting.hold("avenue", 30, until, 0)
    await lit.kick()

    bare = harness(tmp_path / "bare")  # a gateway without [lighting]: its lamp bus only
    ended: list[Event] = []
    direct = DirectLamps([bare.bus], bare.clock, lambda r: ended.append(r) if isinstance(r, Event) else None)
    held = await direct.hold("lamp-1", 30, until, 0)
    assert held["feedback_level_pct"] == 30 and held["restore_pct"] == 100

    via_lighting, via_bus = lighting.override_of("lamp-1"), direct.override_of("lamp-1")
    assert via_lighting == {"target": "avenue", "level_pct": 30, "start_ms": epoch_ms(START),
                            "until_ms": epoch_ms(until), "via": "lighting"}
    assert via_bus is not None
    assert {k: via_bus[k] for k in via_lighting} == {**via_lighting, "target": "lamp-1", "via": "direct"}

    await lit.run_until(until + timedelta(minutes=1))
    await bare.clock.advance_to(until + timedelta(minutes=1))
    assert [(e.device, e.code) for e in lit.events("override_ended")] == [("avenue", "override_ended")]
    assert [(e.device, e.code, e.detail["restored_level_pct"]) for e in ended] == [("lamp-1", "override_ended", 100)]
    assert lighting.override_of("lamp-1") is None and direct.override_of("lamp-1") is None
    assert bare.bus.models["lamp-1"].level == 100
    await lit.stop()


async def test_a_direct_override_names_an_unknown_device_or_a_device_that_is_no_lamp(tmp_path: Path) -> None:
    bare = harness(tmp_path)
    direct = DirectLamps([bare.bus], bare.clock, lambda r: None)
    with pytest.raises(UnknownTarget, match="lamp-9"):
        await direct.hold("lamp-9", 30, START + timedelta(hours=1), None)
    bare.bus.lamps = lambda: ["lamp-2"]  # type: ignore[method-assign]  # lamp-1 polled, but not as a lamp
    with pytest.raises(NotALamp, match="not a lamp controller"):
        await direct.hold("lamp-1", 30, START + timedelta(hours=1), None)
    assert await direct.release("lamp-1") is None
