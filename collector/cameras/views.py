"""Camera health folded from the uploaded events and newest samples: pure, no I/O.

A fault is open from its event until its `_cleared` from the same camera (and the same stream or
event source, when it names one). A cabinet whose `cameras_dark` is open shows all its cameras
dark. A camera's status is the worst of: dark, unreachable, faulty (any other open fault), ok.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

from collector.cameras.store import IDENTIFIED, CameraEventRow, CameraSite

CLEARED = "_cleared"
DARK = "cameras_dark"
UNREACHABLE = "camera_unreachable"
SAMPLE_KEYS = ("reachable", "streams", "streams_ok", "clock_drift_s", "firmware", "model", "manufacturer")


@dataclass
class CameraView:
    gateway: str
    commune: str
    cabinet: str | None
    device: str
    identity: dict[str, Any] = field(default_factory=dict)
    faults: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)

    def status(self, dark: bool) -> str:
        if dark:
            return "dark"
        if any(code == UNREACHABLE for code, _ in self.faults):
            return "unreachable"
        return "faulty" if self.faults else "ok"


@dataclass
class CabinetView:
    gateway: str
    commune: str
    cabinet: str | None
    dark_since_ms: int | None = None


def _detail(raw: str | None) -> dict[str, Any]:
    if not raw:
        return {}
    value = orjson.loads(raw)
    return value if isinstance(value, dict) else {}


def _qualifier(detail: Mapping[str, Any]) -> str:
    return str(detail.get("stream") or detail.get("source") or "")


def fold(rows: Iterable[CameraEventRow]) -> tuple[dict[tuple[str, str], CameraView], dict[str, CabinetView]]:
    """Cameras (by gateway and device) and cabinets (by gateway) from their events, oldest first."""
    cams: dict[tuple[str, str], CameraView] = {}
    cabinets: dict[str, CabinetView] = {}
    for r in rows:
        cab = cabinets.setdefault(r.gateway, CabinetView(r.gateway, r.commune, r.cabinet))
        detail = _detail(r.detail)
        if r.code == DARK:
            cab.dark_since_ms = int(detail.get("since_ms", r.ts_ms))
            continue
        if r.code == DARK + CLEARED:
            cab.dark_since_ms = None
            continue
        cam = cams.setdefault((r.gateway, r.device), CameraView(r.gateway, r.commune, r.cabinet, r.device))
        if r.code == IDENTIFIED:
            cam.identity = {k: detail[k] for k in ("manufacturer", "model", "firmware") if k in detail}
        elif r.code == "camera_firmware_changed":
            cam.identity["firmware"] = detail.get("to")
        elif r.code.endswith(CLEARED):
            cam.faults.pop((r.code.removesuffix(CLEARED), _qualifier(detail)), None)
        else:
            cam.faults[(r.code, _qualifier(detail))] = {
                "code": r.code, "severity": r.severity, "since_ms": r.ts_ms,
                **{k: detail[k] for k in ("stream", "rtsp_status", "expected", "found", "drift_s", "source", "reason")
                   if k in detail}}
    return cams, cabinets


def camera_doc(cam: CameraView, dark: bool, latest: tuple[int, dict[str, Any]] | None,
               site: CameraSite | None) -> dict[str, Any]:
    """One camera as the operators' API answers it (its place included: operators only)."""
    values = latest[1] if latest else {}
    status = cam.status(dark)
    if status == "ok" and values.get("reachable") is False:
        status = "unreachable"  # its newest sample says so, before (or without) its own event
    return {
        "gateway": cam.gateway, "commune": cam.commune, "cabinet": cam.cabinet, "device": cam.device,
        "status": status,
        "faults": sorted(cam.faults.values(), key=lambda f: f["since_ms"]),
        "firmware": values.get("firmware", cam.identity.get("firmware")),
        "model": values.get("model", cam.identity.get("model")),
        "manufacturer": values.get("manufacturer", cam.identity.get("manufacturer")),
        "clock_drift_s": values.get("clock_drift_s"),
        "streams": values.get("streams"), "streams_ok": values.get("streams_ok"),
        "last_sample_ms": latest[0] if latest else None,
        "location": None if site is None else {"text": site.location, "lat": site.lat, "lon": site.lon},
    }
