"""M-Bus master end to end: the simulated water meter answers on a pty, the real master reads it through pyserial."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from meters_testkit import running, until

from drivers.base import Bus, BusContext
from drivers.errors import ConfigError, DeviceError
from drivers.mbus.bus import MbusBus, parse_config
from drivers.mbus.frame import LongFrame, ShortFrame
from drivers.model import Event, Sample
from drivers.registry import make_bus
from simulators.mbus_meter import MbusWaterMeter

CTX = BusContext(key="bus[1]", config_dir=Path("."))


def _config(port: str, devices: list[dict[str, object]] | None = None, **over: object) -> dict[str, object]:
    # A pty refuses even parity: the tests use 8N1 (parity is configurable, 8E1 by default).
    cfg: dict[str, object] = {"name": "mbus0", "type": "mbus", "port": port, "parity": "N", "timeout_s": 2.0,
                              "retries": 2, "interval_s": 0.2,
                              "device": devices or [{"id": "water-1", "primary": 1}]}  # fmt: skip
    cfg.update(over)
    return cfg


def _codes(meter: MbusWaterMeter) -> list[tuple[int, int]]:
    return [(t.c, t.a) for t in meter.requests if isinstance(t, ShortFrame)]


async def test_primary_read_gives_the_water_index_in_m3() -> None:
    async with MbusWaterMeter(primary=7, volume_m3=1234.567, leak_m3h=0.05, day_flow_m3h=0.0) as meter:
        bus = make_bus(_config(meter.port, [{"id": "water-1", "primary": 7}]), CTX)
        assert isinstance(bus, MbusBus) and isinstance(bus, Bus)
        s = await bus.read("water-1")
        assert _codes(meter) == [(0x40, 7), (0x5B, 7)]  # SND_NKE, then REQ_UD2 with FCB 0
        s2 = await bus.read("water-1")
    assert s.device == "water-1"
    assert s.values["volume_m3"] == pytest.approx(1234.567, abs=0.002)
    assert s.values["flow_m3h"] == 0.05
    assert (s.values["meter_id"], s.values["manufacturer"], s.values["medium"]) == (
        "00182007",
        "GWF",
        "water",
    )
    assert s.values["fabrication_no"] == "182007" and "meter_time" in s.values
    assert s2.values["volume_m3"] >= s.values["volume_m3"]  # type: ignore[operator]
    assert bus.states()[0].state == "ok"


async def test_multi_telegram_read_toggles_the_fcb() -> None:
    async with MbusWaterMeter(telegrams=2, leak_m3h=0.2) as meter:
        bus = make_bus(_config(meter.port), CTX)
        s = await bus.read("water-1")
        assert _codes(meter) == [(0x40, 1), (0x5B, 1), (0x7B, 1)]
    assert "volume_m3" in s.values and s.values["flow_m3h"] == pytest.approx(
        meter.flow_m3h()
    )  # leak + day draw by hour


async def test_secondary_addressing_selects_then_reads_253() -> None:
    async with MbusWaterMeter(primary=3, secondary="12345678") as meter:
        bus = make_bus(_config(meter.port, [{"id": "w", "secondary": "12345678"}]), CTX)
        s = await bus.read("w")
        selects = [t for t in meter.requests if isinstance(t, LongFrame)]
        assert [(t.c, t.a, t.ci, t.data.hex()) for t in selects] == [(0x53, 253, 0x52, "78563412ffffffff")]
        assert _codes(meter) == [(0x5B, 253)]
        await bus.read("w")
        assert _codes(meter) == [(0x5B, 253), (0x5B, 253)]  # a new selection starts a new exchange
    assert s.values["meter_id"] == "12345678"


async def test_a_lost_reply_is_repeated_with_the_same_fcb_and_a_bad_checksum_is_retried() -> None:
    async with MbusWaterMeter(telegrams=2) as meter:
        bus = make_bus(_config(meter.port, timeout_s=1.0), CTX)
        await bus.read("water-1")
        meter.requests.clear()
        meter.drop_replies(1)  # the E5 of SND_NKE
        meter.drop_telegrams(1)  # then the first telegram: its request is repeated, FCB unchanged
        s = await bus.read("water-1")
        assert _codes(meter) == [(0x40, 1), (0x40, 1), (0x5B, 1), (0x5B, 1), (0x7B, 1)]
        meter.requests.clear()
        meter.corrupt_replies(1)  # the E5 has no checksum: the first telegram is spoiled
        await bus.read("water-1")
        assert _codes(meter) == [(0x40, 1), (0x5B, 1), (0x5B, 1), (0x7B, 1)]
    assert "volume_m3" in s.values
    errors = bus.states()[0].errors
    assert errors["timeout"] >= 3 and errors["frame"] >= 1


async def test_a_dead_meter_is_a_communication_failure_then_restored() -> None:
    async with MbusWaterMeter() as meter:
        bus = make_bus(_config(meter.port, [{"id": "water-1", "primary": 1}, {"id": "ghost", "primary": 9}],
                               timeout_s=0.6, retries=1, interval_s=0.1), CTX)  # fmt: skip
        async with running(bus) as records:
            await until(lambda: any(isinstance(r, Event) and r.device == "ghost" for r in records))
            await until(lambda: sum(isinstance(r, Sample) for r in records) >= 2)
            meter.drop_replies(10_000)
            await until(lambda: any(isinstance(r, Event) and r.device == "water-1" for r in records))
            meter.drop_replies(-meter._drop)
            await until(
                lambda: any(isinstance(r, Event) and r.code == "communication_restored" for r in records)
            )
    fails = [r for r in records if isinstance(r, Event) and r.code == "communication_failure"]
    assert {e.device for e in fails} == {"ghost", "water-1"}
    assert len([e for e in fails if e.device == "ghost"]) == 1  # reported once, not at every poll
    ghost = next(e for e in fails if e.device == "ghost")
    assert ghost.detail["address"] == "primary:9" and "no reply" in ghost.detail["reason"]
    states = {s.device: s for s in bus.states()}
    assert states["ghost"].state == "failing" and states["ghost"].consecutive_failures >= 1
    assert states["water-1"].state == "ok"


async def test_wrong_meter_and_missing_port() -> None:
    async with MbusWaterMeter(secondary="11111111") as meter:
        bus = make_bus(
            _config(meter.port, [{"id": "w", "secondary": "22222222"}], timeout_s=0.3, retries=0), CTX
        )
        with pytest.raises(DeviceError, match="no reply"):
            await bus.read("w")
        with pytest.raises(DeviceError, match="not on M-Bus"):
            await bus.read("nope")
    bus = make_bus(_config("/nonexistent/tty"), CTX)
    with pytest.raises(DeviceError, match="nonexistent"):
        await bus.read("water-1")


def test_config_refusals() -> None:
    base = {"name": "m", "port": "/dev/ttyUSB1"}
    c = parse_config(
        {**base, "device": [{"id": "a", "primary": 1}, {"id": "b", "secondary": "00182007"}]}, "bus[2]"
    )
    assert (c.line.baudrate, c.line.parity, c.line.bytesize, c.retries) == (2400, "E", 8, 2)
    assert [d.address for d in c.devices] == ["primary:1", "secondary:00182007"]
    cases: list[tuple[dict[str, Any], str]] = [
        ({**base}, "bus[2].device"),
        ({**base, "device": [{"id": "a"}]}, "bus[2].device[0]"),
        ({**base, "device": [{"id": "a", "primary": 1, "secondary": "00182007"}]}, "bus[2].device[0]"),
        ({**base, "device": [{"id": "a", "primary": 251}]}, "bus[2].device[0].primary"),
        ({**base, "device": [{"id": "a", "secondary": "0018200X"}]}, "bus[2].device[0].secondary"),
        ({**base, "device": [{"id": "a", "primary": 1, "leak": 1}]}, "bus[2].device[0].leak"),
        ({**base, "device": [{"id": "a", "primary": 1}, {"id": "a", "primary": 2}]}, "bus[2].device[1]"),
        ({**base, "device": [{"id": "a", "primary": 1}, {"id": "b", "primary": 1}]}, "bus[2].device[1]"),
        ({**base, "device": [{"id": "a", "primary": 1}], "speed": 1}, "bus[2].speed"),
    ]
    for raw, key in cases:
        with pytest.raises(ConfigError) as e:
            parse_config(raw, "bus[2]")
        assert e.value.key == key, (raw, e.value)


async def test_an_application_error_is_a_failed_read_naming_the_error_and_the_next_read_works() -> None:
    async with MbusWaterMeter(primary=3) as meter:
        bus = make_bus(_config(meter.port, [{"id": "water-1", "primary": 3}]), CTX)
        meter.application_errors(0x08)  # EN 13757-3 CI 0x70, code 08: application busy
        with pytest.raises(DeviceError, match=r"application error 0x08 \(application busy\)"):
            await bus.read("water-1")
        s = await bus.read("water-1")
    assert "volume_m3" in s.values


async def test_an_rsp_ud_without_data_is_a_failed_read_that_says_so() -> None:
    async with MbusWaterMeter(primary=4) as meter:
        bus = make_bus(_config(meter.port, [{"id": "water-1", "primary": 4}]), CTX)
        meter.no_data()  # 68 03 03 68 08 04 72 CS 16
        with pytest.raises(DeviceError, match="no data"):
            await bus.read("water-1")
        assert "volume_m3" in (await bus.read("water-1")).values
