"""TIC bus end to end: the simulated Linky writes real frames into a pty, the real driver reads them through pyserial."""

from __future__ import annotations

import itertools
import time
from pathlib import Path

import pytest
from meters_testkit import running, until

from drivers.base import Bus, BusContext
from drivers.errors import ConfigError, DeviceError
from drivers.model import Event, Record, Sample
from drivers.registry import make_bus
from drivers.tic.bus import TicBus, parse_config
from drivers.tic.codec import Mode
from simulators.tic_meter import TicMeter

CTX = BusContext(key="bus[0]", config_dir=Path("."))


def _config(port: str, **over: object) -> dict[str, object]:
    # A pty refuses 7E1: the tests read the line at 8N1, as the brief allows (parity is configurable).
    cfg: dict[str, object] = {"name": "linky", "type": "tic", "port": port, "mode": "historic", "parity": "N",
                              "bytesize": 8, "device": "cab-1-meter", "sample_interval_s": 0.0, "silent_after_s": 5}  # fmt: skip
    cfg.update(over)
    return cfg


def samples(records: list[Record]) -> list[Sample]:
    return [r for r in records if isinstance(r, Sample)]


def events(records: list[Record], code: str) -> list[Event]:
    return [r for r in records if isinstance(r, Event) and r.code == code]


async def test_historic_meter_energy_follows_the_cabinet_load() -> None:
    load = {"w": 3600.0}
    async with TicMeter(
        mode=Mode.HISTORIC, load_w=lambda: load["w"], period_s=0.05, energy_wh=1000.0
    ) as meter:
        bus = make_bus(_config(meter.port), CTX)
        assert isinstance(bus, TicBus) and isinstance(bus, Bus)
        async with running(bus) as records:
            await until(lambda: len(samples(records)) >= 3)
            first = samples(records)[0]
            t0 = time.monotonic()
            await until(lambda: time.monotonic() - t0 > 1.5 and len(samples(records)) > 10)
            last = samples(records)[-1]
    v0, v1 = first.values, last.values
    assert v0["meter_id"] == "021861348497" and v0["tariff"] == "TH"
    assert v1["apparent_power_va"] == round(3600 / 0.95, -1) and v1["current_a"] in (
        16,
        17,
    )  # 3789 VA at 230 V ± 3
    # 3600 W is 1 Wh a second: the index grows with the elapsed time between the two samples
    elapsed_s = (last.ts_ms - first.ts_ms) / 1000
    grown = int(v1["energy_wh"]) - int(v0["energy_wh"])  # type: ignore[arg-type]
    assert abs(grown - elapsed_s) <= 2, (grown, elapsed_s)
    assert int(v1["energy_base_wh"]) == int(v1["energy_wh"])  # type: ignore[arg-type]
    assert [s.device for s in samples(records)] == ["cab-1-meter"] * len(samples(records))
    assert bus.states()[0].state == "ok" and not bus.states()[0].errors


async def test_standard_mode_through_noise_corruption_and_eot() -> None:
    meter = TicMeter(mode=Mode.STANDARD, option="HC", period_s=0.03, corrupt_rate=0.1, noise_rate=0.3,
                     abort_rate=0.1, seed=7)  # fmt: skip
    async with meter:
        bus = make_bus(_config(meter.port, mode="standard"), CTX)
        async with running(bus) as records:
            await until(lambda: len(samples(records)) >= 40 and meter.corrupted_groups >= 5)
    got = samples(records)
    for s in got:
        v = s.values
        assert v.get("meter_id", "021861348497") == "021861348497"  # a corrupted ADSC never gets through
        assert v.get("tariff") in (None, "HEURE CREUSE", "HEURE PLEINE")
        assert v.get("voltage_v") is None or 227 <= v["voltage_v"] <= 233  # type: ignore[operator]
    energies = [int(s.values["energy_wh"]) for s in got if "energy_wh" in s.values]  # type: ignore[arg-type]
    assert energies == sorted(energies) and energies
    errors = bus.states()[0].errors
    assert 0 < errors["tic_checksum_errors"] <= meter.corrupted_groups
    assert errors.get("tic_aborted_frames", 0) >= 1
    full = [s for s in got if "stge" in s.values]
    assert full and full[-1].values["breaking_device"] == "closed"
    assert any(s.values.get("meter_time") for s in got)


async def test_sample_interval_limits_the_rate() -> None:
    async with TicMeter(period_s=0.02) as meter:
        bus = make_bus(_config(meter.port, sample_interval_s=0.5), CTX)
        async with running(bus) as records:
            await until(lambda: meter.frames_sent >= 60)
            await until(lambda: len(samples(records)) >= 2)
            n_frames = meter.frames_sent
    ts = [s.ts_ms for s in samples(records)]
    assert len(ts) < n_frames / 5
    assert all(b - a >= 450 for a, b in itertools.pairwise(ts))


async def test_silence_is_a_communication_failure_and_frames_restore_it() -> None:
    meter = TicMeter(period_s=0.05, corrupt_rate=1.0, seed=1)
    async with meter:
        bus = make_bus(_config(meter.port, silent_after_s=1.5), CTX)
        async with running(bus) as records:
            await until(lambda: bool(events(records, "communication_failure")))
            assert not samples(records) and bus.states()[0].state == "failing"
            assert bus.states()[0].errors["tic_checksum_errors"] > 0
            meter.corrupt_rate = 0.0
            await until(lambda: bool(events(records, "communication_restored")))
            await until(lambda: bool(samples(records)))
    fail = events(records, "communication_failure")[0]
    assert fail.device == "cab-1-meter" and "no valid frame" in fail.detail["reason"]
    assert len(events(records, "communication_failure")) == 1
    assert bus.states()[0].state == "ok"


async def test_7e1_on_a_pty_is_refused_with_a_clear_event() -> None:
    async with TicMeter(period_s=0.05) as meter:
        bus = make_bus(_config(meter.port, parity="E", bytesize=7), CTX)
        async with running(bus) as records:
            await until(lambda: bool(events(records, "communication_failure")))
    reason = events(records, "communication_failure")[0].detail["reason"]
    assert "7E1" in reason and "refused" in reason


async def test_read_returns_the_next_frame_with_or_without_the_poller() -> None:
    async with TicMeter(period_s=0.05) as meter:
        bus = make_bus(_config(meter.port, sample_interval_s=60), CTX)
        alone = await bus.read("cab-1-meter")
        assert alone.values["meter_id"] == "021861348497"
        async with running(bus):
            live = await bus.read("cab-1-meter")
        assert live.ts_ms >= alone.ts_ms
        with pytest.raises(DeviceError, match="not on TIC bus"):
            await bus.read("other")
    bus = make_bus(_config("/nonexistent/tty"), CTX)
    with pytest.raises(DeviceError, match="nonexistent"):
        await bus.read("cab-1-meter")


def test_config_defaults_and_refusals() -> None:
    c = parse_config({"name": "m", "type": "tic", "port": "/dev/ttyS0", "mode": "standard"}, "bus[1]")
    assert (c.line.baudrate, c.line.parity, c.line.bytesize, c.line.stopbits, c.device, c.sample_interval_s) == (
        9600,
        "E",
        7,
        1,
        "m",
        10.0,
    )
    assert parse_config({"name": "m", "port": "/dev/ttyS0"}, "bus[1]").line.baudrate == 1200
    with pytest.raises(ConfigError) as e:
        parse_config({"name": "m", "port": "p", "baud": 1200}, "bus[1]")
    assert e.value.key == "bus[1].baud"
    with pytest.raises(ConfigError, match="historic"):
        parse_config({"name": "m", "port": "p", "mode": "fast"}, "bus[1]")
    with pytest.raises(ConfigError) as e:
        parse_config({"name": "m", "port": "p", "parity": "X"}, "bus[1]")
    assert e.value.key == "bus[1].parity"
    with pytest.raises(ConfigError) as e:
        parse_config({"name": "m"}, "bus[1]")
    assert e.value.key == "bus[1].port"


@pytest.mark.parametrize("mode", ["historic", "standard"])
async def test_three_phase_meter_samples_carry_every_phase(mode: str) -> None:
    async with TicMeter(mode=Mode(mode), phases=3, load_w=2850.0, period_s=0.05) as meter:
        bus = make_bus(_config(meter.port, mode=mode), CTX)
        async with running(bus) as records:
            await until(lambda: len(samples(records)) >= 2)
    v = samples(records)[-1].values
    assert bus.states()[0].errors == {}  # no group refused: SMAXSN1-1 ... SMAXSN3-1 included
    assert v["apparent_power_va"] == 3000  # 2850 W at cos phi 0.95
    assert v["meter_id"] == "021861348497" and "current_a" not in v
    if mode == "historic":
        # 1000 VA a phase at about 230 V
        assert [v[f"current_l{n}_a"] for n in (1, 2, 3)] == [4, 4, 4]
        assert (v["max_current_l1_a"], v["max_power_w"], v["phase_l2_present"]) == (60, 3600, True)
    else:
        assert [v[f"apparent_power_l{n}_va"] for n in (1, 2, 3)] == [1000, 1000, 1000]
        assert v["max_apparent_power_yesterday_l3_va"] == 1100 and v["max_apparent_power_yesterday_l3_time"]
        assert 227 <= v["mean_voltage_l2_v"] <= 233 and 227 <= v["voltage_l1_v"] <= 233  # type: ignore[operator]
