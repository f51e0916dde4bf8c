"""The cameras' places (migration 10 of both engines) and the queries of camera health.

Health is read from what the agents uploaded: a camera is a device that sent `camera_identified`
(found through the events' code index), its faults are its `camera_*` events and their
`_cleared`, its firmware and clock drift its newest sample. The one table is `camera_site`: where
each camera stands, written by operators (the agent never uploads a camera's location). It is
read by the operators' routes only: never by open data, NGSI or any public page.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from collector.sqlprims import SqlPrimitives, marks

_TABLES = """
CREATE TABLE camera_site (
    gateway    TEXT    NOT NULL,
    device     TEXT    NOT NULL,
    location   TEXT    NOT NULL,   -- as operators name the place ("Carrefour Jaurès, mât 3")
    lat        {real},
    lon        {real},
    updated_ms BIGINT  NOT NULL,
    updated_by TEXT,               -- the operator who wrote it
    PRIMARY KEY (gateway, device)
);
"""
SQLITE_MIGRATION = _TABLES.format(real="REAL")
PG_MIGRATION = _TABLES.format(real="DOUBLE PRECISION")

IDENTIFIED = "camera_identified"
#: every code the camera view reads (each fault and its `_cleared`); an IN list keeps to the code index
FAULT_CODES = ("camera_unreachable", "cameras_dark", "camera_stream_unavailable", "camera_stream_changed",
               "camera_clock_drift", "camera_onvif_failure", "camera_tampering", "camera_scene_change",
               "camera_defocus", "camera_video_loss", "camera_storage_failure")
CODES = (IDENTIFIED, "camera_firmware_changed", *FAULT_CODES, *(c + "_cleared" for c in FAULT_CODES))


@dataclass(frozen=True, slots=True)
class CameraEventRow:
    gateway: str
    commune: str
    cabinet: str | None
    device: str
    ts_ms: int
    code: str
    severity: str
    detail: str | None  # JSON, as stored


@dataclass(frozen=True, slots=True)
class CameraSite:
    gateway: str
    device: str
    location: str
    lat: float | None
    lon: float | None
    updated_ms: int
    updated_by: str | None


class CameraStore(Protocol):
    async def camera_events(self, since_ms: int, gateways: Sequence[str] | None = None) -> list[CameraEventRow]:
        """Every camera event since `since_ms` (of these gateways, or all), oldest first."""

    async def camera_sites(self) -> dict[tuple[str, str], CameraSite]: ...

    async def set_camera_site(self, site: CameraSite) -> None: ...


class CameraQueries(SqlPrimitives):
    """CameraStore over the engine primitives."""

    async def camera_events(self, since_ms: int, gateways: Sequence[str] | None = None) -> list[CameraEventRow]:
        args: list[Any] = [since_ms, *CODES]
        clause = ""
        if gateways is not None:
            if not gateways:
                return []
            clause = f" AND g.name IN ({marks(len(args) + 1, len(gateways))})"
            args += list(gateways)
        rows = await self._ctl_rows(
            "SELECT g.name, g.commune, g.cabinet, e.device, e.ts_ms, e.code, e.severity, e.detail FROM events e"
            " JOIN gateways g ON g.id = e.gateway_id"
            f" WHERE e.ts_ms >= $1 AND e.code IN ({marks(2, len(CODES))}){clause} AND g.removed_ms IS NULL"
            " ORDER BY e.ts_ms, e.id",
            *args)
        return [CameraEventRow(str(r[0]), str(r[1]), r[2], str(r[3]), int(r[4]), str(r[5]), str(r[6]),
                               None if r[7] is None else str(r[7])) for r in rows]

    async def camera_sites(self) -> dict[tuple[str, str], CameraSite]:
        rows = await self._ctl_rows(
            "SELECT gateway, device, location, lat, lon, updated_ms, updated_by FROM camera_site")
        return {(str(r[0]), str(r[1])): CameraSite(str(r[0]), str(r[1]), str(r[2]), r[3], r[4], int(r[5]), r[6])
                for r in rows}

    async def set_camera_site(self, site: CameraSite) -> None:
        await self._ctl_exec(
            "INSERT INTO camera_site (gateway, device, location, lat, lon, updated_ms, updated_by)"
            " VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (gateway, device) DO UPDATE SET"
            " location = excluded.location, lat = excluded.lat, lon = excluded.lon,"
            " updated_ms = excluded.updated_ms, updated_by = excluded.updated_by",
            site.gateway, site.device, site.location, site.lat, site.lon, site.updated_ms, site.updated_by)
