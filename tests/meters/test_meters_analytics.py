"""Gateway analytics on synthetic journalled records: cabinet energy balance and night-flow leaks."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from drivers.errors import ConfigError
from drivers.model import Event, Record, Sample
from edge_agent.analytics import (
    AnalyticsConfig,
    AnalyticsService,
    EnergyBalance,
    EnergyBalanceConfig,
    WaterLeakConfig,
    WaterLeakDetector,
    parse_section,
)
from edge_agent.clock import SystemClock
from edge_agent.service import AgentContext

PARIS = ZoneInfo("Europe/Paris")
T0 = int(datetime(2026, 11, 25, 18, 0, tzinfo=UTC).timestamp() * 1000)


def cabinet(
    *,
    lamps: int = 10,
    lamp_w: float = 100.0,
    unmetered_w: float = 0.0,
    hours: float = 3.0,
    lamp_period_s: int = 420,
    silent_lamp: str | None = None,
    reset_lamp_at_s: int | None = None,
) -> list[Record]:
    """Records of a cabinet: the Linky every 10 s, each lamp every `lamp_period_s`, in time order."""
    out: list[tuple[int, Record]] = []
    end_s = int(hours * 3600)
    meter_w = lamps * lamp_w + unmetered_w
    for s in range(0, end_s + 1, 10):
        out.append((s, Sample("meter", T0 + s * 1000, {"energy_wh": 5_000_000 + meter_w * s / 3600})))
    for i in range(lamps):
        name = f"lamp-{i}"
        for s in range(i * 13, end_s + 1, lamp_period_s):  # staggered polls
            if name == silent_lamp and s > 3600:
                break
            wh = 20_000 + lamp_w * s / 3600
            if name == "lamp-0" and reset_lamp_at_s is not None and s >= reset_lamp_at_s:
                wh = lamp_w * (s - reset_lamp_at_s) / 3600  # driver replaced: counter starts again
            out.append((s, Sample(name, T0 + s * 1000, {"energy_wh": wh, "power_w": lamp_w})))
    out.sort(key=lambda p: p[0])
    return [r for _, r in out]


def run_energy(cfg: EnergyBalanceConfig, records: list[Record]) -> tuple[EnergyBalance, list[Event]]:
    logic = EnergyBalance(cfg)
    events = [e for r in records for e in logic.observe(r)]
    return logic, events


CFG = EnergyBalanceConfig(tic_device="meter", tolerance_pct=5, window_s=900, grace_s=600)


def test_a_balanced_cabinet_raises_nothing_though_lamps_are_read_at_another_rhythm() -> None:
    logic, events = run_energy(CFG, cabinet(unmetered_w=20))  # 2 % unmetered (cabinet electronics)
    assert events == []
    assert logic.judged >= 10


def test_unmetered_load_is_an_energy_mismatch_with_its_figures() -> None:
    logic, events = run_energy(CFG, cabinet(unmetered_w=500))  # 1500 W metered, lamps draw 1000 W
    assert len(events) == logic.judged >= 10
    e = events[0]
    assert (e.code, e.device, e.severity) == ("energy_mismatch", "meter", "minor")
    d = e.detail
    assert d["meter_wh"] == pytest.approx(1500 * 0.25, rel=1e-3)  # 15 min windows
    assert d["lamps_wh"] == pytest.approx(1000 * 0.25, rel=1e-3)
    assert d["difference_pct"] == pytest.approx(33.3, abs=0.1) and d["lamps"] == 10
    assert d["window_end"] > d["window_start"] and e.ts_ms % 900_000 == 0


def test_a_counter_reset_never_counts_negative_energy() -> None:
    _, events = run_energy(
        EnergyBalanceConfig("meter", tolerance_pct=10, window_s=900), cabinet(reset_lamp_at_s=4000)
    )
    assert events == []  # one lamp loses at most one poll interval of energy, well within 10 %


def test_a_lamp_that_stops_reporting_is_named_after_the_grace_period() -> None:
    _, events = run_energy(CFG, cabinet(silent_lamp="lamp-3"))
    assert events
    assert all(e.detail["late_devices"] == ["lamp-3"] for e in events)
    assert events[0].detail["window_start"] >= "2026-11-25T19:00"


def test_small_consumption_is_not_judged() -> None:
    _, events = run_energy(CFG, cabinet(lamp_w=0.5, unmetered_w=5))
    assert events == []


def test_configured_lamp_list_and_windows_before_the_meter_are_skipped() -> None:
    records = cabinet(unmetered_w=0)
    only_two = EnergyBalanceConfig("meter", tolerance_pct=5, window_s=900, lamps=("lamp-0", "lamp-1"))
    logic, events = run_energy(only_two, records)
    assert events and events[0].detail["lamps"] == 2  # the other eight lamps look like unmetered load
    late_meter = [r for r in records if r.device != "meter" or r.ts_ms >= T0 + 1000 * 1000]
    logic, _ = run_energy(CFG, late_meter)
    assert logic.skipped == 2  # 0-900 s: no meter at all; 900-1800 s: meter first read at 1000 s


def volume_series(
    *,
    days: int,
    leak_m3h: float,
    day_m3h: float = 0.3,
    start: datetime,
    period_s: int = 900,
    leak_until: int | None = None,
) -> list[Record]:
    """A water meter read every `period_s`: a daytime draw (06-22 local) plus a constant leak."""
    out: list[Record] = []
    v = 100.0
    t = start
    end = start + timedelta(days=days)
    while t <= end:
        out.append(Sample("water-1", int(t.timestamp() * 1000), {"volume_m3": round(v, 3)}))
        local_h = t.astimezone(PARIS).hour
        day = day_m3h if 6 <= local_h < 22 else 0.0
        leak = leak_m3h if leak_until is None or t < start + timedelta(days=leak_until) else 0.0
        v += (day + leak) * period_s / 3600
        t += timedelta(seconds=period_s)
    return out


WCFG = WaterLeakConfig(devices=("water-1",), threshold_m3h=0.01, nights=3)
START = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


def test_a_leak_is_reported_after_n_nights_not_before() -> None:
    logic = WaterLeakDetector(WCFG)
    records = volume_series(days=5, leak_m3h=0.05, start=START)
    events = [(r.ts_ms, e) for r in records for e in logic.observe(r)]
    assert len(events) == 1
    ts, e = events[0]
    assert (e.code, e.device, e.severity) == ("water_leak", "water-1", "major")
    assert e.detail["nights"] == 3 and all(
        f == pytest.approx(0.05, abs=0.005) for f in e.detail["night_min_flows_m3h"]
    )
    # reported on the first reading after the third night (nights of the 20th, 21st and 22nd), at 05:00 local
    assert datetime.fromtimestamp(ts / 1000, PARIS).replace(tzinfo=None) == datetime(2026, 11, 23, 5, 0)


def test_no_leak_no_event_and_a_repair_clears_it() -> None:
    logic = WaterLeakDetector(WCFG)
    assert [e for r in volume_series(days=6, leak_m3h=0.0, start=START) for e in logic.observe(r)] == []
    logic = WaterLeakDetector(WCFG)
    records = volume_series(days=7, leak_m3h=0.05, start=START, leak_until=4)
    codes = [e.code for r in records for e in logic.observe(r)]
    assert codes == ["water_leak", "water_leak_cleared"]


def test_a_night_without_readings_neither_proves_nor_clears() -> None:
    logic = WaterLeakDetector(WCFG)
    records = volume_series(days=6, leak_m3h=0.05, start=START)
    gap_night = [r for r in records if logic.night_of(r.ts_ms) != datetime(2026, 11, 21).date()]
    events = [e for r in gap_night for e in logic.observe(r)]
    assert [e.code for e in events] == ["water_leak"]
    assert events[0].ts_ms > int(datetime(2026, 11, 24, 3, 0, tzinfo=UTC).timestamp() * 1000)


def test_night_window_in_local_time_across_midnight_and_dst() -> None:
    logic = WaterLeakDetector(WaterLeakConfig(("w",), 0.01, night_start_h=23, night_end_h=5))

    def at(y: int, mo: int, d: int, h: int, mi: int = 0) -> int:
        return int(datetime(y, mo, d, h, mi, tzinfo=PARIS).timestamp() * 1000)

    assert logic.night_of(at(2026, 3, 28, 23, 30)) == datetime(2026, 3, 28).date()
    assert logic.night_of(at(2026, 3, 29, 3, 30)) == datetime(2026, 3, 28).date()  # after the spring-forward
    assert logic.night_of(at(2026, 3, 29, 5, 0)) is None
    assert logic.night_of(at(2026, 3, 29, 12, 0)) is None


def test_config_validation() -> None:
    cfg = parse_section(
        {"energy": {"tic_device": "m", "tolerance_pct": 8, "window_s": 1800, "lamps": ["a", "b"]},
         "water": {"devices": ["w"], "threshold_m3h": 0.02, "nights": 2, "night_start_h": 23, "night_end_h": 4}},
        "analytics", Path("."),
    )  # fmt: skip
    assert cfg.energy == EnergyBalanceConfig("m", 8, 1800, ("a", "b"))
    assert cfg.water == WaterLeakConfig(("w",), 0.02, 2, 23, 4)
    bad: list[tuple[dict[str, Any], str]] = [
        ({"energy": {"tolerance_pct": 8}}, "analytics.energy.tic_device"),
        ({"energy": {"tic_device": "m", "lamps": "a"}}, "analytics.energy.lamps"),
        ({"energy": {"tic_device": "m", "lamps": ["m"]}}, "analytics.energy.lamps"),
        ({"energy": {"tic_device": "m", "window": 5}}, "analytics.energy.window"),
        ({"water": {"devices": ["w"]}}, "analytics.water.threshold_m3h"),
        ({"water": {"devices": [], "threshold_m3h": 1}}, "analytics.water.devices"),
        (
            {"water": {"devices": ["w"], "threshold_m3h": 1, "night_start_h": 2, "night_end_h": 2}},
            "analytics.water.night_end_h",
        ),
        (
            {"water": {"devices": ["w"], "threshold_m3h": 1, "timezone": "Mars/Olympus"}},
            "analytics.water.timezone",
        ),
        ({"fire": {}}, "analytics.fire"),
    ]
    for raw, key in bad:
        with pytest.raises(ConfigError) as e:
            parse_section(raw, "analytics", Path("."))
        assert e.value.key == key, (raw, e.value)


async def test_the_service_observes_journalled_records_and_emits_events(tmp_path: Path) -> None:
    emitted: list[Record] = []
    ctx = AgentContext(gateway_id="gw", commune="21231", state_dir=tmp_path, clock=SystemClock(), buses={},
                       emit=emitted.append)  # fmt: skip
    service = AnalyticsService(AnalyticsConfig(energy=CFG, water=WCFG))
    task = asyncio.create_task(service.run(ctx))
    await asyncio.sleep(0)
    assert len(ctx.observers) == 1
    records = cabinet(unmetered_w=500, hours=1) + volume_series(days=4, leak_m3h=0.05, start=START)
    for r in records:
        for observer in ctx.observers:
            observer(r)
    for _ in range(1000):
        if {"energy_mismatch", "water_leak"} <= {e.code for e in emitted if isinstance(e, Event)}:
            break
        await asyncio.sleep(0.01)
    n = len(emitted)
    for e in list(emitted):  # what the service emits is journalled and observed in turn: ignored
        ctx.observers[0](e)
    await asyncio.sleep(0.05)
    task.cancel()
    codes = {e.code for e in emitted if isinstance(e, Event)}
    assert codes == {"energy_mismatch", "water_leak"} and len(emitted) == n
