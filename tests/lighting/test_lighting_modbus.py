"""The lighting service through the real Modbus driver to the lamp simulator over TCP on loopback:
percent becomes the register the map asks for, a re-sent level never blinks, and the lamps'
own readings reveal failures and day burners."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from lighting_testkit import Harness, lighting_config

from citygate_wire.aio import stop_tasks
from drivers.base import BusContext
from drivers.modbus.bus import ModbusBus, build
from drivers.modbus.config import parse_bus_config
from simulators.lamps import LampSimulator

MAPS = Path(__file__).resolve().parents[2] / "configs" / "registermaps"
DALI_GW, LC100 = MAPS / "lamp-dali-gw.toml", MAPS / "lamp-lc100.toml"
DALI_CMD, LINEAR_CMD = 15, 0  # level_cmd_pct addresses in the two maps
PARIS = ZoneInfo("Europe/Paris")


def recent_2330() -> datetime:
    """23:30 in Paris three nights ago: the lamps' readings (stamped by the real clock) come after it."""
    day = datetime.now(PARIS).date() - timedelta(days=3)
    return datetime(day.year, day.month, day.day, 23, 30, tzinfo=PARIS).astimezone(UTC)


def modbus_bus(name: str, port: int, devices: list[tuple[str, int]], regmap: Path) -> ModbusBus:
    table: dict[str, Any] = {
        "name": name, "type": "modbus-tcp", "host": "127.0.0.1", "port": port, "interval_s": 0.2,
        "timeout_s": 0.5, "retries": 2, "failure_threshold": 3, "backoff_max_s": 2.0,
        "device": [{"id": d, "unit": u, "register_map": regmap.name, "rated_power_w": 100} for d, u in devices],
    }
    return build(parse_bus_config(table, BusContext(f"bus[{name}]", MAPS)))


@asynccontextmanager
async def cabinet(tmp_path: Path, start: datetime) -> AsyncIterator[tuple[Harness, LampSimulator, LampSimulator]]:
    """lamp-1 and lamp-2 behind a DALI gateway (arc levels), lamp-3 on a linear controller; one Dijon group."""
    async with LampSimulator([1, 2], DALI_GW, rated_power_w=100) as dali, LampSimulator([7], LC100) as linear:
        buses = [modbus_bus("dali", await dali.serve_tcp(), [("lamp-1", 1), ("lamp-2", 2)], DALI_GW),
                 modbus_bus("lc100", await linear.serve_tcp(), [("lamp-3", 7)], LC100)]
        cfg = lighting_config([("avenue", ["lamp-1", "lamp-2", "lamp-3"], "dijon")])
        h = Harness(cfg, tmp_path / "state", start, buses=buses)
        try:
            yield h, dali, linear
        finally:
            if h.task is not None:
                await h.stop()
            for b in buses:
                await b.aclose()


async def wait_for(cond: Any, what: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


async def test_percent_becomes_dali_arc_levels_or_linear_percent_per_map(tmp_path: Path) -> None:
    async with cabinet(tmp_path, recent_2330()) as (h, dali, linear):
        svc = await h.start()
        assert dali.register_image(1)[DALI_CMD] == 241 and dali.register_image(2)[DALI_CMD] == 241  # 70 %
        assert linear.register_image(7)[LINEAR_CMD] == 70
        until = h.clock.now() + timedelta(hours=1)
        expected = {50: (229, 50), 10: (170, 10), 1: (85, 1), 100: (254, 100), 0: (0, 0)}
        for level, (arc, pct) in expected.items():
            svc.set_override("avenue", level, None, until)
            await h.kick()
            assert dali.register_image(1)[DALI_CMD] == arc, level  # 50 % is arc 229, never 127
            assert linear.register_image(7)[LINEAR_CMD] == pct
        assert not dali.lamp(1).lit and not linear.lamp(7).lit  # 0 % is off
        commanded = [s.values for s in h.samples("lamp-1", "commanded_level_pct")]
        assert [v["commanded_level_pct"] for v in commanded] == [70, 50, 10, 1, 100, 0]
        assert [v["level_pct"] for v in commanded] == [70, 50, 10, 1, 100, 0]  # read back through the curve


async def test_a_restart_resends_the_level_without_a_blink(tmp_path: Path) -> None:
    async with cabinet(tmp_path, recent_2330()) as (h, dali, _linear):
        seen: list[float] = []
        lamp = dali.lamp(1)
        original = lamp.set_level

        def spy(level: float) -> None:  # every level the lamp's output is set to, in order
            seen.append(level)
            original(level)

        lamp.set_level = spy  # type: ignore[method-assign]
        await h.start()
        for _ in range(3):  # reboots at 23:30, 23:30 and 23:30
            await h.stop()
            await h.start()
        assert len(seen) == 4 and all(abs(level - 70) < 0.5 for level in seen)  # only 70 %, never off or 100 %
        assert abs(lamp.level_pct - 70) < 0.5


async def test_lamp_failure_and_day_burner_from_the_lamps_own_readings(tmp_path: Path) -> None:
    async with cabinet(tmp_path, recent_2330()) as (h, dali, linear):
        await h.start()
        pollers = [asyncio.create_task(b.run(h.emit)) for b in h.ctx.buses.values()]
        try:
            dali.set_fault(1, "lamp-failure")
            await wait_for(lambda: h.events("lamp_failure"), "a lamp failure event")
            failure = h.events("lamp_failure")[0]
            assert failure.device == "lamp-1" and failure.detail["power_w"] < 10 and failure.detail["rated_power_w"] == 100
            dali.set_fault(1, "none")
            await wait_for(lambda: h.events("lamp_restored"), "the lamp restored")
            assert h.events("lamp_restored")[0].detail["cleared"] == "lamp_failure"

            # the next day at 13:00 the program says off; someone forces lamp-3 on at its controller
            await h.run_until(h.clock.now() + timedelta(hours=13, minutes=30))
            assert linear.register_image(7)[LINEAR_CMD] == 0 and not linear.lamp(7).lit
            linear.set_level(7, 100)
            # lamp-3's: on a loaded machine another lamp could still be lit when the simulated clock jumped
            # 13.5 h, its off command not yet written, and its own day burner came first (seen once, lamp-2)
            await wait_for(lambda: [e for e in h.events("day_burner") if e.device == "lamp-3"], "lamp-3's day burner")
            burner = next(e for e in h.events("day_burner") if e.device == "lamp-3")
            assert burner.detail["target_pct"] == 0
            assert {e.device for e in h.events("lamp_failure")} == {"lamp-1"}  # nothing else was taken for a fault
        finally:
            await stop_tasks(pollers)  # cancelled again until they end, as the agent does (citygate_wire.aio)
