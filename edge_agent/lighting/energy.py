"""Burn hours and energy, per lamp and per cabinet, added up from the lamps' readings.

Burn time counts the lit state of the previous reading, and not across a silence longer than
`max_reading_gap_s`; an energy counter's difference is exact over any gap. The cabinet reports
every `report_interval_s` (hourly), each lamp every `lamp_report_interval_s` (daily).
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime, timedelta

from drivers.model import Event, Sample, Severity
from edge_agent.clock import epoch_ms
from edge_agent.lighting.config import LightingConfig
from edge_agent.lighting.faults import Fault
from edge_agent.lighting.lamps import CABINET_DEVICE, LampState


def most_energy_wh(state: LampState, ts: int) -> float:
    """The most the lamp can have drawn since its counter's previous reading: twice its rated power
    over the time, plus a minute and a watt-hour for a counter that is read late and counts whole Wh.
    More is a garbled register (a counter read as 1.7e308), not consumption."""
    elapsed_s = (ts - (state.last_energy_ts_ms or ts)) / 1000 + 60
    return 2 * state.rated_power_w * elapsed_s / 3600 + 1


class EnergyAccount:
    def __init__(self, config: LightingConfig) -> None:
        self.config = config
        self.cabinet_burn_s = 0.0  # since the cabinet's last report
        self.cabinet_energy_wh = 0.0
        self.next_report: datetime | None = None
        self.next_lamp_report: datetime | None = None

    def start(self, now: datetime) -> None:
        self.next_report = now + timedelta(seconds=self.config.report_interval_s)
        self.next_lamp_report = now + timedelta(seconds=self.config.lamp_report_interval_s)

    def add(self, state: LampState, ts: int, energy: float | None) -> list[Event]:
        """Add what the lamp did since its previous reading (UTC instants); an implausible counter's event."""
        events = []
        last = state.last_ts_ms
        if last is not None and ts > last:
            dt = (ts - last) / 1000
            bridged = dt <= self.config.max_reading_gap_s
            if state.lit and bridged:
                state.burn_s += dt
                state.burn_total_s += dt
                self.cabinet_burn_s += dt
            used = 0.0
            if energy is not None and state.last_energy_wh is not None:
                delta = energy - state.last_energy_wh
                # a replaced driver restarts its counter: what it shows is what it used since
                used = delta if delta >= 0 else energy
                if used > most_energy_wh(state, ts):
                    events.append(Event(state.name, ts, "counter_implausible", Severity.MAJOR, {
                        "quantity": "energy_wh", "previous": state.last_energy_wh, "current": energy,
                        "rated_power_w": state.rated_power_w, "elapsed_ms": ts - (state.last_energy_ts_ms or ts)}))
                    used = 0.0
            elif energy is None and state.power_w is not None and bridged:
                used = state.power_w * dt / 3600
            state.energy_wh += used
            state.energy_total_wh += used
            self.cabinet_energy_wh += used
        if last is None or ts >= last:
            state.last_ts_ms = ts
            if energy is not None:
                state.last_energy_wh = energy
                state.last_energy_ts_ms = ts
        return events

    def reports(self, now: datetime, lamps: Collection[LampState]) -> list[Sample]:
        """The lamps' and the cabinet's reports that are due at `now`."""
        ts = epoch_ms(now)
        out = []
        if self.next_lamp_report is not None and now >= self.next_lamp_report:
            for s in lamps:
                if s.readings:
                    out.append(Sample(s.name, ts, {"burn_h": round(s.burn_s / 3600, 4),
                                                   "consumed_wh": round(s.energy_wh, 3)}))
                s.burn_s = s.energy_wh = 0.0
                s.readings = 0
            self.next_lamp_report = now + timedelta(seconds=self.config.lamp_report_interval_s)
        if self.next_report is not None and now >= self.next_report:
            out.append(Sample(CABINET_DEVICE, ts, {
                "burn_h": round(self.cabinet_burn_s / 3600, 4), "consumed_wh": round(self.cabinet_energy_wh, 3),
                "burn_total_h": round(sum(s.burn_total_s for s in lamps) / 3600, 4),
                "consumed_total_wh": round(sum(s.energy_total_wh for s in lamps), 3),
                "lamps": len(lamps),
                "lamps_failed": sum(1 for s in lamps if Fault.LAMP_FAILURE in s.faults),
            }))
            self.cabinet_burn_s = self.cabinet_energy_wh = 0.0
            self.next_report = now + timedelta(seconds=self.config.report_interval_s)
        return out

    def next_instants(self) -> list[datetime]:
        return [t for t in (self.next_report, self.next_lamp_report) if t is not None]
