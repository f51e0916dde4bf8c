"""The lighting service's state file, `state_dir/lighting.json`: overrides, a pushed program set,
the last time sync, and each lamp's totals and open faults.

Written whole to a temporary file, fsynced, renamed over the old one, and the folder fsynced,
so a power cut or a kill -9 at any moment leaves either the old file or the new one. An
unreadable file is set aside (`.bad`) and reported (`lighting_state_lost`); the service then
starts from its configuration.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from drivers.model import Event, Severity
from edge_agent.lighting.config import LightingConfig, check_calendars
from edge_agent.lighting.faults import Fault
from edge_agent.lighting.lamps import CABINET_DEVICE, LampState
from edge_agent.lighting.model import LightingError, Override, ProgramSet, parse_program_set

log = logging.getLogger("citygate.lighting")

STATE_FILE = "lighting.json"
STATE_VERSION = 1


def write_json_atomic(path: Path, doc: Any) -> None:
    """Replace `path` with `doc` so that a crash at any moment leaves either the old or the new file."""
    tmp = path.with_name(path.name + ".tmp")
    data = orjson.dumps(doc, option=orjson.OPT_INDENT_2)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def fingerprint(programs: ProgramSet) -> str:
    return hashlib.sha256(orjson.dumps(programs.to_doc(), option=orjson.OPT_SORT_KEYS)).hexdigest()


@dataclass
class Loaded:
    """What a saved state gives back to the service (the lamps' totals go straight to their LampState)."""

    overrides: dict[str, Override] = field(default_factory=dict)
    last_sync: datetime | None = None
    #: a pushed program set that still applies: the program files did not change since the push
    programs: ProgramSet | None = None
    events: list[Event] = field(default_factory=list)


class StateFile:
    def __init__(self, path: Path, config: LightingConfig) -> None:
        self.path = path
        self.config = config

    def save(self, *, overrides: Iterable[Override], pushed: ProgramSet | None, last_sync: datetime | None,
             lamps: Iterable[LampState]) -> None:
        doc = {
            "version": STATE_VERSION,
            "config_programs": fingerprint(self.config.programs),
            "programs": pushed.to_doc() if pushed is not None else None,
            "overrides": [o.to_doc() for o in overrides],
            "last_sync": last_sync.isoformat() if last_sync else None,
            "lamps": {
                s.name: {"burn_total_s": s.burn_total_s, "energy_total_wh": s.energy_total_wh,
                         "faults": sorted(s.faults) if s.faults else []}
                for s in lamps
            },
        }
        write_json_atomic(self.path, doc)

    def load(self, lamps: Mapping[str, LampState], now_ms: int) -> Loaded:
        """Read the saved state; lamps get their totals and open faults back."""
        loaded = Loaded()
        try:
            doc = orjson.loads(self.path.read_bytes())
        except FileNotFoundError:
            return loaded
        except (OSError, orjson.JSONDecodeError) as exc:
            return self._unreadable(loaded, f"cannot read: {exc}", now_ms)
        try:
            if doc.get("version") != STATE_VERSION:
                raise ValueError(f"version {doc.get('version')!r}, expected {STATE_VERSION}")
            targets = set(lamps) | {g.name for g in self.config.groups}
            loaded.overrides = {o.target: o for o in map(Override.from_doc, doc["overrides"]) if o.target in targets}
            totals = {
                name: (float(lamp["burn_total_s"]), float(lamp["energy_total_wh"]),
                       {f for f in lamp["faults"] if f in Fault.__members__.values()})
                for name, lamp in doc.get("lamps", {}).items() if name in lamps
            }
            if doc.get("last_sync"):
                loaded.last_sync = datetime.fromisoformat(doc["last_sync"]).astimezone(UTC)
        except (KeyError, TypeError, ValueError) as exc:
            return self._unreadable(Loaded(), f"unusable: {exc}", now_ms)
        for name, (burn_s, energy_wh, faults) in totals.items():
            lamps[name].burn_total_s, lamps[name].energy_total_wh, lamps[name].faults = burn_s, energy_wh, faults
        pushed = doc.get("programs")
        if pushed is None:
            return loaded
        if doc.get("config_programs") != fingerprint(self.config.programs):
            # the program files changed since the push: the technician's newer files win
            loaded.events.append(Event(CABINET_DEVICE, now_ms, "programs_push_superseded", Severity.INFO,
                                       {"reason": "the configured program files changed after the last push"}))
            return loaded
        try:
            programs = parse_program_set(pushed, "saved push", self.config.limits)
            check_calendars(programs, self.config.groups)
        except LightingError as exc:
            return self._unreadable(loaded, f"saved programs refused: {exc}", now_ms)
        loaded.programs = programs
        return loaded

    def _unreadable(self, loaded: Loaded, reason: str, now_ms: int) -> Loaded:
        with contextlib.suppress(OSError):
            self.path.replace(self.path.with_name(self.path.name + ".bad"))
        log.error("lighting state %s %s; starting from the configured programs", self.path, reason)
        loaded.events.append(Event(CABINET_DEVICE, now_ms, "lighting_state_lost", Severity.MAJOR,
                                   {"file": str(self.path), "reason": reason}))
        return loaded
