"""A TIC meter's `report` table: a default for labels not named, quantities named over it."""

from __future__ import annotations

from typing import Any

import pytest

from drivers.errors import ConfigError
from drivers.model import Sample, Value
from drivers.reporting import EVERY, Policy, ReportsByException
from drivers.tic.bus import TicBus, parse_config

SLOT = 1_780_000_200_000 - 1_780_000_200_000 % 900_000  # the start of a quarter hour, in ms


def tic(**keys: Any) -> TicBus:
    return TicBus(parse_config({"name": "linky", "type": "tic", "port": "/dev/null", "device": "meter-1", **keys},
                               "bus[2]"))


def frame(at_s: float, **values: Value) -> Sample:
    base: dict[str, Value] = {"energy_wh": 1_000_000, "apparent_power_va": 1200, "tariff": "HP", "voltage_v": 231}
    return Sample("meter-1", SLOT + round(at_s * 1000), {**base, **values})


def test_a_meter_without_report_journals_every_sample() -> None:
    bus = tic()
    assert isinstance(bus, ReportsByException)
    assert (bus.config.report_default, dict(bus.config.report)) == (EVERY, {})
    assert not bus.reporter()  # nothing to select: the agent skips it


def test_a_meter_reports_its_counter_on_the_quarter_hour_and_its_power_and_tariff_on_change() -> None:
    bus = tic(report={
        "default": {"strategy": "period", "period_s": 900},
        "energy_wh": {"counter": True},
        "apparent_power_va": {"strategy": "change_or_period", "period_s": 900, "deadband_pct": 10},
        "tariff": "change",
    })
    assert bus.config.report["energy_wh"] == Policy("period", 900.0, counter=True)
    reporter = bus.reporter()
    assert list(reporter.select(frame(1))) == [frame(1)]  # first frame: all of it
    assert list(reporter.select(frame(3, energy_wh=1_000_001, apparent_power_va=1250))) == []
    assert list(reporter.select(frame(5, energy_wh=1_000_002, apparent_power_va=1400))) == [
        Sample("meter-1", SLOT + 5000, {"apparent_power_va": 1400})]  # beyond 10 % of 1200
    assert list(reporter.select(frame(7, energy_wh=1_000_003, apparent_power_va=1400, tariff="HC"))) == [
        Sample("meter-1", SLOT + 7000, {"tariff": "HC"})]
    quarter = frame(901, energy_wh=1_000_300, apparent_power_va=1400, tariff="HC")
    # the next quarter hour: everything with a period (the tariff reports on change only)
    assert [s.values for s in reporter.select(quarter)] == [{k: v for k, v in quarter.values.items() if k != "tariff"}]
    swapped = frame(903, energy_wh=12, apparent_power_va=1400, tariff="HC")  # a new meter, or a reset
    assert [s.values for s in reporter.select(swapped)] == [{"energy_wh": 12}]  # the reading before: sent at 901
    assert list(reporter.select(frame(905, energy_wh=20, apparent_power_va=1400, tariff="HC"))) == []
    again = reporter.select(frame(907, energy_wh=3, apparent_power_va=1400, tariff="HC"))
    assert [(s.ts_ms - SLOT, s.values) for s in again] == [(905_000, {"energy_wh": 20}), (907_000, {"energy_wh": 3})]


@pytest.mark.parametrize(("report", "key", "reason"), [
    ({"default": "period"}, "bus[2].report.default.period_s", "needs a period_s"),
    ({"energy_wh": {"strategy": "period", "period_s": 0.5}}, "bus[2].report.energy_wh.period_s", "from 1 to"),
    ({"tariff": 3}, "bus[2].report.tariff", "expected a strategy name or a table"),
    (7, "bus[2].report", "expected a strategy name or a table"),
])
def test_a_bad_meter_report_names_the_key_and_the_reason(report: Any, key: str, reason: str) -> None:
    with pytest.raises(ConfigError) as err:
        tic(report=report)
    assert err.value.key == key and reason in err.value.reason
