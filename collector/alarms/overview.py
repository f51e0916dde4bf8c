"""The active alarms as the overview's summary lists and counts them (collector/dashboard/data.py calls
`overview_alarms`): one row per alarm (a lost bus once, not once a lamp), so its per-commune counts are
those of /api/v1/alarms and of the map."""

from __future__ import annotations

from typing import Any

from citygate_wire.common import now_ms
from collector.alarms.model import Filters
from collector.store import Store

#: active alarms the summary takes; more than a metropolis has open at once
MOST = 5000


async def overview_alarms(store: Store) -> list[dict[str, Any]]:
    """Open and acknowledged alarms, the most severe and latest first, in the summary's row shape
    (gateway, commune, device, ts_ms, code, severity, status, detail) with the alarm's id and devices."""
    alarms, _, _ = await store.list_alarms(Filters(limit=MOST), now_ms())
    return [{"id": a.id, "gateway": a.gateway, "commune": a.commune,
             "device": a.first_device or "",
             "ts_ms": a.first_ts_ms, "code": a.code, "severity": a.severity, "status": a.state,
             "devices_total": a.devices_total, "devices_active": a.devices_active, "detail": dict(a.detail)}
            for a in alarms]
