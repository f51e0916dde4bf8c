"""The Modbus lamp bus against the lamp simulator over real Modbus TCP on 127.0.0.1."""

from __future__ import annotations

import asyncio
import statistics
import time

import pytest
from modbus_testkit import DALI_GW, LC100, Records, gaps, loop_stalls, make_bus, polling, tcp_table, wait_for

from drivers.base import LampBus
from drivers.dali import arc_to_percent
from drivers.errors import DeviceError
from drivers.model import Severity
from simulators.lamps import LampSimulator

QUANTITIES = {
    "level_cmd_pct", "level_pct", "lamp_on", "fault_bits", "lamp_failure", "voltage_v",
    "current_a", "power_w", "temperature_c", "energy_wh", "operating_hours_h",
}


async def test_samples_carry_every_quantity_of_the_map_with_units_in_names() -> None:
    async with LampSimulator(range(1, 4), LC100, rated_power_w=80.0, level_pct=70) as sim:
        port = await sim.serve_tcp()
        bus = make_bus(tcp_table(port, [1, 2, 3]))
        as_protocol: object = bus
        assert isinstance(as_protocol, LampBus)
        assert bus.lamps() == ["lamp-1", "lamp-2", "lamp-3"]
        records = Records()
        async with polling(bus, records):
            await wait_for(lambda: all(records.samples(f"lamp-{u}") for u in (1, 2, 3)), what="a sample per lamp")
        sample = records.samples("lamp-2")[0]
        assert set(sample.values) == QUANTITIES
        v = sample.values
        assert v["level_cmd_pct"] == 70 and v["level_pct"] == 70 and v["lamp_on"] is True
        assert v["lamp_failure"] is False and v["fault_bits"] == 0
        # 80 W lamp at 70 %: about 4 % driver floor + 96 % x 0.7 of rated.
        assert 80 * 0.70 < float(v["power_w"]) < 80 * 0.74
        assert 220 < float(v["voltage_v"]) < 240
        assert float(v["current_a"]) == pytest.approx(float(v["power_w"]) / (float(v["voltage_v"]) * 0.95), rel=0.02)
        states = {s.device: s for s in bus.states()}
        assert states["lamp-2"].state == "ok" and states["lamp-2"].last_values == sample.values
        assert states["lamp-2"].address == "unit 2" and states["lamp-2"].bus == "cabinet-1"
        assert bus.rated_power_w("lamp-2") == 100.0


async def test_one_request_per_contiguous_block() -> None:
    async with LampSimulator([1], LC100) as sim:
        port = await sim.serve_tcp()
        bus = make_bus(tcp_table(port, [1]))
        try:
            for _ in range(5):
                await bus.read("lamp-1")
        finally:
            await bus.aclose()
        # 11 quantities in 12 registers: one FC03 request per read.
        assert sim.requests(1) == 5


async def test_set_level_is_written_then_verified_by_reading_back() -> None:
    async with LampSimulator([1, 2], LC100) as sim:
        port = await sim.serve_tcp()
        bus = make_bus(tcp_table(port, [1, 2]))
        try:
            assert await bus.set_level("lamp-2", 42) == 42
            assert sim.lamp(2).level_pct == 42
            assert sim.lamp(1).level_pct == 100
            sample = await bus.read("lamp-2")
            assert sample.values["level_cmd_pct"] == 42 and sample.values["level_pct"] == 42
            assert await bus.set_level("lamp-2", 0) == 0
            assert (await bus.read("lamp-2")).values["lamp_on"] is False
            with pytest.raises(ValueError, match=r"0\.\.100"):
                await bus.set_level("lamp-2", 101)
            with pytest.raises(DeviceError, match="no such device"):
                await bus.set_level("lamp-9", 50)
        finally:
            await bus.aclose()


async def test_dali_gateway_map_converts_levels_on_the_arc_curve() -> None:
    async with LampSimulator([1], DALI_GW, rated_power_w=60.0) as sim:
        port = await sim.serve_tcp()
        table = tcp_table(port, [1], regmap=DALI_GW)
        # Two ballasts on one gateway unit: short addresses 0 and 3.
        table["device"] = [
            {"id": "ballast-0", "unit": 1, "register_map": DALI_GW.name},
            {"id": "ballast-3", "unit": 1, "register_map": DALI_GW.name, "address_offset": 300},
        ]
        bus = make_bus(table)
        try:
            assert await bus.set_level("ballast-0", 50) == 50
            # The register holds arc 229, not 50 or 127: the DALI curve.
            assert sim.register_image(1)[15] == 229
            sample = await bus.read("ballast-0")
            assert sample.values["level_cmd_pct"] == round(arc_to_percent(229), 1) == 50.5
            assert sample.values["lamp_on"] is True and sample.values["gear_failure"] is False
            assert 60 * 0.48 < float(sample.values["power_w"]) < 60 * 0.54
            assert await bus.set_level("ballast-0", 99) == 100  # arc 254 is the nearest step
            # The ballast at short address 3 sits 300 registers further on, where the simulator has nothing.
            with pytest.raises(DeviceError, match="exception 02"):
                await bus.read("ballast-3")
        finally:
            await bus.aclose()


async def test_dead_device_reports_failure_after_threshold_then_restored() -> None:
    async with LampSimulator(range(1, 6), LC100) as sim:
        port = await sim.serve_tcp()
        bus = make_bus(tcp_table(port, [1, 2, 3, 4, 5], failure_threshold=3))
        records = Records()
        sim.set_fault(3, "no-answer")
        async with polling(bus, records):
            await wait_for(lambda: records.events("communication_failure"), what="communication_failure")
            (failure,) = records.events("communication_failure")
            assert failure.device == "lamp-3" and failure.severity == Severity.MAJOR
            assert failure.detail["failures"] == 3 and failure.detail["kind"] == "timeout"
            assert "no reply from unit 3" in failure.detail["error"]
            state = {s.device: s for s in bus.states()}["lamp-3"]
            assert state.state == "failing" and state.consecutive_failures >= 3 and state.errors["timeout"] >= 3
            sim.set_fault(3, "none")
            await wait_for(lambda: records.events("communication_restored"), what="communication_restored")
        (restored,) = records.events("communication_restored")
        assert restored.device == "lamp-3" and restored.severity == Severity.INFO
        assert restored.detail["down_s"] > 0
        assert len(records.events("communication_failure")) == 1
        assert {s.device: s.state for s in bus.states()}["lamp-3"] == "ok"


async def test_failures_back_off_exponentially() -> None:
    async with LampSimulator([1, 2], LC100) as sim:
        port = await sim.serve_tcp()
        bus = make_bus(tcp_table(port, [1, 2], interval_s=0.2, timeout_s=0.1, retries=0, backoff_max_s=10.0))
        records = Records()
        sim.set_fault(2, "no-answer")
        async with polling(bus, records):
            await asyncio.sleep(3.3)
        # Tries at about 0, 0.2, 0.6, 1.4, 3.0 s: five, where polling every cycle would make 16.
        assert 4 <= sim.requests(2) <= 6
        assert sim.requests(1) >= 12


async def test_exception_02_is_a_config_error_not_retried_in_a_loop() -> None:
    async with LampSimulator([1, 2], LC100) as sim:
        port = await sim.serve_tcp()
        bus = make_bus(tcp_table(port, [1, 2], backoff_max_s=30.0))
        records = Records()
        sim.set_fault(2, "exception", code=0x02)
        async with polling(bus, records):
            await wait_for(lambda: len(records.samples("lamp-1")) >= 8, what="eight polls of the neighbour")
        (event,) = records.events("config_error")
        assert event.device == "lamp-2" and event.severity == Severity.MAJOR
        assert event.detail["exception_code"] == 2 and event.detail["address"] == 0 and event.detail["count"] == 12
        assert "illegal data address" in event.detail["error"]
        assert "energy_wh" in event.detail["registers"]
        assert event.detail["register_map"].endswith("lamp-lc100.toml")
        assert not records.events("communication_failure")
        assert sim.requests(2) == 1  # marked misconfigured: not asked again within backoff_max_s
        assert {s.device: s.state for s in bus.states()}["lamp-2"] == "misconfigured"


async def test_exception_04_is_retried_and_counted_as_communication_failure() -> None:
    async with LampSimulator([1], LC100) as sim:
        port = await sim.serve_tcp()
        bus = make_bus(tcp_table(port, [1], retries=2, interval_s=0.5, timeout_s=0.1))
        records = Records()
        sim.set_fault(1, "exception", code=0x04)
        async with polling(bus, records):
            await wait_for(lambda: records.events("communication_failure"), what="communication_failure")
        (event,) = records.events("communication_failure")
        assert event.detail["kind"] == "exception" and "server device failure" in event.detail["error"]
        assert not records.events("config_error")
        assert sim.requests(1) >= 3 * 3  # three polls of three tries each


async def test_slow_replies_time_out_without_feeding_neighbours_stale_data() -> None:
    async with LampSimulator(range(1, 5), LC100) as sim:
        port = await sim.serve_tcp()
        for u, level in ((1, 10), (2, 20), (3, 30), (4, 40)):
            sim.set_level(u, level)
        bus = make_bus(tcp_table(port, [1, 2, 3, 4], timeout_s=0.15))
        records = Records()
        sim.set_fault(2, "slow", delay_s=0.4)  # answers, but after the timeout
        async with polling(bus, records):
            await wait_for(lambda: records.events("communication_failure"), what="communication_failure")
            await wait_for(lambda: len(records.samples("lamp-3")) >= 10, what="neighbour polls")
        assert records.events("communication_failure")[0].device == "lamp-2"
        # Late replies from unit 2 arrive while its neighbours are being read: each neighbour
        # still gets its own registers (the transaction id tells them apart).
        for u in (1, 3, 4):
            assert {s.values["level_cmd_pct"] for s in records.samples(f"lamp-{u}")} == {u * 10}


async def test_dead_devices_do_not_delay_their_neighbours() -> None:
    # Three dead controllers each cost 3 tries x 0.25 s = 0.75 s if polled in line; with an
    # interval of 0.3 s, polling them in turn would stretch every cycle to 2.25 s.
    units = list(range(1, 21))
    dead = (4, 11, 17)
    async with LampSimulator(units, LC100) as sim:
        port = await sim.serve_tcp()
        bus = make_bus(tcp_table(port, units, interval_s=0.3, timeout_s=0.25, retries=2, backoff_max_s=1.5))
        records = Records()
        for u in dead:
            sim.set_fault(u, "no-answer")
        healthy = [u for u in units if u not in dead]
        async with loop_stalls() as stalls, polling(bus, records):
            await wait_for(lambda: all(len(records.sample_times(f"lamp-{u}")) >= 10 for u in healthy),
                           timeout=30, what="ten polls of every healthy lamp")
        # Skip the first cycle, in which each dead device is found dead by one timeout.
        all_gaps = [g for u in healthy for g in gaps(records.sample_times(f"lamp-{u}")[2:])]
        assert len(all_gaps) >= len(healthy) * 7
        assert statistics.median(all_gaps) == pytest.approx(0.3, abs=0.05)
        # a stall of the whole process (a loaded machine) delays a poll by as much, whatever the code
        bound = 0.3 + 0.25 + 0.1 + stalls.max_s
        assert max(all_gaps) < bound, f"a neighbour waited {max(all_gaps):.3f} s (stalls {stalls.max_s:.3f} s)"
        assert {e.device for e in records.events("communication_failure")} == {f"lamp-{u}" for u in dead}


async def test_lamp_failure_shows_as_fault_bit_and_power_collapse() -> None:
    async with LampSimulator([1], LC100, rated_power_w=120.0) as sim:
        port = await sim.serve_tcp()
        bus = make_bus(tcp_table(port, [1]))
        try:
            before = await bus.read("lamp-1")
            sim.set_fault(1, "lamp-failure")
            after = await bus.read("lamp-1")
        finally:
            await bus.aclose()
        assert before.values["lamp_failure"] is False and float(before.values["power_w"]) > 100
        assert after.values["lamp_failure"] is True and after.values["fault_bits"] == 1
        assert after.values["lamp_on"] is True and after.values["level_pct"] == 100
        assert float(after.values["power_w"]) < 0.1 * 120  # commanded on, draws under 10 % of rated


async def test_energy_counter_integrates_power_and_wraps_at_2_pow_32() -> None:
    # 3600 simulated seconds per second: a 100 W lamp adds 100 Wh a second.
    async with LampSimulator([1], LC100, energy_wh=2**32 - 150, speed=3600) as sim:
        port = await sim.serve_tcp()
        bus = make_bus(tcp_table(port, [1]))
        try:
            first = int((await bus.read("lamp-1")).values["energy_wh"])
            t0 = time.monotonic()
            await asyncio.sleep(2.0)
            second = int((await bus.read("lamp-1")).values["energy_wh"])
            elapsed = time.monotonic() - t0
        finally:
            await bus.aclose()
        assert first > 2**32 - 200
        assert second < first  # wrapped
        delta = (second - first) % 2**32
        assert delta == pytest.approx(100.4 * elapsed, rel=0.1)


async def test_writing_the_same_level_again_never_blinks() -> None:
    async with LampSimulator([1], LC100, level_pct=70) as sim:
        port = await sim.serve_tcp()
        bus = make_bus(tcp_table(port, [1]))
        lamp = sim.lamp(1)
        seen: list[float] = []
        original = lamp.set_level

        def spy(level: float) -> None:
            seen.append(level)
            original(level)

        lamp.set_level = spy  # type: ignore[method-assign,assignment]
        energy_before = lamp.energy_wh
        try:
            for _ in range(5):
                assert await bus.set_level("lamp-1", 70) == 70
        finally:
            await bus.aclose()
        assert seen == [70.0] * 5  # never a 0 in between
        assert lamp.lit and lamp.level_pct == 70
        assert lamp.energy_wh >= energy_before


async def test_unreachable_endpoint_fails_every_device_then_restores_them() -> None:
    sim = LampSimulator([1, 2], LC100)
    port = await sim.serve_tcp()
    bus = make_bus(tcp_table(port, [1, 2], backoff_max_s=0.6))
    records = Records()
    async with polling(bus, records):
        await wait_for(lambda: len(records.samples()) >= 4, what="first samples")
        await sim.aclose()
        await wait_for(lambda: len(records.events("communication_failure")) == 2, what="both devices failing")
        failure = records.events("communication_failure")[0]
        assert failure.detail["kind"] in ("connection", "timeout")
        sim2 = LampSimulator([1, 2], LC100)
        await sim2.serve_tcp(port=port)
        try:
            await wait_for(lambda: len(records.events("communication_restored")) == 2, what="both restored")
        finally:
            await sim2.aclose()


async def test_live_read_of_a_dead_device_raises_device_error() -> None:
    async with LampSimulator([1], LC100) as sim:
        port = await sim.serve_tcp()
        bus = make_bus(tcp_table(port, [1], timeout_s=0.1))
        sim.set_fault(1, "no-answer")
        try:
            with pytest.raises(DeviceError, match=r"lamp-1: no reply from unit 1 within 0\.1 s"):
                await bus.read("lamp-1")
            with pytest.raises(DeviceError, match="setting level 30 %"):
                await bus.set_level("lamp-1", 30)
        finally:
            await bus.aclose()
