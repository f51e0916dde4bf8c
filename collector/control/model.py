"""Typed rows of the control plane (presence, alarms, commands, deliveries); the HTTP layer makes JSON of them."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

#: Deliveries still waiting for the gateway's answer; the others are final.
OPEN_DELIVERY = ("pending", "sent")
#: What an operator may do to an alarm, and the status it leads to.
ALARM_ACTIONS = {"acknowledge": "acknowledged", "clear": "cleared"}
ALARM_STATUSES = ("open", "acknowledged", "cleared")


@dataclass(frozen=True, slots=True)
class Presence:
    gateway: str
    commune: str  # the registry's (current) commune
    online: bool | None  # None: never heard of on MQTT
    since_ms: int | None  # when `online` last changed, collector's clock
    updated_ms: int | None  # last state message received
    state: Mapping[str, Any] = field(default_factory=dict)  # the last state message as sent

    def stale(self, now_ms: int) -> bool:
        """Online by its last word, but silent for three of its own state intervals (a broker that lost it)."""
        if not self.online or self.updated_ms is None:
            return False
        interval = self.state.get("interval_s") or 60
        return now_ms - self.updated_ms > 3 * interval * 1000

    def as_json(self, now_ms: int) -> dict[str, Any]:
        return {"gateway": self.gateway, "commune": self.commune, "online": self.online, "stale": self.stale(now_ms),
                "since_ms": self.since_ms, "updated_ms": self.updated_ms, "state": dict(self.state)}


@dataclass(frozen=True, slots=True)
class AlarmRow:
    id: int
    gateway: str
    alarm_id: str  # the gateway's id of it
    device: str
    ts_ms: int
    code: str
    severity: str
    detail: Mapping[str, Any]
    received_ms: int
    status: str  # open | acknowledged | cleared
    acked_by: str | None = None
    acked_ms: int | None = None
    cleared_by: str | None = None
    cleared_ms: int | None = None
    note: str | None = None

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id, "gateway": self.gateway, "alarm_id": self.alarm_id, "device": self.device,
            "ts_ms": self.ts_ms, "code": self.code, "severity": self.severity, "detail": dict(self.detail),
            "received_ms": self.received_ms, "status": self.status, "acknowledged_by": self.acked_by,
            "acknowledged_ms": self.acked_ms, "cleared_by": self.cleared_by, "cleared_ms": self.cleared_ms,
            "note": self.note,
        }


@dataclass(frozen=True, slots=True)
class Delivery:
    """One gateway's copy of a command, and its answer."""

    gateway: str
    status: str  # pending | sent | accepted | done | refused | failed | unanswered
    sends: int = 0
    last_sent_ms: int | None = None
    answered_ms: int | None = None
    code: str | None = None
    reason: str | None = None
    result: Mapping[str, Any] = field(default_factory=dict)

    @property
    def final(self) -> bool:
        return self.status not in OPEN_DELIVERY

    def as_json(self) -> dict[str, Any]:
        return {"gateway": self.gateway, "status": self.status, "sends": self.sends, "last_sent_ms": self.last_sent_ms,
                "answered_ms": self.answered_ms, "code": self.code, "reason": self.reason, "result": dict(self.result)}


@dataclass(frozen=True, slots=True)
class CommandRow:
    """An audited command: who, when, what, to whom, and each gateway's result."""

    id: str
    action: str
    args: Mapping[str, Any]
    target: str  # "gateway:NAME" or "commune:INSEE"
    issued_by: str
    issued_at_ms: int
    expires_at_ms: int
    deliveries: list[Delivery] = field(default_factory=list)
    reason: str | None = None  # the operator's, as given (traffic commands need one)

    @property
    def final(self) -> bool:
        return all(d.final for d in self.deliveries)

    def as_json(self) -> dict[str, Any]:
        counts: dict[str, int] = {}
        for d in self.deliveries:
            counts[d.status] = counts.get(d.status, 0) + 1
        return {
            "id": self.id, "action": self.action, "args": dict(self.args), "target": self.target,
            "issued_by": self.issued_by, "issued_at_ms": self.issued_at_ms, "expires_at_ms": self.expires_at_ms,
            "reason": self.reason, "final": self.final, "counts": counts,
            "deliveries": [d.as_json() for d in self.deliveries],
        }


@dataclass(frozen=True, slots=True)
class DueDelivery:
    """A delivery the link must (re)send now."""

    command_id: str
    gateway: str
    commune: str
    action: str
    args: Mapping[str, Any]
    issued_by: str
    issued_at_ms: int
    expires_at_ms: int
