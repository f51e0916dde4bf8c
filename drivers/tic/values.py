"""What a TIC frame means: every group of both label tables as typed fields with units.

Labels and widths: `labels.py` (Enedis-NOI-CPT_02E / CPT_54E §6.1 historic, CPT_54E §6.2 standard);
STGE bits §6.2.3.14; day profiles (PJOURF+1, PPOINTE) §6.2.3.22; relays §6.2.3.19.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

from drivers.model import Value
from drivers.tic.codec import Frame, Group, TicDecodeError
from drivers.tic.labels import LABELS, Kind, Label

# Historic per-tariff energy indexes (Wh): base, off-peak/peak, EJP, Tempo (blue/white/red days).
HISTORIC_INDEXES = (
    "BASE", "HCHC", "HCHP", "EJPHN", "EJPHPM",
    "BBRHCJB", "BBRHPJB", "BBRHCJW", "BBRHPJW", "BBRHCJR", "BBRHPJR",
)  # fmt: skip
# Standard per-tariff indexes: supplier EASF01..10, distributor EASD01..04.
STANDARD_INDEXES = tuple(f"EASF{i:02d}" for i in range(1, 11)) + tuple(f"EASD{i:02d}" for i in range(1, 5))

# Three-phase meters name phase 1 with the label a single-phase meter uses for its only phase.
_PHASE_1 = {"IRMS1": "current_l1_a", "URMS1": "voltage_l1_v", "UMOY1": "mean_voltage_l1_v"}
PARIS = ZoneInfo("Europe/Paris")

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


def parse_local_time(h: str) -> datetime:
    """A horodate whose season is a SPACE (DPMx/FPMx, §6.2.1.1): the date and time are local, in Paris."""
    try:
        naive = datetime(
            2000 + int(h[1:3]), int(h[3:5]), int(h[5:7]), int(h[7:9]), int(h[9:11]), int(h[11:13])
        )
    except ValueError as exc:
        raise TicDecodeError(f"horodate {h!r}: {exc}") from None
    return naive.replace(tzinfo=PARIS)


DRY_CONTACT = ("unchanged", "tempo", "open", "closed")
NONUTILE = "NONUTILE"
MAX_BLOCKS = 11


@dataclass(frozen=True, slots=True)
class ProfileBlock:
    """One time slot of a day profile (PJOURF+1, PPOINTE): `HHMMSSSS`, SSSS the 16-bit action in hex."""

    start: str  # "HH:MM", local time
    tariff_index: int | None  # supplier index 1..10 from `start` on; None: the tariff stays as it is
    virtual_contacts_closed: tuple[int, ...]  # virtual contacts 1..7 whose bit is set
    dry_contact: str  # DRY_CONTACT


def decode_day_profile(text: str) -> tuple[ProfileBlock, ...]:
    """Up to 11 blocks separated by one space; unused blocks are "NONUTILE" (§6.2.3.22)."""
    parts = text.strip(" ").split(" ")
    if not 1 <= len(parts) <= MAX_BLOCKS:
        raise TicDecodeError(f"day profile {text!r}: {len(parts)} blocks, expected 1 to {MAX_BLOCKS}")
    blocks: list[ProfileBlock] = []
    for part in parts:
        if part == NONUTILE:
            continue
        hh, mm, action = part[0:2], part[2:4], part[4:8]
        if (
            len(part) != 8
            or not (hh.isdigit() and mm.isdigit() and hh.isascii() and mm.isascii())
            or int(hh) > 23
            or int(mm) > 59
            or any(c not in "0123456789abcdefABCDEF" for c in action)
        ):
            raise TicDecodeError(
                f"day profile block {part!r}: expected HHMMSSSS (SSSS hexadecimal) or {NONUTILE}"
            )
        v = int(action, 16)
        index = v & 0xF
        blocks.append(
            ProfileBlock(
                start=f"{hh}:{mm}",
                tariff_index=index if 1 <= index <= 10 else None,
                virtual_contacts_closed=tuple(n for n in range(1, 8) if v >> (n + 3) & 1),
                dry_contact=DRY_CONTACT[v >> 14 & 3],
            )
        )
    return tuple(blocks)


def profile_text(blocks: tuple[ProfileBlock, ...]) -> str:
    """A day profile as one line a person reads, the form samples carry (their values are scalars)."""
    out = []
    for b in blocks:
        text = f"{b.start} " + (f"index {b.tariff_index}" if b.tariff_index else "no tariff change")
        if b.dry_contact != "unchanged":
            text += f", dry contact {b.dry_contact}"
        if b.virtual_contacts_closed:
            text += f", virtual contacts {'+'.join(map(str, b.virtual_contacts_closed))} closed"
        out.append(text)
    return "; ".join(out)


@dataclass(frozen=True, slots=True)
class Field:
    """One typed value read from one group (a group may give several: STGE, PPOT, RELAIS ...)."""

    label: str  # the group's label ("HCHC+HCHP" for a total the meter does not send)
    name: str  # quantity name, unit suffix included
    value: Value
    unit: str = ""
    horodate: str | None = None  # as sent
    time: str | None = None  # the horodate, ISO 8601
    blocks: tuple[ProfileBlock, ...] | None = None  # day profiles, decoded


@dataclass(slots=True)
class Reading:
    """What one frame means: sample values, typed fields, and what did not make sense (kept out of both)."""

    values: dict[str, Value] = field(default_factory=dict)
    fields: list[Field] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    unknown_labels: list[str] = field(default_factory=list)


def _number(g: Group) -> int:
    text = g.data.strip(" ")
    if not (text.isdigit() and text.isascii()):
        raise TicDecodeError(f"{g.data!r} is not a number")
    return int(text)


def _time(g: Group) -> str | None:
    if g.horodate is None:
        return None
    when = parse_horodate(g.horodate) if g.horodate[0] != " " else parse_local_time(g.horodate)
    return None if when is None else when.isoformat()


_TARIFF_CONTRACT = {"BASE": "base", "HC..": "off_peak_hours", "EJP.": "ejp"}
_PERIOD = {"TH": "all_hours", "HC": "off_peak", "HP": "peak", "HN": "normal", "PM": "mobile_peak"}
_COLOUR_LETTER = {"B": "blue", "W": "white", "R": "red"}
_DEMAIN = {"----": "none", "BLEU": "blue", "BLAN": "white", "ROUG": "red"}


def _special(spec: Label, g: Group) -> list[tuple[str, Value]]:
    """(name, value) pairs of a group that needs more than a number or a text."""
    label, data = g.label, g.data
    if label == "OPTARIF":
        option = data.rstrip(".").strip()
        contract = "tempo" if data.startswith("BBR") and len(data) == 4 else _TARIFF_CONTRACT.get(data)
        if contract is None:
            raise TicDecodeError(f"{data!r} is none of BASE, HC.., EJP., BBRx")
        return [("tariff_option", option), ("tariff_contract", contract)]
    if label == "PTEC":
        hours = data[:2]
        if data[2:] in ("..", "") and hours in _PERIOD:
            return [("tariff", data.rstrip(".").strip()), ("tariff_period", _PERIOD[hours])]
        if len(data) == 4 and data[2] == "J" and hours in ("HC", "HP") and data[3] in _COLOUR_LETTER:
            return [
                ("tariff", data),
                ("tariff_period", _PERIOD[hours]),
                ("tempo_today", _COLOUR_LETTER[data[3]]),
            ]
        raise TicDecodeError(f"{data!r} is none of TH.., HC.., HP.., HN.., PM.., HCJB ... HPJR")
    if label == "DEMAIN":
        if data not in _DEMAIN:
            raise TicDecodeError(f"{data!r} is none of ----, BLEU, BLAN, ROUG")
        return [("tempo_tomorrow", _DEMAIN[data])]
    if label == "PPOT":
        if len(data) != 2 or any(c not in "0123456789abcdefABCDEF" for c in data):
            raise TicDecodeError(f"{data!r}: expected 2 hexadecimal characters")
        v = int(data, 16)
        pairs: list[tuple[str, Value]] = [("potentials", data)]
        return pairs + [(f"phase_l{n}_present", not v >> n & 1) for n in (1, 2, 3)]
    if label == "RELAIS":
        text = data.strip(" ")
        if not (text.isdigit() and text.isascii()) or int(text) > 255:
            raise TicDecodeError(f"{data!r}: expected a number 0..255 (8 relay bits)")
        v = int(text)
        relays: list[tuple[str, Value]] = [("relays", v)]
        return relays + [(f"relay_{n}_closed", bool(v >> (n - 1) & 1)) for n in range(1, 9)]
    if label == "STGE":
        s = decode_stge(data)
        return [
            ("stge", data.upper()), ("dry_contact_open", s.dry_contact_open), ("breaking_device", s.breaking_device),
            ("cover_open", s.cover_open), ("overvoltage", s.overvoltage), ("power_exceeded", s.power_exceeded),
            ("producer", s.producer), ("injecting", s.injecting), ("supplier_tariff_index", s.supplier_tariff_index),
            ("distributor_tariff_index", s.distributor_tariff_index), ("clock_degraded", s.clock_degraded),
            ("tic_mode", s.mode), ("euridis", s.euridis), ("cpl_status", s.cpl_status),
            ("cpl_synchronised", s.cpl_synchronised), ("tempo_today", s.tempo_today),
            ("tempo_tomorrow", s.tempo_tomorrow), ("mobile_peak_notice", s.mobile_peak_notice),
            ("mobile_peak", s.mobile_peak),
        ]  # fmt: skip
    if spec.horodated:  # DATE, DPMx, FPMx: the value is the horodate itself
        if g.horodate is None:
            raise TicDecodeError("no horodate")
        return [(spec.quantity, _time(g))]
    # Every SPECIAL label of the table is handled above.
    raise AssertionError(f"no decoder for {label}")  # pragma: no cover


def _decode(spec: Label, g: Group, three_phase: bool) -> list[Field]:
    if spec.kind is Kind.NUMBER:
        n = _number(g)
        value: Value = n * spec.scale if spec.divisor == 1 else n * spec.scale / spec.divisor
        name = _PHASE_1[g.label] if three_phase and g.label in _PHASE_1 else spec.quantity
        time = _time(g) if spec.horodated else None
        return [Field(g.label, name, value, spec.unit, g.horodate, time)]
    if spec.kind is Kind.TEXT:
        return [Field(g.label, spec.quantity, g.data.strip(" "))]
    if g.label in ("PJOURF+1", "PPOINTE"):
        blocks = decode_day_profile(g.data)
        return [Field(g.label, spec.quantity, profile_text(blocks), blocks=blocks)]
    pairs = _special(spec, g)
    if spec.horodated:
        return [Field(g.label, name, v, horodate=g.horodate) for name, v in pairs]
    return [Field(g.label, name, v) for name, v in pairs]


def _time_name(quantity: str) -> str:
    """max_apparent_power_l1_va -> max_apparent_power_l1_time: when a horodated value was reached."""
    return quantity.rsplit("_", 1)[0] + "_time"


def interpret(frame: Frame) -> Reading:
    """Every group of a frame whose groups all passed their checksum, as typed fields and sample values."""
    r = Reading()
    three_phase = any(lb.three_phase for g in frame.groups if (lb := LABELS.get(g.label)) is not None)
    for g in frame.groups:
        spec = LABELS.get(g.label)
        if spec is None:
            r.unknown_labels.append(g.label)
            continue
        try:
            r.fields += _decode(spec, g, three_phase)
        except TicDecodeError as exc:
            r.problems.append(f"{g.label}: {exc}")
    _add_total(r)
    for f in r.fields:
        r.values[f.name] = f.value
        if f.time is not None:
            r.values[_time_name(f.name)] = f.time
    return r


def _add_total(r: Reading) -> None:
    """energy_wh: EAST, else BASE, else the sum of the historic tariff indexes (a multi-tariff meter gives no total)."""
    if any(f.label == "EAST" for f in r.fields):
        return
    indexes = [f for f in r.fields if f.label in HISTORIC_INDEXES or f.label in STANDARD_INDEXES]
    base = [f for f in indexes if f.label == "BASE"]
    if base:
        r.fields.append(Field("BASE", "energy_wh", base[0].value, "Wh"))
        return
    # The distributor's EASDxx split the same energy again, so they are not added.
    summed = [f for f in indexes if not f.label.startswith("EASD")]
    if summed:
        total = sum(f.value for f in summed if isinstance(f.value, int))
        r.fields.append(Field("+".join(f.label for f in summed), "energy_wh", total, "Wh"))
