"""The label tables of both TIC modes: what each group is, its width, unit and quantity name.

Historic: Enedis-NOI-CPT_02E (blue meters: concentrator, single-phase, three-phase long and short
frames) as restated by Enedis-NOI-CPT_54E §6.1. Standard: Enedis-NOI-CPT_54E §6.2.2, with the
horodated groups of §5.3.6/§6.2.1.1. `values.interpret` decodes by this table; the README lists it.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Mode(StrEnum):
    """The two TIC modes; here, below the codec, which needs the historic labels to tell them apart."""

    HISTORIC = "historic"
    STANDARD = "standard"


class Kind(StrEnum):
    NUMBER = "number"  # zero-padded decimal, times `scale`
    TEXT = "text"  # printable text, padding spaces stripped
    SPECIAL = "special"  # decoded by its own function in values.py (STGE, PTEC, PJOURF+1 ...)


@dataclass(frozen=True, slots=True)
class Label:
    label: str
    mode: Mode
    width: int  # characters of the data field (0: DATE keeps its value in the horodate)
    quantity: str  # sample name; for SPECIAL the main one
    unit: str  # unit of the quantity (after scaling), "" when it has none
    kind: Kind
    meaning: str
    scale: int = 1  # data times scale (kVA to VA) ...
    divisor: int = 1  # ... divided by divisor (dal to m³)
    horodated: bool = False
    three_phase: bool = False  # sent by three-phase meters only


H, S = Mode.HISTORIC, Mode.STANDARD
N, T, X = Kind.NUMBER, Kind.TEXT, Kind.SPECIAL

_HISTORIC = [
    Label("ADCO", H, 12, "meter_id", "", T, "meter address"),
    Label("OPTARIF", H, 4, "tariff_option", "", X, "tariff option: BASE, HC.., EJP., BBRx (Tempo)"),
    Label("ISOUSC", H, 2, "subscribed_current_a", "A", N, "subscribed current"),
    Label("BASE", H, 9, "energy_base_wh", "Wh", N, "index, base option"),
    Label("HCHC", H, 9, "energy_hchc_wh", "Wh", N, "index, off-peak hours"),
    Label("HCHP", H, 9, "energy_hchp_wh", "Wh", N, "index, peak hours"),
    Label("EJPHN", H, 9, "energy_ejphn_wh", "Wh", N, "index EJP, normal hours"),
    Label("EJPHPM", H, 9, "energy_ejphpm_wh", "Wh", N, "index EJP, mobile peak hours"),
    Label("BBRHCJB", H, 9, "energy_bbrhcjb_wh", "Wh", N, "index Tempo, off-peak blue days"),
    Label("BBRHPJB", H, 9, "energy_bbrhpjb_wh", "Wh", N, "index Tempo, peak blue days"),
    Label("BBRHCJW", H, 9, "energy_bbrhcjw_wh", "Wh", N, "index Tempo, off-peak white days"),
    Label("BBRHPJW", H, 9, "energy_bbrhpjw_wh", "Wh", N, "index Tempo, peak white days"),
    Label("BBRHCJR", H, 9, "energy_bbrhcjr_wh", "Wh", N, "index Tempo, off-peak red days"),
    Label("BBRHPJR", H, 9, "energy_bbrhpjr_wh", "Wh", N, "index Tempo, peak red days"),
    Label("PEJP", H, 2, "ejp_notice_min", "min", N, "EJP start notice (30 min)"),
    Label("PTEC", H, 4, "tariff", "", X, "current tariff period: TH.., HC.., HP.., HN.., PM.., HCJB ... HPJR"),
    Label("DEMAIN", H, 4, "tempo_tomorrow", "", X, "tomorrow's Tempo colour: ----, BLEU, BLAN, ROUG"),
    Label("IINST", H, 3, "current_a", "A", N, "instantaneous current"),
    Label("IINST1", H, 3, "current_l1_a", "A", N, "instantaneous current, phase 1", three_phase=True),
    Label("IINST2", H, 3, "current_l2_a", "A", N, "instantaneous current, phase 2", three_phase=True),
    Label("IINST3", H, 3, "current_l3_a", "A", N, "instantaneous current, phase 3", three_phase=True),
    Label("ADPS", H, 3, "overload_current_a", "A", N, "subscribed power exceeded: the current"),
    Label("ADIR1", H, 3, "overload_current_l1_a", "A", N, "setting current exceeded, phase 1", three_phase=True),
    Label("ADIR2", H, 3, "overload_current_l2_a", "A", N, "setting current exceeded, phase 2", three_phase=True),
    Label("ADIR3", H, 3, "overload_current_l3_a", "A", N, "setting current exceeded, phase 3", three_phase=True),
    Label("IMAX", H, 3, "max_current_a", "A", N, "maximum current drawn"),
    Label("IMAX1", H, 3, "max_current_l1_a", "A", N, "maximum current, phase 1", three_phase=True),
    Label("IMAX2", H, 3, "max_current_l2_a", "A", N, "maximum current, phase 2", three_phase=True),
    Label("IMAX3", H, 3, "max_current_l3_a", "A", N, "maximum current, phase 3", three_phase=True),
    Label("PMAX", H, 5, "max_power_w", "W", N, "maximum three-phase power reached", three_phase=True),
    Label("PAPP", H, 5, "apparent_power_va", "VA", N, "apparent power"),
    Label("HHPHC", H, 1, "hphc_schedule", "", T, "peak/off-peak hours schedule code: A, C, D, E, Y"),
    Label("MOTDETAT", H, 6, "status", "", T, "meter status word"),
    Label("PPOT", H, 2, "potentials", "", X, "presence of the phase voltages (bit n = 1: phase n absent)",
          three_phase=True),
    # The telereport concentrator's pulse inputs, in decalitres.
    Label("GAZ", H, 7, "gas_volume_m3", "m³", N, "gas index (dal)", divisor=100),
    Label("AUTRE", H, 7, "other_volume_m3", "m³", N, "third meter index (dal)", divisor=100),
]  # fmt: skip

_STANDARD = [
    Label("ADSC", S, 12, "meter_id", "", T, "secondary meter address (serial number)"),
    Label("VTIC", S, 2, "tic_version", "", T, "TIC version"),
    Label("DATE", S, 0, "meter_time", "", X, "current date and time", horodated=True),
    Label("NGTF", S, 16, "tariff_option", "", T, "supplier tariff calendar name"),
    Label("LTARF", S, 16, "tariff", "", T, "current supplier tariff label"),
    Label("EAST", S, 9, "energy_wh", "Wh", N, "active energy drawn, total"),
    *(Label(f"EASF{i:02d}", S, 9, f"energy_easf{i:02d}_wh", "Wh", N, f"active energy drawn, supplier index {i}")
      for i in range(1, 11)),
    *(Label(f"EASD{i:02d}", S, 9, f"energy_easd{i:02d}_wh", "Wh", N, f"active energy drawn, distributor index {i}")
      for i in range(1, 5)),
    Label("EAIT", S, 9, "energy_injected_wh", "Wh", N, "active energy injected, total"),
    *(Label(f"ERQ{i}", S, 9, f"reactive_energy_q{i}_varh", "VArh", N, f"reactive energy Q{i}, total")
      for i in range(1, 5)),
    # IRMS1, URMS1 and UMOY1 are named per phase (..._l1_...) on a three-phase meter, see values.py.
    Label("IRMS1", S, 3, "current_a", "A", N, "RMS current, phase 1"),
    Label("IRMS2", S, 3, "current_l2_a", "A", N, "RMS current, phase 2", three_phase=True),
    Label("IRMS3", S, 3, "current_l3_a", "A", N, "RMS current, phase 3", three_phase=True),
    Label("URMS1", S, 3, "voltage_v", "V", N, "RMS voltage, phase 1"),
    Label("URMS2", S, 3, "voltage_l2_v", "V", N, "RMS voltage, phase 2", three_phase=True),
    Label("URMS3", S, 3, "voltage_l3_v", "V", N, "RMS voltage, phase 3", three_phase=True),
    Label("PREF", S, 2, "subscribed_power_va", "VA", N, "reference (subscribed) apparent power (kVA)", scale=1000),
    Label("PCOUP", S, 2, "breaking_power_va", "VA", N, "breaking apparent power (kVA)", scale=1000),
    Label("SINSTS", S, 5, "apparent_power_va", "VA", N, "instantaneous apparent power drawn"),
    *(Label(f"SINSTS{i}", S, 5, f"apparent_power_l{i}_va", "VA", N, f"instantaneous apparent power drawn, phase {i}",
            three_phase=True) for i in range(1, 4)),
    Label("SMAXSN", S, 5, "max_apparent_power_va", "VA", N, "maximum apparent power drawn today", horodated=True),
    *(Label(f"SMAXSN{i}", S, 5, f"max_apparent_power_l{i}_va", "VA", N,
            f"maximum apparent power drawn today, phase {i}", horodated=True, three_phase=True) for i in range(1, 4)),
    Label("SMAXSN-1", S, 5, "max_apparent_power_yesterday_va", "VA", N, "maximum apparent power drawn yesterday",
          horodated=True),
    *(Label(f"SMAXSN{i}-1", S, 5, f"max_apparent_power_yesterday_l{i}_va", "VA", N,
            f"maximum apparent power drawn yesterday, phase {i}", horodated=True, three_phase=True)
      for i in range(1, 4)),
    Label("SINSTI", S, 5, "injected_power_va", "VA", N, "instantaneous apparent power injected"),
    Label("SMAXIN", S, 5, "max_injected_power_va", "VA", N, "maximum apparent power injected today", horodated=True),
    Label("SMAXIN-1", S, 5, "max_injected_power_yesterday_va", "VA", N, "maximum apparent power injected yesterday",
          horodated=True),
    Label("CCASN", S, 5, "load_curve_power_w", "W", N, "load curve point n, active power drawn", horodated=True),
    Label("CCASN-1", S, 5, "load_curve_power_previous_w", "W", N, "load curve point n-1, active power drawn",
          horodated=True),
    Label("CCAIN", S, 5, "load_curve_injected_power_w", "W", N, "load curve point n, active power injected",
          horodated=True),
    Label("CCAIN-1", S, 5, "load_curve_injected_power_previous_w", "W", N,
          "load curve point n-1, active power injected", horodated=True),
    Label("UMOY1", S, 3, "mean_voltage_v", "V", N, "mean voltage (10 min), phase 1", horodated=True),
    Label("UMOY2", S, 3, "mean_voltage_l2_v", "V", N, "mean voltage (10 min), phase 2", horodated=True,
          three_phase=True),
    Label("UMOY3", S, 3, "mean_voltage_l3_v", "V", N, "mean voltage (10 min), phase 3", horodated=True,
          three_phase=True),
    Label("STGE", S, 8, "stge", "", X, "status register (hexadecimal)"),
    *(Label(f"{p}PM{i}", S, 2, f"mobile_peak_{i}_{'start' if p == 'D' else 'end'}", "", X,
            f"{'start' if p == 'D' else 'end'} of mobile peak {i}", horodated=True) for i in range(1, 4) for p in "DF"),
    Label("MSG1", S, 32, "message", "", T, "short message"),
    Label("MSG2", S, 16, "short_message", "", T, "ultra-short message"),
    Label("PRM", S, 14, "prm", "", T, "PRM (delivery point number)"),
    Label("RELAIS", S, 3, "relays", "", X, "relays 1 (real) to 8 (virtual), bit n-1 = relay n closed"),
    Label("NTARF", S, 2, "tariff_index", "", N, "current tariff index number"),
    Label("NJOURF", S, 2, "supplier_day", "", N, "supplier calendar: today's day profile number"),
    Label("NJOURF+1", S, 2, "supplier_day_tomorrow", "", N, "supplier calendar: tomorrow's day profile number"),
    Label("PJOURF+1", S, 98, "supplier_profile_tomorrow", "", X, "supplier calendar: tomorrow's day profile"),
    Label("PPOINTE", S, 98, "peak_day_profile", "", X, "profile of the next peak day"),
]  # fmt: skip

LABELS: dict[str, Label] = {lb.label: lb for lb in _HISTORIC + _STANDARD}
HISTORIC_LABELS = tuple(lb.label for lb in _HISTORIC)
STANDARD_LABELS = tuple(lb.label for lb in _STANDARD)
