"""Feeding the collector's alarm sources the way production does: the MQTT alarm log (what the link
stores) and uploaded batches (what ingest stores), then folding them."""

from __future__ import annotations

import itertools
import secrets
from typing import Any

from citygate_wire.batch import decode_batch
from citygate_wire.common import now_ms
from citygate_wire.mqtt import Alarm as WireAlarm
from collector.alarms.fold import Fold
from collector.model import Gateway
from collector.store import Store
from collector.tokens import hash_token, new_token
from tests.collector.collector_testkit import batch_body

COMMUNE = "21231"  # Dijon
OTHER_COMMUNE = "21166"  # Chenôve


class Feed:
    """One store, its gateways, and the two sources of raw alarms."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.fold = Fold(store, settle_s=0)
        self.gateways: dict[str, Gateway] = {}
        self._seq: dict[str, itertools.count[int]] = {}
        self.t0 = now_ms() - 3600_000

    async def gateway(self, name: str, commune: str = COMMUNE) -> Gateway:
        if name not in self.gateways:
            self.gateways[name] = await self.store.add_gateway(name, commune, hash_token(new_token()))
            self._seq[name] = itertools.count(1)
        return self.gateways[name]

    def adopt(self, gateway: Gateway) -> None:
        """A gateway registered elsewhere (with its MQTT credential), fed from here."""
        self.gateways[gateway.name] = gateway
        self._seq[gateway.name] = itertools.count(1)

    async def mqtt(self, gateway: str, device: str, code: str, at_s: float, severity: str = "major",
                   alarm_id: str | None = None, **detail: Any) -> WireAlarm:
        """An alarm as the link records it from the broker (a given `alarm_id` repeats a delivery)."""
        gw = await self.gateway(gateway)
        alarm = WireAlarm(alarm_id or secrets.token_hex(8), device, self.t0 + int(at_s * 1000), code, severity,
                          detail)
        await self.store.record_alarm(gw.id, alarm, now_ms())
        return alarm

    async def upload(self, gateway: str, *events: tuple[str, str, float, str, dict[str, Any]]) -> None:
        """A batch of events (device, code, at_s, severity, detail) as ingest stores it."""
        gw = await self.gateway(gateway)
        records = [{"seq": next(self._seq[gateway]), "kind": "event", "device": device, "ts_ms": self.t0 + int(at * 1000),
                    "code": code, "severity": severity, "detail": detail}
                   for device, code, at, severity, detail in events]
        await self.store.ingest(gw, decode_batch(batch_body(gateway, records, gw.commune)).records)

    async def replay(self, gateway: str, seqs: range, *events: tuple[str, str, float, str, dict[str, Any]]) -> None:
        """The same records again (a batch the gateway sent twice: same seqs)."""
        gw = self.gateways[gateway]
        records = [{"seq": seq, "kind": "event", "device": device, "ts_ms": self.t0 + int(at * 1000),
                    "code": code, "severity": severity, "detail": detail}
                   for seq, (device, code, at, severity, detail) in zip(seqs, events, strict=True)]
        await self.store.ingest(gw, decode_batch(batch_body(gateway, records, gw.commune)).records)

    async def folded(self) -> bool:
        return await self.fold.catch_up()


def bus_lost(devices: list[str], at_s: float, spread_s: float = 20.0) -> list[tuple[str, str, float, str, dict[str, Any]]]:
    """Each lamp of a bus failing to answer, a poll apart."""
    return [(d, "communication_failure", at_s + i * spread_s / max(1, len(devices) - 1), "major",
             {"failures": 3, "kind": "timeout", "unit": i + 1}) for i, d in enumerate(devices)]


def bus_back(devices: list[str], at_s: float) -> list[tuple[str, str, float, str, dict[str, Any]]]:
    return [(d, "communication_restored", at_s + i, "info", {"failures": 5}) for i, d in enumerate(devices)]
