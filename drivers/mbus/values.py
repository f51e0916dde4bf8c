"""Sample values of an M-Bus read: the meter's current readings under the shared quantity names and units."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeGuard

from drivers.mbus.records import EXACT_FLOAT_LIMIT, FixedData, Record, Response, VariableData
from drivers.mbus.vif import UNKNOWN, medium_name
from drivers.model import Value

# record quantity -> (sample quantity, factor to the sample's unit)
QUANTITIES: dict[str, tuple[str, float]] = {
    "VOLUME": ("volume_m3", 1),
    "VOLUME_FLOW": ("flow_m3h", 1),
    "VOLUME_FLOW_EXT": ("flow_m3h", 60),  # m3/min
    "VOLUME_FLOW_EXT_S": ("flow_m3h", 3600),  # m3/s
    "ENERGY_WH": ("energy_wh", 1),
    "ENERGY_J": ("energy_wh", 1 / 3600),
    "POWER_W": ("power_w", 1),
    "POWER_J_H": ("power_w", 1 / 3600),
    "MASS": ("mass_kg", 1),
    "MASS_FLOW": ("mass_flow_kgh", 1),
    "FLOW_TEMPERATURE": ("flow_temperature_c", 1),
    "RETURN_TEMPERATURE": ("return_temperature_c", 1),
    "EXTERNAL_TEMPERATURE": ("external_temperature_c", 1),
    "TEMPERATURE_DIFFERENCE": ("temperature_difference_k", 1),
    "PRESSURE": ("pressure_bar", 1),
    "ON_TIME": ("on_time_s", 1),
    "OPERATING_TIME": ("operating_time_s", 1),
    "VOLTS": ("voltage_v", 1),
    "AMPERE": ("current_a", 1),
    "ERROR_FLAGS": ("error_flags", 1),
    "RELATIVE_HUMIDITY": ("humidity_pct", 1),
}
_TEXT = {"DATE_TIME_GENERAL": "meter_time", "FABRICATION_NO": "fabrication_no"}


def _current(r: Record) -> bool:
    """An instantaneous reading of the meter itself, now: not a stored, per-tariff, sub-unit or limit value."""
    extra = [n for n in r.vife_names if n != "MULTIPLICATIVE_CORRECTION"]
    return (
        r.function == "INSTANTANEOUS_VALUE"
        and r.storage == 0
        and r.tariff == 0
        and r.subunit == 0
        and not extra
        and r.value is not None
        and not r.manufacturer_specific
    )


def _sample_number(v: object) -> TypeGuard[int | float]:
    """A number a sample can carry exactly: beyond 2^53 (or a Decimal) no JSON reader keeps it."""
    if isinstance(v, bool) or not isinstance(v, int | float):
        return False
    return abs(v) <= EXACT_FLOAT_LIMIT


def meter_values(responses: Sequence[Response]) -> tuple[dict[str, Value], int]:
    """Values of one read (all its telegrams), and how many records had a VIF the tables do not know."""
    values: dict[str, Value] = {}
    unknown = 0
    for resp in responses:
        data = resp.data
        if isinstance(data, VariableData) and data.header is not None and "meter_id" not in values:
            h = data.header
            values.update(meter_id=h.id, manufacturer=h.manufacturer, medium=medium_name(h.medium), meter_status=h.status)
        elif isinstance(data, FixedData) and "meter_id" not in values:
            values.update(meter_id=data.id, medium=data.medium, meter_status=data.status)
        if not isinstance(data, VariableData | FixedData):
            continue
        for r in data.records:
            if r.quantity == UNKNOWN:
                unknown += 1
                continue
            if not _current(r):
                continue
            if r.quantity in QUANTITIES:
                name, factor = QUANTITIES[r.quantity]
                v = r.value
                if name not in values and _sample_number(v):
                    values[name] = v if factor == 1 else v * factor
            elif r.quantity in _TEXT and _TEXT[r.quantity] not in values:
                values[_TEXT[r.quantity]] = str(r.value)
    return values, unknown
