"""Which gateways are online, and how the collector knows.

With the MQTT control link running (`serve --mqtt-url`), presence is the gateways' retained
state and Last Will (collector.control): online unless it said offline, its will fired, or it
went silent for three of its state intervals. Without it, a gateway is online when its last
accepted batch is younger than the upload window (5 minutes by default; an agent uploads
every few seconds while it has readings).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from aiohttp import web

from collector.appkeys import LINK, STORE

DEFAULT_UPLOAD_WINDOW_MS = 5 * 60 * 1000
UPLOAD_WINDOW_MS = web.AppKey("online_upload_window_ms", int)
Source = Literal["mqtt", "uploads"]


@dataclass(frozen=True, slots=True)
class GatewayStatus:
    name: str
    commune: str
    cabinet: str | None
    lat: float | None
    lon: float | None
    online: bool
    last_seen_ms: int | None  # last accepted batch

    def as_json(self) -> dict[str, Any]:
        return {"name": self.name, "commune": self.commune, "cabinet": self.cabinet, "lat": self.lat,
                "lon": self.lon, "online": self.online, "last_seen_ms": self.last_seen_ms}


async def fleet(app: web.Application, now_ms: int) -> tuple[Source, list[GatewayStatus]]:
    store = app[STORE]
    infos = await store.gateways()
    if LINK in app:
        presence = {p.gateway: p for p in await store.presence()}
        online = {name: bool(p.online) and not p.stale(now_ms) for name, p in presence.items()}
        source: Source = "mqtt"
    else:
        window = app.get(UPLOAD_WINDOW_MS, DEFAULT_UPLOAD_WINDOW_MS)
        online = {i.gateway.name: i.last_seen_ms is not None and now_ms - i.last_seen_ms <= window for i in infos}
        source = "uploads"
    return source, [
        GatewayStatus(i.gateway.name, i.gateway.commune, i.gateway.cabinet, i.gateway.lat, i.gateway.lon,
                      online.get(i.gateway.name, False), i.last_seen_ms)
        for i in infos
    ]
