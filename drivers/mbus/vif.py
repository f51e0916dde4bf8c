"""Value information tables (EN 13757-3:2013: primary VIFs, the FB and FD extensions, combinable
VIFEs; EN 13757-7 device types; m-bus.com chapter 8): what a VIF or VIFE means.

Quantity and unit names follow pyMeterBus's (ENERGY_WH / WH, VOLUME / M3 ...), so a record
decoded here compares directly with the libmbus/pyMeterBus references of the shared vectors.
Values are scaled to the unit given: `exp10` is the power of ten, `factor` converts durations to
seconds. A code with no meaning in the tables becomes quantity UNKNOWN_VIF, never an exception.
"""

from __future__ import annotations

from collections.abc import Callable
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


# A table is a tuple of rules (first code, last code, what a code in that range means), searched in order.
_Rule = tuple[int, int, Callable[[int], VifInfo]]


def _look_up(rules: tuple[_Rule, ...], v: int) -> VifInfo:
    for lo, hi, make in rules:
        if lo <= v <= hi:
            return make(v)
    return _code(UNKNOWN)


def _scaled(quantity: str, unit: str, mask: int, offset: int) -> Callable[[int], VifInfo]:
    """The code's low bits (`mask`) plus `offset` are the power of ten."""
    return lambda v: VifInfo(quantity, unit, (v & mask) + offset)


def _timed(quantity: str) -> Callable[[int], VifInfo]:
    """The code's two low bits say seconds, minutes, hours or days."""
    return lambda v: VifInfo(quantity, "SECONDS", factor=_TIME_FACTORS[v & 3])


def _fixed(info: VifInfo) -> Callable[[int], VifInfo]:
    return lambda v: info


_PRIMARY: tuple[_Rule, ...] = (
    (0x00, 0x07, _scaled("ENERGY_WH", "WH", 7, -3)),
    (0x08, 0x0F, _scaled("ENERGY_J", "J", 7, 0)),
    (0x10, 0x17, _scaled("VOLUME", "M3", 7, -6)),
    (0x18, 0x1F, _scaled("MASS", "KG", 7, -3)),
    (0x20, 0x23, _timed("ON_TIME")),
    (0x24, 0x27, _timed("OPERATING_TIME")),
    (0x28, 0x2F, _scaled("POWER_W", "W", 7, -3)),
    (0x30, 0x37, _scaled("POWER_J_H", "J_H", 7, 0)),
    (0x38, 0x3F, _scaled("VOLUME_FLOW", "M3_H", 7, -6)),
    (0x40, 0x47, _scaled("VOLUME_FLOW_EXT", "M3_MIN", 7, -7)),
    (0x48, 0x4F, _scaled("VOLUME_FLOW_EXT_S", "M3_S", 7, -9)),
    (0x50, 0x57, _scaled("MASS_FLOW", "KG_H", 7, -3)),
    (0x58, 0x5B, _scaled("FLOW_TEMPERATURE", "C", 3, -3)),
    (0x5C, 0x5F, _scaled("RETURN_TEMPERATURE", "C", 3, -3)),
    (0x60, 0x63, _scaled("TEMPERATURE_DIFFERENCE", "K", 3, -3)),
    (0x64, 0x67, _scaled("EXTERNAL_TEMPERATURE", "C", 3, -3)),
    (0x68, 0x6B, _scaled("PRESSURE", "BAR", 3, -3)),
    (0x6C, 0x6C, _fixed(VifInfo("DATE", "DATE", kind=Kind.DATE))),
    (0x6D, 0x6D, _fixed(VifInfo("DATE_TIME_GENERAL", "DATE_TIME", kind=Kind.DATE_TIME))),
    (0x6E, 0x6E, _fixed(VifInfo("UNITS_FOR_HCA", "HCA"))),
    # 0x6F is reserved
    (0x70, 0x73, _timed("AVG_DURATION")),
    (0x74, 0x77, _timed("ACTUALITY_DURATION")),
    (0x78, 0x78, _fixed(_code("FABRICATION_NO"))),
    (0x79, 0x79, _fixed(_code("IDENTIFICATION"))),
    (0x7A, 0x7A, _fixed(_code("ADDRESS"))),
)


def primary(vif: int) -> VifInfo:
    """Primary table, extension bit masked off. 0x7B..0x7F are handled by the record decoder."""
    return _look_up(_PRIMARY, vif & 0x7F)


_FD_CODES = {
    0x08: "ACCESS_NUMBER", 0x09: "MEDIUM", 0x0A: "MANUFACTURER", 0x0B: "PARAMETER_SET_ID",
    0x0C: "MODEL_VERSION", 0x0D: "HARDWARE_VERSION", 0x0E: "FIRMWARE_VERSION", 0x0F: "SOFTWARE_VERSION",
    0x10: "CUSTOMER_LOCATION", 0x11: "CUSTOMER", 0x12: "ACCESS_CODE_USER", 0x13: "ACCESS_CODE_OPERATOR",
    0x14: "ACCESS_CODE_SYSTEM_OPERATOR", 0x15: "ACCESS_CODE_DEVELOPER", 0x16: "PASSWORD",
    0x17: "ERROR_FLAGS", 0x18: "ERROR_MASKS", 0x19: "SECURITY_KEY", 0x1A: "DIGITAL_OUTPUT", 0x1B: "DIGITAL_INPUT",
    0x1E: "RETRY", 0x1F: "REMOTE_CONTROL", 0x20: "FIRST_STORAGE_NR", 0x21: "LAST_STORAGE_NR",
    0x22: "SIZE_OF_STORAGE_BLOCK", 0x23: "DESCRIPTOR_TARIFF_SUBUNIT", 0x2A: "OPERATOR_SPECIFIC_DATA",
    0x3A: "DIMENSIONLESS", 0x3B: "WIRELESS_MBUS_CONTAINER", 0x60: "RESET_COUNTER", 0x61: "CUMULATION_COUNTER",
    0x62: "CONTROL_SIGNAL", 0x63: "DAY_OF_WEEK", 0x64: "WEEK_NUMBER", 0x65: "TIME_POINT_OF_DAY_CHANGE",
    0x66: "STATE_OF_PARAMETER_ACTIVATION", 0x67: "SPECIAL_SUPPLIER_INFORMATION", 0x72: "DAYLIGHT_SAVING",
    0x73: "LISTENING_WINDOW_MANAGEMENT", 0x75: "METER_STOPPED_COUNT", 0x76: "MANUFACTURER_PROTOCOL_CONTAINER",
}  # fmt: skip
# 0xFD 0x68..0x6F: pp = hours, days, months, years
_PP_UNITS = (("SECONDS", 3600), ("SECONDS", 86400), ("MONTHS", 1), ("YEARS", 1))


def _pp(quantity: str) -> Callable[[int], VifInfo]:
    """The code's two low bits say hours, days, months or years."""

    def info(v: int) -> VifInfo:
        unit, factor = _PP_UNITS[v & 3]
        return VifInfo(quantity, unit, factor=factor)

    return info


_FD: tuple[_Rule, ...] = (
    (0x00, 0x03, _scaled("CURRENCY_CREDIT", "CURRENCY", 3, -3)),
    (0x04, 0x07, _scaled("CURRENCY_DEBIT", "CURRENCY", 3, -3)),
    (0x1C, 0x1C, _fixed(VifInfo("BAUDRATE", "BAUD"))),
    (0x1D, 0x1D, _fixed(VifInfo("RESPONSE_DELAY", "BIT_TIMES"))),
    (0x24, 0x27, _timed("STORAGE_INTERVAL")),
    (0x28, 0x28, _fixed(VifInfo("STORAGE_INTERVAL_MONTH", "MONTHS"))),
    (0x29, 0x29, _fixed(VifInfo("STORAGE_INTERVAL_YEARS", "YEARS"))),
    (0x2B, 0x2B, _fixed(VifInfo("TIME_POINT_SECOND", "SECONDS"))),
    (0x2C, 0x2F, _timed("DURATION_SINCE_LAST_READOUT")),
    (0x30, 0x30, _fixed(VifInfo("START_OF_TARIFF", "DATE_TIME", kind=Kind.DATE_TIME))),
    (0x31, 0x33, _timed("DURATION_OF_TARIFF")),
    (0x34, 0x37, _timed("PERIOD_OF_TARIFF")),
    (0x38, 0x38, _fixed(VifInfo("PERIOD_OF_TARIFF_MONTH", "MONTHS"))),
    (0x39, 0x39, _fixed(VifInfo("PERIOD_OF_TARIFF_YEARS", "YEARS"))),
    (0x3C, 0x3F, _timed("NOMINAL_TRANSMISSION_PERIOD")),
    (0x40, 0x4F, _scaled("VOLTS", "V", 0x0F, -9)),
    (0x50, 0x5F, _scaled("AMPERE", "A", 0x0F, -12)),
    (0x68, 0x6B, _pp("DURATION_SINCE_LAST_CUMULATION")),
    (0x6C, 0x6F, _pp("OPERATING_TIME_BATTERY")),
    (0x70, 0x70, _fixed(VifInfo("DATE_TIME_OF_BATTERY_CHANGE", "DATE_TIME", kind=Kind.DATE_TIME))),
    (0x71, 0x71, _fixed(VifInfo("RSSI", "DBM"))),
    (0x74, 0x74, _fixed(VifInfo("REMAINING_BATTERY_LIFE", "SECONDS", factor=86400))),
    # 0x77..0x7F reserved
)


def extension_fd(code: int) -> VifInfo:
    """Second table (VIF 0xFD / 0x7D, EN 13757-3:2013 table 14), extension bit masked off."""
    v = code & 0x7F
    if v in _FD_CODES:
        return _code(_FD_CODES[v])
    return _look_up(_FD, v)


# Scaled to the primary table's units: 10^(n-1) MWh is 10^(n+5) Wh, and so on.
_FB: tuple[_Rule, ...] = (
    (0x00, 0x01, _scaled("ENERGY_WH", "WH", 1, 5)),  # 10^(n-1) MWh
    (0x02, 0x03, _scaled("REACTIVE_ENERGY", "VARH", 1, 3)),  # 10^n kVARh
    (0x04, 0x05, _scaled("APPARENT_ENERGY", "VAH", 1, 3)),  # 10^n kVAh
    (0x08, 0x09, _scaled("ENERGY_J", "J", 1, 8)),  # 10^(n-1) GJ
    (0x0C, 0x0F, _scaled("ENERGY_CAL", "CAL", 3, 5)),  # 10^(n-1) MCal
    (0x10, 0x11, _scaled("VOLUME", "M3", 1, 2)),
    (0x14, 0x17, _scaled("REACTIVE_POWER", "VAR", 3, 0)),  # 10^(nn-3) kVAR
    (0x18, 0x19, _scaled("MASS", "KG", 1, 5)),  # 10^(n+2) t
    (0x1A, 0x1B, _scaled("RELATIVE_HUMIDITY", "PERCENT", 1, -1)),
    (0x20, 0x20, _fixed(VifInfo("VOLUME_FT3", "FT3"))),
    (0x21, 0x21, _fixed(VifInfo("VOLUME_FT3", "FT3", -1))),
    (0x22, 0x22, _fixed(VifInfo("VOLUME_US_GAL", "US_GAL", -1))),
    (0x23, 0x23, _fixed(VifInfo("VOLUME_US_GAL", "US_GAL"))),
    (0x24, 0x24, _fixed(VifInfo("VOLUME_FLOW_US_GAL_MIN", "US_GAL_MIN", -3))),
    (0x25, 0x25, _fixed(VifInfo("VOLUME_FLOW_US_GAL_MIN", "US_GAL_MIN"))),
    (0x26, 0x26, _fixed(VifInfo("VOLUME_FLOW_US_GAL_H", "US_GAL_H"))),
    (0x28, 0x29, _scaled("POWER_W", "W", 1, 5)),  # 10^(n-1) MW
    (0x2A, 0x2A, _fixed(VifInfo("PHASE_U_U", "DEGREES", -1))),
    (0x2B, 0x2B, _fixed(VifInfo("PHASE_U_I", "DEGREES", -1))),
    (0x2C, 0x2F, _scaled("FREQUENCY", "HZ", 3, -3)),
    (0x30, 0x31, _scaled("POWER_J_H", "J_H", 1, 8)),  # 10^(n-1) GJ/h
    (0x34, 0x37, _scaled("APPARENT_POWER", "VA", 3, 0)),  # 10^(nn-3) kVA
    (0x58, 0x5B, _scaled("FLOW_TEMPERATURE_F", "F", 3, -3)),
    (0x5C, 0x5F, _scaled("RETURN_TEMPERATURE_F", "F", 3, -3)),
    (0x60, 0x63, _scaled("TEMPERATURE_DIFFERENCE_F", "F", 3, -3)),
    (0x64, 0x67, _scaled("EXTERNAL_TEMPERATURE_F", "F", 3, -3)),
    (0x70, 0x73, _scaled("TEMPERATURE_LIMIT_F", "F", 3, -3)),
    (0x74, 0x77, _scaled("TEMPERATURE_LIMIT", "C", 3, -3)),
    (0x78, 0x7F, _scaled("CUMULATIVE_MAX_POWER", "W", 7, -3)),
)


def extension_fb(code: int) -> VifInfo:
    """First table (VIF 0xFB / 0x7B, EN 13757-3:2013 table 12): large units, scaled to the primary table's units."""
    return _look_up(_FB, code & 0x7F)


_VIFE_NAMES = {
    0x20: "PER_SECOND", 0x21: "PER_MINUTE", 0x22: "PER_HOUR", 0x23: "PER_DAY", 0x24: "PER_WEEK",
    0x25: "PER_MONTH", 0x26: "PER_YEAR", 0x27: "PER_REVOLUTION", 0x28: "PER_INPUT_PULSE_0",
    0x29: "PER_INPUT_PULSE_1", 0x2A: "PER_OUTPUT_PULSE_0", 0x2B: "PER_OUTPUT_PULSE_1",
    0x2C: "PER_LITRE", 0x2D: "PER_M3", 0x2E: "PER_KG", 0x2F: "PER_KELVIN", 0x30: "PER_KWH",
    0x31: "PER_GJ", 0x32: "PER_KW", 0x33: "PER_KELVIN_LITRE", 0x34: "PER_VOLT", 0x35: "PER_AMPERE",
    0x36: "MULTIPLIED_BY_S", 0x37: "MULTIPLIED_BY_S_PER_V", 0x38: "MULTIPLIED_BY_S_PER_A",
    0x39: "START_DATE_TIME_OF", 0x3A: "UNCORRECTED", 0x3B: "ACCUMULATION_IF_POSITIVE",
    0x3C: "ACCUMULATION_IF_NEGATIVE", 0x3D: "NON_METRIC_UNIT", 0x3E: "VALUE_AT_BASE_CONDITIONS",
    0x3F: "OBIS_DECLARATION", 0x40: "LOWER_LIMIT", 0x48: "UPPER_LIMIT",
    0x41: "EXCEEDS_LOWER_LIMIT_COUNT", 0x49: "EXCEEDS_UPPER_LIMIT_COUNT",
    0x68: "VALUE_DURING_LOWER_LIMIT_EXCEED", 0x6C: "VALUE_DURING_UPPER_LIMIT_EXCEED",
    0x69: "LEAKAGE_VALUES", 0x6D: "OVERFLOW_VALUES", 0x7E: "FUTURE_VALUE", 0x7F: "MANUFACTURER_SPECIFIC_VIFE",
}  # fmt: skip
# VIFE 0x00..0x1F from a slave: the record's error code (EN 13757-3 table "codes for record errors")
RECORD_ERRORS = {
    0x00: "NONE", 0x01: "TOO_MANY_DIFES", 0x02: "STORAGE_NUMBER_NOT_IMPLEMENTED",
    0x03: "UNIT_NUMBER_NOT_IMPLEMENTED", 0x04: "TARIFF_NUMBER_NOT_IMPLEMENTED", 0x05: "FUNCTION_NOT_IMPLEMENTED",
    0x06: "DATA_CLASS_NOT_IMPLEMENTED", 0x07: "DATA_SIZE_NOT_IMPLEMENTED", 0x0B: "TOO_MANY_VIFES",
    0x0C: "ILLEGAL_VIF_GROUP", 0x0D: "ILLEGAL_VIF_EXPONENT", 0x0E: "VIF_DIF_MISMATCH", 0x0F: "UNIMPLEMENTED_ACTION",
    0x15: "NO_DATA_AVAILABLE", 0x16: "DATA_OVERFLOW", 0x17: "DATA_UNDERFLOW", 0x18: "DATA_ERROR",
    0x1C: "PREMATURE_END_OF_RECORD",
}  # fmt: skip
# VIFE 0x7C then this code: the combinable extension table (phases, quadrants)
_VIFE_EXTENSION = {
    0x01: "AT_PHASE_L1", 0x02: "AT_PHASE_L2", 0x03: "AT_PHASE_L3", 0x04: "AT_NEUTRAL",
    0x05: "BETWEEN_L1_L2", 0x06: "BETWEEN_L2_L3", 0x07: "BETWEEN_L3_L1", 0x08: "AT_QUADRANT_Q1",
    0x09: "AT_QUADRANT_Q2", 0x0A: "AT_QUADRANT_Q3", 0x0B: "AT_QUADRANT_Q4", 0x0C: "DELTA_IMPORT_EXPORT",
    0x10: "ACCUMULATION_OF_ABSOLUTE_VALUE",
}  # fmt: skip
VIFE_EXTENSION = 0x7C
VIFE_MANUFACTURER = 0x7F
_LIMIT = ("LOWER", "UPPER")
_FIRST = ("FIRST", "LAST")
_BEGIN = ("BEGIN", "END")


@dataclass(frozen=True, slots=True)
class VifeInfo:
    """What one combinable (orthogonal) VIFE does to the record.

    `kind`/`unit`/`factor` are set when the VIFE changes what the data is: a date of a limit
    exceed or a duration is no longer the VIF's quantity in its unit. `error` marks a record
    error code: the data is then no reading.
    """

    name: str
    exp10: int = 0
    kind: Kind | None = None
    unit: str | None = None
    factor: int = 1
    error: bool = False


def combinable(vife: int) -> VifeInfo:
    """One orthogonal VIFE (EN 13757-3:2013 table 15), extension bit masked off."""
    v = vife & 0x7F
    bit3, bit2, bit0 = (v >> 3) & 1, (v >> 2) & 1, v & 1
    if v <= 0x1F:
        name = RECORD_ERRORS.get(v, f"RESERVED_RECORD_ERROR_0x{v:02X}")
        return VifeInfo(f"RECORD_ERROR_{name}", error=v != 0)
    if 0x70 <= v <= 0x77:
        return VifeInfo("MULTIPLICATIVE_CORRECTION", (v & 7) - 6)
    if v == 0x7D:
        return VifeInfo("MULTIPLICATIVE_CORRECTION", 3)
    if 0x78 <= v <= 0x7B:
        # an offset of 10^(nn-3) units is declared, not applied: reported for the reader to judge
        return VifeInfo(f"ADDITIVE_CORRECTION_E{(v & 3) - 3}")
    if v in (0x42, 0x43, 0x46, 0x47, 0x4A, 0x4B, 0x4E, 0x4F):
        name = f"DATE_OF_{_BEGIN[bit0]}_{_FIRST[bit2]}_{_LIMIT[bit3]}_LIMIT_EXCEED"
        return VifeInfo(name, kind=Kind.DATE_TIME, unit="DATE_TIME")
    if 0x50 <= v <= 0x5F:
        name = f"DURATION_{_FIRST[bit2]}_{_LIMIT[bit3]}_LIMIT_EXCEED"
        return VifeInfo(name, kind=Kind.NUMBER, unit="SECONDS", factor=_TIME_FACTORS[v & 3])
    if 0x60 <= v <= 0x67:
        return VifeInfo(f"DURATION_OF_{_FIRST[bit2]}", kind=Kind.NUMBER, unit="SECONDS", factor=_TIME_FACTORS[v & 3])
    if v in (0x6A, 0x6B, 0x6E, 0x6F):
        return VifeInfo(f"DATE_OF_{_BEGIN[bit0]}_{_FIRST[bit2]}", kind=Kind.DATE_TIME, unit="DATE_TIME")
    if v == 0x39:
        return VifeInfo("START_DATE_TIME_OF", kind=Kind.DATE_TIME, unit="DATE_TIME")
    return VifeInfo(_VIFE_NAMES.get(v, f"VIFE_0x{v:02X}"))


def combinable_extension(code: int) -> VifeInfo:
    """The VIFE after 0x7C (extension of the combinable VIFEs)."""
    v = code & 0x7F
    return VifeInfo(_VIFE_EXTENSION.get(v, f"EXTENSION_VIFE_0x{v:02X}"))


# Device type (medium) of the header: EN 13757-7:2018 table 12 (the 0x00..0x19 codes of EN 13757-3 and later ones).
MEDIUM = {
    0x00: "other", 0x01: "oil", 0x02: "electricity", 0x03: "gas", 0x04: "heat_outlet", 0x05: "steam",
    0x06: "warm_water", 0x07: "water", 0x08: "heat_cost_allocator", 0x09: "compressed_air",
    0x0A: "cooling_outlet", 0x0B: "cooling_inlet", 0x0C: "heat_inlet", 0x0D: "heat_cooling",
    0x0E: "bus_system", 0x0F: "unknown", 0x10: "irrigation_water", 0x11: "water_data_logger",
    0x12: "gas_data_logger", 0x13: "gas_converter", 0x14: "calorific_value", 0x15: "hot_water",
    0x16: "cold_water", 0x17: "dual_water", 0x18: "pressure", 0x19: "ad_converter", 0x1A: "smoke_detector",
    0x1B: "room_sensor", 0x1C: "gas_detector", 0x1D: "reserved_sensor", 0x1E: "reserved_sensor",
    0x1F: "reserved_sensor", 0x20: "breaker", 0x21: "valve", 0x22: "reserved_switching_device",
    0x23: "reserved_switching_device", 0x24: "reserved_switching_device", 0x25: "customer_unit",
    0x26: "reserved_customer_unit", 0x27: "reserved_customer_unit", 0x28: "waste_water", 0x29: "garbage",
    0x2A: "carbon_dioxide", 0x2B: "reserved_environmental_meter", 0x2C: "reserved_environmental_meter",
    0x2D: "reserved_environmental_meter", 0x2E: "reserved_environmental_meter",
    0x2F: "reserved_environmental_meter", 0x30: "reserved_system_device", 0x31: "communication_controller",
    0x32: "unidirectional_repeater", 0x33: "bidirectional_repeater", 0x34: "reserved_system_device",
    0x35: "reserved_system_device", 0x36: "radio_converter_system_side", 0x37: "radio_converter_meter_side",
    0x38: "wired_adapter", 0x39: "reserved_system_device", 0x3A: "reserved_system_device",
    0x3B: "reserved_system_device", 0x3C: "reserved_system_device", 0x3D: "reserved_system_device",
    0x3E: "reserved_system_device", 0x3F: "reserved_system_device",
}  # fmt: skip


def medium_name(code: int) -> str:
    """The header's device type by name; codes 0x40..0xFF are reserved by EN 13757-7."""
    return MEDIUM.get(code, f"reserved_0x{code:02X}")
