"""The Modbus lamp bus over Modbus RTU on a real pty pair, served by the lamp simulator."""

from __future__ import annotations

import statistics

import pytest
from modbus_testkit import DALI_GW, LC100, Records, gaps, loop_stalls, make_bus, polling, rtu_table, wait_for

from drivers.errors import DeviceError
from simulators.lamps import LampSimulator


async def test_rtu_samples_and_verified_level_writes() -> None:
    async with LampSimulator([1, 2, 3], LC100, level_pct=60) as sim:
        path = await sim.serve_rtu_pty()
        assert path.startswith("/dev/pts/")
        bus = make_bus(rtu_table(path, [1, 2, 3]))
        records = Records()
        async with polling(bus, records):
            await wait_for(lambda: all(records.samples(f"lamp-{u}") for u in (1, 2, 3)), what="samples")
            assert await bus.set_level("lamp-3", 25) == 25
            await wait_for(lambda: records.samples("lamp-3")[-1].values["level_pct"] == 25, what="new level polled")
        assert records.samples("lamp-1")[0].values["level_cmd_pct"] == 60
        assert sim.lamp(3).level_pct == 25 and sim.lamp(2).level_pct == 60


async def test_rtu_dali_gateway_map() -> None:
    async with LampSimulator([7], DALI_GW) as sim:
        path = await sim.serve_rtu_pty()
        bus = make_bus(rtu_table(path, [7], regmap=DALI_GW))
        try:
            assert await bus.set_level("lamp-7", 70) == 70
            assert sim.register_image(7)[15] == 241  # IEC 62386-102: 70 % is arc 241
            sample = await bus.read("lamp-7")
            assert sample.values["level_pct"] == pytest.approx(70, abs=1.5)
        finally:
            await bus.aclose()


async def test_rtu_dead_devices_do_not_delay_neighbours_on_the_sequential_line() -> None:
    units = list(range(1, 11))
    dead = (4, 8)
    async with LampSimulator(units, LC100) as sim:
        path = await sim.serve_rtu_pty()
        # A dead controller costs 3 x 0.15 s per poll: polled in line, two of them would more
        # than double the 0.4 s cycle.
        bus = make_bus(rtu_table(path, units, interval_s=0.4, timeout_s=0.15, retries=2, backoff_max_s=1.6))
        records = Records()
        for u in dead:
            sim.set_fault(u, "no-answer")
        neighbours = [u for u in units if u not in dead]
        async with loop_stalls() as stalls, polling(bus, records):
            # ten polls of each (a loaded machine starts the line later)
            await wait_for(lambda: all(len(records.sample_times(f"lamp-{u}")) >= 10 for u in neighbours),
                           timeout=30, what="ten polls of every neighbour")
        neighbour_gaps = [g for u in neighbours for g in gaps(records.sample_times(f"lamp-{u}")[2:])]
        assert len(neighbour_gaps) >= 8 * 7
        # In line behind the two dead ones a neighbour would wait 0.4 + 2 x 3 x 0.15 = 1.3 s every cycle.
        assert statistics.median(neighbour_gaps) == pytest.approx(0.4, abs=0.05)
        # Off the line, at most one timeout of its own (a reply a loaded machine read late: 0.4 + 0.15 +
        # its retry) now and then: never a dead controller's retries. A stall of the whole process (a
        # loaded machine) delays a poll by as much, whatever the code: it is added to the bounds.
        late = [g for g in neighbour_gaps if g > 0.4 + 0.15 + 0.1 + stalls.max_s]
        assert len(late) <= len(neighbour_gaps) // 20, f"neighbours waited {sorted(late)} s (stalls {stalls.max_s:.3f} s)"
        bound = 0.4 + 3 * 0.15 + 0.1 + stalls.max_s
        assert max(neighbour_gaps) < bound, f"a neighbour waited {max(neighbour_gaps):.3f} s (stalls {stalls.max_s:.3f} s)"
        assert sorted(e.device for e in records.events("communication_failure")) == ["lamp-4", "lamp-8"]


async def test_rtu_unit_missing_from_the_line_is_silence_then_failure() -> None:
    async with LampSimulator([1], LC100) as sim:
        path = await sim.serve_rtu_pty()
        bus = make_bus(rtu_table(path, [1, 9], interval_s=0.2, timeout_s=0.1, failure_threshold=2))
        records = Records()
        async with polling(bus, records):
            await wait_for(lambda: records.events("communication_failure"), what="communication_failure")
        (event,) = records.events("communication_failure")
        assert event.device == "lamp-9" and "no reply from unit 9" in event.detail["error"]
        with pytest.raises(DeviceError, match="no such device"):
            await bus.read("lamp-10")
