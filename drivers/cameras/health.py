"""Which faults are open, and the one event each opening and each closing deserves: no I/O, no clock.

A fault is keyed (camera, kind, qualifier): a stream path, an event topic. `open_fault` returns
an Event only when the fault was not already open, `clear` only when it was: one event per
camera and fault, never one per poll. Every closing event is the fault's code + `_cleared`,
which the collector uses to close the alarm.

The cabinet rule: a camera that stops answering waits `window_ms` before it is reported, to see
whether its neighbours follow; when every camera of the bus (two or more) is unreachable at once,
that is one `cameras_dark` event on the cabinet (likely its power or its network switch), and no
camera of it is reported alone. The first camera back clears it; one still silent then is
reported on its own after a new window.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from drivers.model import Event, Severity

UNREACHABLE = "camera_unreachable"
CABINET_DARK = "cameras_dark"
CLEARED = "_cleared"
#: open faults a camera may hold: each stream and event source is one, so a camera naming a new source in
#: every message cannot grow the agent's memory (and its faults file) without bound
MAX_OPEN = 64


@dataclass
class _Camera:
    down_since_ms: int | None = None  # declared unreachable (after the retries) at
    reported: bool = False  # its own camera_unreachable is out
    open: dict[tuple[str, str], Event] = field(default_factory=dict)  # (code, qualifier) -> opening event


class HealthJudge:
    def __init__(self, cabinet: str, cameras: list[str], window_ms: int) -> None:
        self.cabinet = cabinet
        self.window_ms = window_ms
        self.cams = {c: _Camera() for c in cameras}
        self.dark_since_ms: int | None = None

    # -- faults other than reachability ---------------------------------------------------------
    def open_fault(self, cam: str, code: str, severity: Severity, ts_ms: int, detail: Mapping[str, Any],
                   qualifier: str = "") -> Event | None:
        faults = self.cams[cam].open
        if (code, qualifier) in faults or len(faults) >= MAX_OPEN:
            return None
        faults[(code, qualifier)] = ev = Event(cam, ts_ms, code, severity, dict(detail))
        return ev

    def clear(self, cam: str, code: str, ts_ms: int, qualifier: str = "",
              detail: Mapping[str, Any] | None = None) -> Event | None:
        opened = self.cams[cam].open.pop((code, qualifier), None)
        if opened is None:
            return None
        out = dict(detail or {})
        out["since_ms"] = opened.ts_ms
        return Event(cam, ts_ms, code + CLEARED, Severity.INFO, out)

    def open_faults(self, cam: str) -> list[Event]:
        return list(self.cams[cam].open.values())

    # -- across a restart -----------------------------------------------------------------------
    def snapshot(self) -> dict[str, Any]:
        """What a restarted agent needs to close what is open: open faults, reported cameras, a dark cabinet."""
        return {"dark_since_ms": self.dark_since_ms, "cameras": {
            cam: {"down_since_ms": c.down_since_ms if c.reported else None,
                  "open": [[code, q, ev.ts_ms, str(ev.severity), dict(ev.detail)] for (code, q), ev in c.open.items()]}
            for cam, c in self.cams.items() if c.open or c.reported}}

    def restore(self, doc: Mapping[str, Any]) -> None:
        """Take a snapshot back; cameras no longer configured and malformed entries are left out."""
        dark = doc.get("dark_since_ms")
        self.dark_since_ms = dark if isinstance(dark, int) else None
        cams = doc.get("cameras")
        for cam, saved in (cams.items() if isinstance(cams, dict) else ()):
            c = self.cams.get(cam)
            if c is None or not isinstance(saved, dict):
                continue
            down = saved.get("down_since_ms")
            if isinstance(down, int):
                c.down_since_ms, c.reported = down, True
            for entry in saved.get("open", ()):
                if (isinstance(entry, list) and len(entry) == 5 and isinstance(entry[0], str)
                        and isinstance(entry[1], str) and isinstance(entry[2], int) and entry[3] in set(Severity)
                        and isinstance(entry[4], dict)):
                    code, q, ts, severity, detail = entry
                    c.open[(code, q)] = Event(cam, ts, code, Severity(severity), detail)

    # -- reachability and the cabinet rule ------------------------------------------------------
    def unreachable(self, cam: str, ts_ms: int) -> None:
        """The camera failed its retries: it waits the window before being reported."""
        c = self.cams[cam]
        if c.down_since_ms is None:
            c.down_since_ms = ts_ms

    def reachable(self, cam: str, ts_ms: int) -> list[Event]:
        c = self.cams[cam]
        out: list[Event] = []
        if self.dark_since_ms is not None:  # (also a dark cabinet restored after a restart)
            out.append(Event(self.cabinet, ts_ms, CABINET_DARK + CLEARED, Severity.INFO,
                             {"first_back": cam, "since_ms": self.dark_since_ms}))
            self.dark_since_ms = None
            for other in self.cams.values():  # the ones still silent get a window of their own
                if other.down_since_ms is not None and not other.reported:
                    other.down_since_ms = ts_ms
        if c.down_since_ms is None:
            return out
        if c.reported:
            out.append(Event(cam, ts_ms, UNREACHABLE + CLEARED, Severity.INFO, {"since_ms": c.down_since_ms}))
        c.down_since_ms, c.reported = None, False
        return out

    def is_down(self, cam: str) -> bool:
        return self.cams[cam].down_since_ms is not None

    def tick(self, ts_ms: int, reasons: Mapping[str, str]) -> list[Event]:
        """Called often: the cabinet event once all are down, else the lone cameras past their window."""
        down = {k: c for k, c in self.cams.items() if c.down_since_ms is not None}
        if len(self.cams) >= 2 and len(down) == len(self.cams):
            if self.dark_since_ms is not None:
                return []
            self.dark_since_ms = min(c.down_since_ms or ts_ms for c in down.values())
            return [Event(self.cabinet, ts_ms, CABINET_DARK, Severity.CRITICAL, {
                "cameras": len(down), "likely": "the cabinet's power or its network switch",
                "since_ms": self.dark_since_ms})]
        if self.dark_since_ms is not None:
            return []
        out = []
        for cam, c in down.items():
            if not c.reported and c.down_since_ms is not None and ts_ms - c.down_since_ms >= self.window_ms:
                c.reported = True
                out.append(Event(cam, ts_ms, UNREACHABLE, Severity.MAJOR,
                                 {"reason": reasons.get(cam, "no answer"), "since_ms": c.down_since_ms}))
        return out
