"""Value information tables (EN 13757-3 §6.4; m-bus.com chapter 8): what a VIF or VIFE means.

Quantity and unit names follow pyMeterBus's (ENERGY_WH / WH, VOLUME / M3 ...), so a record
decoded here compares directly with the libmbus/pyMeterBus references of the shared vectors.
Values are scaled to the unit given: `exp10` is the power of ten, `factor` converts durations to
seconds. A code with no meaning in the tables becomes quantity UNKNOWN_VIF, never an exception.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Kind(StrEnum):
    NUMBER = "number"  # a physical quantity: signed, scaled
    CODE = "code"  # an identifier or bit field: unsigned, not scaled
    DATE = "date"  # type G
    DATE_TIME = "date_time"  # type F (or I on 6 bytes)


@dataclass(frozen=True, slots=True)
class VifInfo:
    quantity: str
    unit: str
    exp10: int = 0
    factor: int = 1
    kind: Kind = Kind.NUMBER


UNKNOWN = "UNKNOWN_VIF"
_TIME_FACTORS = (1, 60, 3600, 86400)


def _code(quantity: str, unit: str = "NONE") -> VifInfo:
    return VifInfo(quantity, unit, kind=Kind.CODE)


def primary(vif: int) -> VifInfo:
    """Primary table, extension bit masked off. 0x7B..0x7F are handled by the record decoder."""
    v = vif & 0x7F
    n3, n2 = v & 0x07, v & 0x03
    if v <= 0x07:
        return VifInfo("ENERGY_WH", "WH", n3 - 3)
    if v <= 0x0F:
        return VifInfo("ENERGY_J", "J", n3)
    if v <= 0x17:
        return VifInfo("VOLUME", "M3", n3 - 6)
    if v <= 0x1F:
        return VifInfo("MASS", "KG", n3 - 3)
    if v <= 0x23:
        return VifInfo("ON_TIME", "SECONDS", factor=_TIME_FACTORS[n2])
    if v <= 0x27:
        return VifInfo("OPERATING_TIME", "SECONDS", factor=_TIME_FACTORS[n2])
    if v <= 0x2F:
        return VifInfo("POWER_W", "W", n3 - 3)
    if v <= 0x37:
        return VifInfo("POWER_J_H", "J_H", n3)
    if v <= 0x3F:
        return VifInfo("VOLUME_FLOW", "M3_H", n3 - 6)
    if v <= 0x47:
        return VifInfo("VOLUME_FLOW_EXT", "M3_MIN", n3 - 7)
    if v <= 0x4F:
        return VifInfo("VOLUME_FLOW_EXT_S", "M3_S", n3 - 9)
    if v <= 0x57:
        return VifInfo("MASS_FLOW", "KG_H", n3 - 3)
    if v <= 0x5B:
        return VifInfo("FLOW_TEMPERATURE", "C", n2 - 3)
    if v <= 0x5F:
        return VifInfo("RETURN_TEMPERATURE", "C", n2 - 3)
    if v <= 0x63:
        return VifInfo("TEMPERATURE_DIFFERENCE", "K", n2 - 3)
    if v <= 0x67:
        return VifInfo("EXTERNAL_TEMPERATURE", "C", n2 - 3)
    if v <= 0x6B:
        return VifInfo("PRESSURE", "BAR", n2 - 3)
    if v == 0x6C:
        return VifInfo("DATE", "DATE", kind=Kind.DATE)
    if v == 0x6D:
        return VifInfo("DATE_TIME_GENERAL", "DATE_TIME", kind=Kind.DATE_TIME)
    if v == 0x6E:
        return VifInfo("UNITS_FOR_HCA", "HCA")
    if 0x70 <= v <= 0x73:
        return VifInfo("AVG_DURATION", "SECONDS", factor=_TIME_FACTORS[n2])
    if 0x74 <= v <= 0x77:
        return VifInfo("ACTUALITY_DURATION", "SECONDS", factor=_TIME_FACTORS[n2])
    if v == 0x78:
        return _code("FABRICATION_NO")
    if v == 0x79:
        return _code("IDENTIFICATION")
    if v == 0x7A:
        return _code("ADDRESS")
    return _code(UNKNOWN)  # 0x6F is reserved


_FD_CODES = {
    0x08: "ACCESS_NUMBER", 0x09: "MEDIUM", 0x0A: "MANUFACTURER", 0x0B: "PARAMETER_SET_ID",
    0x0C: "MODEL_VERSION", 0x0D: "HARDWARE_VERSION", 0x0E: "FIRMWARE_VERSION", 0x0F: "SOFTWARE_VERSION",
    0x10: "CUSTOMER_LOCATION", 0x11: "CUSTOMER", 0x12: "ACCESS_CODE_USER", 0x13: "ACCESS_CODE_OPERATOR",
    0x14: "ACCESS_CODE_SYSTEM_OPERATOR", 0x15: "ACCESS_CODE_DEVELOPER", 0x16: "PASSWORD",
    0x17: "ERROR_FLAGS", 0x18: "ERROR_MASKS", 0x1A: "DIGITAL_OUTPUT", 0x1B: "DIGITAL_INPUT",
    0x1E: "RETRY", 0x20: "FIRST_STORAGE_NR", 0x21: "LAST_STORAGE_NR", 0x22: "SIZE_OF_STORAGE_BLOCK",
    0x3A: "DIMENSIONLESS", 0x60: "RESET_COUNTER", 0x61: "CUMULATION_COUNTER", 0x62: "CONTROL_SIGNAL",
    0x63: "DAY_OF_WEEK", 0x64: "WEEK_NUMBER", 0x65: "TIME_POINT_OF_DAY_CHANGE",
    0x66: "STATE_OF_PARAMETER_ACTIVATION", 0x67: "SPECIAL_SUPPLIER_INFORMATION",
}  # fmt: skip
# 0xFD 0x68..0x6F: pp = hours, days, months, years
_PP_UNITS = (("SECONDS", 3600), ("SECONDS", 86400), ("MONTHS", 1), ("YEARS", 1))


def extension_fd(code: int) -> VifInfo:
    """Second table (VIF 0xFD / 0x7D), extension bit masked off."""
    v = code & 0x7F
    if v <= 0x03:
        return VifInfo("CURRENCY_CREDIT", "CURRENCY", (v & 3) - 3)
    if v <= 0x07:
        return VifInfo("CURRENCY_DEBIT", "CURRENCY", (v & 3) - 3)
    if v in _FD_CODES:
        return _code(_FD_CODES[v])
    if v == 0x1C:
        return VifInfo("BAUDRATE", "BAUD")
    if v == 0x1D:
        return VifInfo("RESPONSE_DELAY", "BIT_TIMES")
    if 0x24 <= v <= 0x27:
        return VifInfo("STORAGE_INTERVAL", "SECONDS", factor=_TIME_FACTORS[v & 3])
    if v == 0x28:
        return VifInfo("STORAGE_INTERVAL_MONTH", "MONTHS")
    if v == 0x29:
        return VifInfo("STORAGE_INTERVAL_YEARS", "YEARS")
    if 0x2C <= v <= 0x2F:
        return VifInfo("DURATION_SINCE_LAST_READOUT", "SECONDS", factor=_TIME_FACTORS[v & 3])
    if v == 0x30:
        return VifInfo("START_OF_TARIFF", "DATE_TIME", kind=Kind.DATE_TIME)
    if 0x31 <= v <= 0x33:
        return VifInfo("DURATION_OF_TARIFF", "SECONDS", factor=_TIME_FACTORS[v & 3])
    if 0x34 <= v <= 0x37:
        return VifInfo("PERIOD_OF_TARIFF", "SECONDS", factor=_TIME_FACTORS[v & 3])
    if v == 0x38:
        return VifInfo("PERIOD_OF_TARIFF_MONTH", "MONTHS")
    if v == 0x39:
        return VifInfo("PERIOD_OF_TARIFF_YEARS", "YEARS")
    if 0x40 <= v <= 0x4F:
        return VifInfo("VOLTS", "V", (v & 0x0F) - 9)
    if 0x50 <= v <= 0x5F:
        return VifInfo("AMPERE", "A", (v & 0x0F) - 12)
    if 0x68 <= v <= 0x6F:
        unit, factor = _PP_UNITS[v & 3]
        name = "DURATION_SINCE_LAST_CUMULATION" if v <= 0x6B else "OPERATING_TIME_BATTERY"
        return VifInfo(name, unit, factor=factor)
    if v == 0x70:
        return VifInfo("DATE_TIME_OF_BATTERY_CHANGE", "DATE_TIME", kind=Kind.DATE_TIME)
    if v == 0x71:
        return VifInfo("RSSI", "DBM")
    return _code(UNKNOWN)


def extension_fb(code: int) -> VifInfo:
    """First table (VIF 0xFB / 0x7B): large units, scaled here to the primary table's units."""
    v = code & 0x7F
    n1 = v & 0x01
    if v <= 0x01:
        return VifInfo("ENERGY_WH", "WH", n1 + 5)  # 10^(n-1) MWh
    if 0x08 <= v <= 0x09:
        return VifInfo("ENERGY_J", "J", n1 + 8)  # 10^(n-1) GJ
    if 0x10 <= v <= 0x11:
        return VifInfo("VOLUME", "M3", n1 + 2)
    if 0x18 <= v <= 0x19:
        return VifInfo("MASS", "KG", n1 + 5)  # 10^(n+2) t
    if 0x28 <= v <= 0x29:
        return VifInfo("POWER_W", "W", n1 + 5)  # 10^(n-1) MW
    if 0x30 <= v <= 0x31:
        return VifInfo("POWER_J_H", "J_H", n1 + 8)  # 10^(n-1) GJ/h
    if 0x58 <= v <= 0x5B:
        return VifInfo("FLOW_TEMPERATURE_F", "F", (v & 3) - 3)
    if 0x5C <= v <= 0x5F:
        return VifInfo("RETURN_TEMPERATURE_F", "F", (v & 3) - 3)
    if 0x60 <= v <= 0x63:
        return VifInfo("TEMPERATURE_DIFFERENCE_F", "F", (v & 3) - 3)
    if 0x64 <= v <= 0x67:
        return VifInfo("EXTERNAL_TEMPERATURE_F", "F", (v & 3) - 3)
    if 0x74 <= v <= 0x77:
        return VifInfo("TEMPERATURE_LIMIT", "C", (v & 3) - 3)
    if 0x78 <= v <= 0x7F:
        return VifInfo("CUMULATIVE_MAX_POWER", "W", (v & 7) - 3)
    return _code(UNKNOWN)


_VIFE_NAMES = {
    0x20: "PER_SECOND", 0x21: "PER_MINUTE", 0x22: "PER_HOUR", 0x23: "PER_DAY", 0x24: "PER_WEEK",
    0x25: "PER_MONTH", 0x26: "PER_YEAR", 0x27: "PER_REVOLUTION", 0x28: "PER_INPUT_PULSE_0",
    0x29: "PER_INPUT_PULSE_1", 0x2A: "PER_OUTPUT_PULSE_0", 0x2B: "PER_OUTPUT_PULSE_1",
    0x2C: "PER_LITRE", 0x2D: "PER_M3", 0x2E: "PER_KG", 0x2F: "PER_KELVIN", 0x30: "PER_KWH",
    0x31: "PER_GJ", 0x32: "PER_KW", 0x33: "PER_KELVIN_LITRE", 0x34: "PER_VOLT", 0x35: "PER_AMPERE",
    0x36: "MULTIPLIED_BY_S", 0x37: "MULTIPLIED_BY_S_PER_V", 0x38: "MULTIPLIED_BY_S_PER_A",
    0x39: "START_DATE_TIME_OF", 0x3A: "UNCORRECTED", 0x3B: "ACCUMULATION_IF_POSITIVE",
    0x3C: "ACCUMULATION_IF_NEGATIVE", 0x40: "LOWER_LIMIT", 0x48: "UPPER_LIMIT",
    0x41: "EXCEEDS_LOWER_LIMIT_COUNT", 0x49: "EXCEEDS_UPPER_LIMIT_COUNT",
    0x7E: "FUTURE_VALUE", 0x7F: "MANUFACTURER_SPECIFIC_VIFE",
}  # fmt: skip


def combinable(vife: int) -> tuple[str, int]:
    """Name of an orthogonal VIFE and the power of ten it multiplies the value by (0 for most)."""
    v = vife & 0x7F
    if 0x70 <= v <= 0x77:
        return "MULTIPLICATIVE_CORRECTION", (v & 7) - 6
    if v == 0x7D:
        return "MULTIPLICATIVE_CORRECTION", 3
    if 0x78 <= v <= 0x7B:
        # an offset of 10^(nn-3) units is declared, not applied: reported for the reader to judge
        return f"ADDITIVE_CORRECTION_E{(v & 3) - 3}", 0
    if v <= 0x1F:
        return f"RECORD_ERROR_{v}", 0
    return _VIFE_NAMES.get(v, f"VIFE_0x{v:02X}"), 0


MEDIUM = {
    0x00: "other", 0x01: "oil", 0x02: "electricity", 0x03: "gas", 0x04: "heat_outlet", 0x05: "steam",
    0x06: "warm_water", 0x07: "water", 0x08: "heat_cost_allocator", 0x09: "compressed_air",
    0x0A: "cooling_outlet", 0x0B: "cooling_inlet", 0x0C: "heat_inlet", 0x0D: "heat_cooling",
    0x0E: "bus_system", 0x0F: "unknown", 0x15: "hot_water", 0x16: "cold_water", 0x17: "dual_water",
    0x18: "pressure", 0x19: "ad_converter",
}  # fmt: skip
