"""What a TIC frame means: sample quantities with units, the STGE status register, horodates.

Labels and widths: Enedis-NOI-CPT_54E §6.1 (historic) and §6.2 (standard); STGE bits §6.2.3.14.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

from drivers.model import Value
from drivers.tic.codec import Frame, TicDecodeError

# Historic per-tariff energy indexes (Wh): base, off-peak/peak, EJP, Tempo (blue/white/red days).
HISTORIC_INDEXES = (
    "BASE", "HCHC", "HCHP", "EJPHN", "EJPHPM",
    "BBRHCJB", "BBRHPJB", "BBRHCJW", "BBRHPJW", "BBRHCJR", "BBRHPJR",
)  # fmt: skip
# Standard per-tariff indexes: supplier EASF01..10, distributor EASD01..04.
STANDARD_INDEXES = tuple(f"EASF{i:02d}" for i in range(1, 11)) + tuple(f"EASD{i:02d}" for i in range(1, 5))

# label -> (quantity, scale to the quantity's unit)
_NUMERIC: dict[str, tuple[str, int]] = {
    "PAPP": ("apparent_power_va", 1),
    "SINSTS": ("apparent_power_va", 1),
    "SINSTS1": ("apparent_power_l1_va", 1),
    "SINSTS2": ("apparent_power_l2_va", 1),
    "SINSTS3": ("apparent_power_l3_va", 1),
    "SINSTI": ("injected_power_va", 1),
    "IINST": ("current_a", 1),
    "IINST1": ("current_l1_a", 1),
    "IINST2": ("current_l2_a", 1),
    "IINST3": ("current_l3_a", 1),
    "IRMS1": ("current_a", 1),
    "IRMS2": ("current_l2_a", 1),
    "IRMS3": ("current_l3_a", 1),
    "URMS1": ("voltage_v", 1),
    "URMS2": ("voltage_l2_v", 1),
    "URMS3": ("voltage_l3_v", 1),
    "ISOUSC": ("subscribed_current_a", 1),
    "PREF": ("subscribed_power_va", 1000),
    "PCOUP": ("breaking_power_va", 1000),
    "IMAX": ("max_current_a", 1),
    "PMAX": ("max_power_w", 1),
    "SMAXSN": ("max_apparent_power_va", 1),
    "EAIT": ("energy_injected_wh", 1),
    "NTARF": ("tariff_index", 1),
}
# Three-phase meters report phase 1 under the same label as single-phase ones.
_PHASE_1 = {"IRMS1": "current_l1_a", "URMS1": "voltage_l1_v", "IINST1": "current_l1_a"}

BREAKING_DEVICE = ("closed", "open_overpower", "open_overvoltage", "open_load_shedding",
                   "open_cpl_order", "open_overheat_overcurrent", "open_overheat", "unknown")  # fmt: skip
TEMPO = ("none", "blue", "white", "red")
EURIDIS = ("disabled", "enabled_unsecured", "reserved", "enabled_secured")
CPL = ("new_unlocked", "new_locked", "registered", "reserved")


@dataclass(frozen=True, slots=True)
class Stge:
    """Standard-mode status register (STGE), decoded."""

    raw: int
    dry_contact_open: bool
    breaking_device: str
    cover_open: bool
    overvoltage: bool
    power_exceeded: bool
    producer: bool
    injecting: bool
    supplier_tariff_index: int
    distributor_tariff_index: int
    clock_degraded: bool
    mode: str
    euridis: str
    cpl_status: str
    cpl_synchronised: bool
    tempo_today: str
    tempo_tomorrow: str
    mobile_peak_notice: int
    mobile_peak: int


def decode_stge(text: str) -> Stge:
    if len(text) != 8 or any(c not in "0123456789abcdefABCDEF" for c in text):
        raise TicDecodeError(f"STGE {text!r}: expected 8 hexadecimal characters")
    v = int(text, 16)

    def bits(lo: int, n: int) -> int:
        return (v >> lo) & ((1 << n) - 1)

    return Stge(
        raw=v,
        dry_contact_open=bool(bits(0, 1)),
        breaking_device=BREAKING_DEVICE[bits(1, 3)],
        cover_open=bool(bits(4, 1)),
        overvoltage=bool(bits(6, 1)),
        power_exceeded=bool(bits(7, 1)),
        producer=bool(bits(8, 1)),
        injecting=bool(bits(9, 1)),
        supplier_tariff_index=bits(10, 4) + 1,
        distributor_tariff_index=bits(14, 2) + 1,
        clock_degraded=bool(bits(16, 1)),
        mode="standard" if bits(17, 1) else "historic",
        euridis=EURIDIS[bits(19, 2)],
        cpl_status=CPL[bits(21, 2)],
        cpl_synchronised=bool(bits(23, 1)),
        tempo_today=TEMPO[bits(24, 2)],
        tempo_tomorrow=TEMPO[bits(26, 2)],
        mobile_peak_notice=bits(28, 2),
        mobile_peak=bits(30, 2),
    )


def parse_horodate(h: str) -> datetime | None:
    """`SAAMMJJhhmmss` to an aware datetime (H = winter, UTC+1; E = summer, UTC+2); None if not applicable."""
    season = h[0]
    if season == " ":
        return None
    offset = 1 if season in "Hh" else 2
    try:
        return datetime(
            2000 + int(h[1:3]), int(h[3:5]), int(h[5:7]), int(h[7:9]), int(h[9:11]), int(h[11:13]),
            tzinfo=timezone(timedelta(hours=offset)),
        )  # fmt: skip
    except ValueError as exc:
        raise TicDecodeError(f"horodate {h!r}: {exc}") from None


@dataclass(slots=True)
class Reading:
    """Sample values of one frame, and the fields that did not make sense (kept out of the values)."""

    values: dict[str, Value] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)


def _int(label: str, data: str, reading: Reading) -> int | None:
    text = data.strip()
    if not text.isdigit():
        reading.problems.append(f"{label}: {data!r} is not a number")
        return None
    return int(text)


def interpret(frame: Frame) -> Reading:
    """Sample values (quantity names carry units) of a frame whose groups all passed their checksum."""
    r = Reading()
    fields = frame.fields
    three_phase = any(lb in fields for lb in ("IRMS2", "IRMS3", "URMS2", "URMS3", "IINST2", "IINST3"))
    indexes: dict[str, int] = {}
    for g in frame.groups:
        label = g.label
        if label in ("ADCO", "ADSC"):
            r.values["meter_id"] = g.data.strip()
        elif label in HISTORIC_INDEXES or label in STANDARD_INDEXES or label == "EAST":
            wh = _int(label, g.data, r)
            if wh is not None:
                indexes[label] = wh
        elif label in _NUMERIC:
            n = _int(label, g.data, r)
            if n is None:
                continue
            quantity, scale = _NUMERIC[label]
            if three_phase and label in _PHASE_1:
                quantity = _PHASE_1[label]
            r.values[quantity] = n * scale
        elif label == "PTEC":
            r.values["tariff"] = g.data.rstrip(".").strip()
        elif label == "LTARF":
            r.values["tariff"] = g.data.strip()
        elif label in ("OPTARIF", "NGTF"):
            r.values["tariff_option"] = g.data.rstrip(".").strip()
        elif label == "MOTDETAT":
            r.values["status"] = g.data
        elif label == "STGE":
            try:
                stge = decode_stge(g.data)
            except TicDecodeError as exc:
                r.problems.append(str(exc))
                continue
            r.values.update(
                stge=g.data.upper(),
                breaking_device=stge.breaking_device,
                power_exceeded=stge.power_exceeded,
                overvoltage=stge.overvoltage,
                cover_open=stge.cover_open,
                clock_degraded=stge.clock_degraded,
                supplier_tariff_index=stge.supplier_tariff_index,
                distributor_tariff_index=stge.distributor_tariff_index,
                tempo_today=stge.tempo_today,
                tempo_tomorrow=stge.tempo_tomorrow,
            )
        elif label == "DATE" and g.horodate is not None:
            try:
                when = parse_horodate(g.horodate)
            except TicDecodeError as exc:
                r.problems.append(str(exc))
                continue
            if when is not None:
                r.values["meter_time"] = when.isoformat()
    for label, wh in indexes.items():
        if label != "EAST":
            r.values[f"energy_{label.lower()}_wh"] = wh
    if "EAST" in indexes:
        r.values["energy_wh"] = indexes["EAST"]
    elif "BASE" in indexes:
        r.values["energy_wh"] = indexes["BASE"]
    elif indexes:
        # Historic multi-tariff meters give no total: it is the sum of the tariff indexes
        # (the distributor's EASDxx split the same energy again, so they are not added).
        r.values["energy_wh"] = sum(wh for label, wh in indexes.items() if not label.startswith("EASD"))
    return r
