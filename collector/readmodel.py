"""Read queries over the ingested data for the control-centre page, open data and residents' reports.

- Open lamp faults: a lamp whose latest `lamp_failure` event has no later `lamp_restored`
  event clearing it (the agent's lighting service emits both).
- Alarms seen in uploads: major/critical events of the last hours not followed by their
  clearing event (`<code>_cleared`, or `lamp_restored` naming the code) from the same device.
- Energy per commune or gateway between two hour buckets, from the hour rollups.
- Devices as the rollups left them (device_state) and their latest sample.
- Lighting groups (open data): the agent's `group:<name>` pseudo-devices and their latest
  `group_level` event (level, program); a lamp's group from the `group` its fault events name.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import orjson

from collector.rollup import ALARM_SEVERITIES, FAULT_CODE
from collector.sqlprims import SqlPrimitives, marks

RESTORED = "lamp_restored"
GROUP_LEVEL = "group_level"
GROUP_PREFIX = "group:"
LATEST_BATCH = 500  # devices per statement: well under both engines' parameter limits
#: the lamp-fault query reads these codes through this index instead of scanning every event
INDEX_MIGRATION = "CREATE INDEX events_by_code ON events (code, gateway_id, device, ts_ms)"


def _json(raw: Any) -> dict[str, Any]:
    if raw is None:
        return {}
    value = orjson.loads(raw)
    return value if isinstance(value, dict) else {}


@dataclass(frozen=True, slots=True)
class LampFault:
    gateway: str
    commune: str
    device: str
    since_ms: int
    detail: Mapping[str, Any]

    def as_json(self) -> dict[str, Any]:
        return {"gateway": self.gateway, "commune": self.commune, "device": self.device, "since_ms": self.since_ms,
                "detail": dict(self.detail)}


@dataclass(frozen=True, slots=True)
class EventAlarm:
    gateway: str
    commune: str
    device: str
    ts_ms: int
    code: str
    severity: str
    detail: Mapping[str, Any]

    def as_json(self) -> dict[str, Any]:
        return {"gateway": self.gateway, "commune": self.commune, "device": self.device, "ts_ms": self.ts_ms,
                "code": self.code, "severity": self.severity, "detail": dict(self.detail)}


@dataclass(frozen=True, slots=True)
class DeviceRow:
    gateway: str
    commune: str
    cabinet: str | None
    lat: float | None
    lon: float | None
    device: str
    last_ts_ms: int | None
    energy_wh: float | None
    volume_m3: float | None
    lamp_on: bool | None


class ReadModel(Protocol):
    async def open_lamp_faults(self, gateway: str | None = None) -> list[LampFault]:
        """Oldest first."""

    async def open_event_alarms(self, since_ms: int) -> list[EventAlarm]:
        """Newest first."""

    async def energy_wh_by(self, level: str, first_hour: int, last_hour: int) -> dict[str, float]:
        """Energy per commune (level "commune") or per gateway name (level "gateway") over hour buckets."""

    async def devices(self, gateway: str | None = None, *, kind: str | None = None, limit: int = 1000,
                      offset: int = 0, after: tuple[str, str] | None = None) -> list[DeviceRow]:
        """Devices by gateway and name; kind "lamp" (reports lamp_on), "water" (reports volume_m3), "group"
        (a lighting group: `group:<name>`) or "device" (anything but a group). `after` (gateway, device):
        the rows after that one (keyset paging)."""

    async def lighting_gateways(self) -> set[str]:
        """Gateways with a lamp or a lighting group."""

    async def latest_event(self, gateway: str, device: str, code: str) -> tuple[int, dict[str, Any]] | None:
        """(ts_ms, detail) of the device's newest event of that code."""

    async def lamp_groups(self) -> dict[tuple[str, str], str]:
        """(gateway, lamp) -> the group its newest fault event names."""

    async def event_devices(self, code: str, since_ms: int) -> set[tuple[str, str]]:
        """(gateway, device) of the events of that code since then."""

    async def latest_values(self, gateway: str, devices: Sequence[str]) -> dict[str, tuple[int, dict[str, Any]]]:
        """Each device's newest sample: (ts_ms, values)."""

    async def gateway_energy_wh(self) -> dict[str, float]:
        """Energy each gateway's devices used since metering started (sum of its day rollups)."""


class ReadModelQueries(SqlPrimitives):
    async def open_lamp_faults(self, gateway: str | None = None) -> list[LampFault]:
        args: list[Any] = [FAULT_CODE, RESTORED]
        clause = ""
        if gateway is not None:
            args.append(gateway)
            clause = " AND g.name = $3"
        rows = await self._ctl_rows(
            "SELECT g.name, g.commune, e.device, e.ts_ms, e.code, e.detail FROM events e"
            " JOIN gateways g ON g.id = e.gateway_id"
            f" WHERE e.code IN ($1, $2){clause} AND g.removed_ms IS NULL ORDER BY e.gateway_id, e.device, e.ts_ms, e.id",
            *args,
        )
        latest: dict[tuple[str, str], LampFault | None] = {}
        for name, commune, device, ts_ms, code, raw in rows:
            detail = _json(raw)
            if code == FAULT_CODE:
                if latest.get((name, device)) is None:
                    latest[(name, device)] = LampFault(name, commune, device, int(ts_ms), detail)
            elif detail.get("cleared", FAULT_CODE) == FAULT_CODE:
                latest[(name, device)] = None
        return sorted((f for f in latest.values() if f is not None), key=lambda f: (f.since_ms, f.gateway, f.device))

    async def open_event_alarms(self, since_ms: int) -> list[EventAlarm]:
        severities = sorted(ALARM_SEVERITIES)
        rows = await self._ctl_rows(
            "SELECT g.name, g.commune, e.device, e.ts_ms, e.code, e.severity, e.detail FROM events e"
            " JOIN gateways g ON g.id = e.gateway_id"
            f" WHERE e.ts_ms >= $1 AND g.removed_ms IS NULL AND (e.severity IN ({marks(2, len(severities))})"
            f" OR e.code LIKE '%\\_cleared' ESCAPE '\\' OR e.code = ${2 + len(severities)})"
            " ORDER BY e.ts_ms, e.id",
            since_ms, *severities, RESTORED,
        )
        open_: dict[tuple[str, str, str], EventAlarm] = {}
        for name, commune, device, ts_ms, code, severity, raw in rows:
            detail = _json(raw)
            if code == RESTORED:
                open_.pop((name, device, str(detail.get("cleared", FAULT_CODE))), None)
            elif code.endswith("_cleared") and severity not in ALARM_SEVERITIES:
                open_.pop((name, device, code.removesuffix("_cleared")), None)
            else:
                open_[(name, device, code)] = EventAlarm(name, commune, device, int(ts_ms), code, severity, detail)
        return sorted(open_.values(), key=lambda a: a.ts_ms, reverse=True)

    async def energy_wh_by(self, level: str, first_hour: int, last_hour: int) -> dict[str, float]:
        if level == "commune":
            sql = ("SELECT commune, SUM(energy_wh) FROM rollup_commune_hour WHERE bucket BETWEEN $1 AND $2"
                   " GROUP BY commune")
        else:
            sql = ("SELECT g.name, SUM(r.energy_wh) FROM rollup_gateway_hour r JOIN gateways g ON g.id = r.gateway_id"
                   " WHERE r.bucket BETWEEN $1 AND $2 GROUP BY g.name")
        return {str(k): float(v) for k, v in await self._ctl_rows(sql, first_hour, last_hour)}

    async def devices(self, gateway: str | None = None, *, kind: str | None = None, limit: int = 1000,
                      offset: int = 0, after: tuple[str, str] | None = None) -> list[DeviceRow]:
        where: list[str] = []
        args: list[Any] = []
        if gateway is not None:
            args.append(gateway)
            where.append(f"g.name = ${len(args)}")
        if after is not None:
            args += list(after)
            where.append(f"(g.name > ${len(args) - 1} OR (g.name = ${len(args) - 1} AND d.device > ${len(args)}))")
        if kind == "lamp":
            where.append("d.lamp_on IS NOT NULL")
        elif kind == "water":
            where.append("d.volume_m3 IS NOT NULL")
        elif kind in ("group", "device"):
            args.append(GROUP_PREFIX)
            where.append(f"substr(d.device, 1, {len(GROUP_PREFIX)}) {'=' if kind == 'group' else '<>'} ${len(args)}")
        args += [limit, offset]
        clause = f"WHERE {' AND '.join(where)}" if where else ""
        rows = await self._ctl_rows(
            "SELECT g.name, g.commune, g.cabinet, g.lat, g.lon, d.device, d.last_ts_ms, d.energy_wh, d.volume_m3,"
            f" d.lamp_on FROM device_state d JOIN gateways g ON g.id = d.gateway_id {clause}"
            f" ORDER BY g.name, d.device LIMIT ${len(args) - 1} OFFSET ${len(args)}",
            *args,
        )
        return [DeviceRow(r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7], r[8], None if r[9] is None else bool(r[9]))
                for r in rows]

    async def latest_values(self, gateway: str, devices: Sequence[str]) -> dict[str, tuple[int, dict[str, Any]]]:
        # one statement for many devices, each newest sample an index seek (samples_by_device): a page of
        # 500 lamps was 500 round trips, and a GROUP BY would read every sample the devices ever sent
        pick = ("FROM samples s WHERE s.gateway_id = d.gateway_id AND s.device = d.device"
                " ORDER BY s.ts_ms DESC, s.seq DESC LIMIT 1")
        out: dict[str, tuple[int, dict[str, Any]]] = {}
        for start in range(0, len(devices), LATEST_BATCH):
            part = list(devices[start:start + LATEST_BATCH])
            rows = await self._ctl_rows(
                f"SELECT d.device, (SELECT s.ts_ms {pick}), (SELECT s.vals {pick}) FROM device_state d"
                f" JOIN gateways g ON g.id = d.gateway_id WHERE g.name = $1 AND d.device IN ({marks(2, len(part))})",
                gateway, *part,
            )
            out.update((str(device), (int(ts), _json(vals))) for device, ts, vals in rows if ts is not None)
        return out

    async def gateway_energy_wh(self) -> dict[str, float]:
        rows = await self._ctl_rows(
            "SELECT g.name, SUM(r.energy_wh) FROM rollup_gateway_day r JOIN gateways g ON g.id = r.gateway_id"
            " GROUP BY g.name"
        )
        return {str(k): float(v) for k, v in rows}

    async def lighting_gateways(self) -> set[str]:
        rows = await self._ctl_rows(
            "SELECT DISTINCT g.name FROM device_state d JOIN gateways g ON g.id = d.gateway_id"
            f" WHERE d.lamp_on IS NOT NULL OR substr(d.device, 1, {len(GROUP_PREFIX)}) = $1", GROUP_PREFIX)
        return {str(r[0]) for r in rows}

    async def latest_event(self, gateway: str, device: str, code: str) -> tuple[int, dict[str, Any]] | None:
        rows = await self._ctl_rows(
            "SELECT e.ts_ms, e.detail FROM events e JOIN gateways g ON g.id = e.gateway_id"
            " WHERE e.code = $1 AND g.name = $2 AND e.device = $3 ORDER BY e.ts_ms DESC, e.id DESC LIMIT 1",
            code, gateway, device)
        return (int(rows[0][0]), _json(rows[0][1])) if rows else None

    async def lamp_groups(self) -> dict[tuple[str, str], str]:
        rows = await self._ctl_rows(
            "SELECT g.name, e.device, e.detail FROM events e JOIN gateways g ON g.id = e.gateway_id"
            " WHERE e.code IN ($1, $2) ORDER BY e.ts_ms, e.id", FAULT_CODE, RESTORED)
        out: dict[tuple[str, str], str] = {}
        for name, device, raw in rows:
            group = _json(raw).get("group")
            if isinstance(group, str) and group:
                out[(name, device)] = group
        return out

    async def event_devices(self, code: str, since_ms: int) -> set[tuple[str, str]]:
        rows = await self._ctl_rows(
            "SELECT DISTINCT g.name, e.device FROM events e JOIN gateways g ON g.id = e.gateway_id"
            " WHERE e.code = $1 AND e.ts_ms >= $2", code, since_ms)
        return {(str(r[0]), str(r[1])) for r in rows}
