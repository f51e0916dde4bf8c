"""What an alarm is for an operator, and the rules that fold raw alarms and events into alarms.

A raw alarm is one device's major or critical event, as the MQTT alarm log received it or as an
upload carried it (the agent sends the same journalled event both ways). An operator's alarm is
one *cause*:

- **Occurrence.** A raw alarm or clearing event is known by (gateway, device, code, ts_ms): the
  same event received twice, on MQTT and in an upload, or as a QoS 1 duplicate, is one
  occurrence and is folded once.
- **Grouping.** A raising occurrence joins the newest alarm that is not cleared with the same
  gateway, code and scope (the `bus` its detail names, if any) when its time lies within
  GROUP_WINDOW_MS of the alarm's occurrences (from `first_ts_ms - window` to `last_ts_ms +
  window`): a cabinet whose bus is lost, each lamp raising `communication_failure` within a
  poll cycle or two, is ONE alarm listing its N devices. Otherwise it opens a new alarm. A
  device already in the alarm that raises again after it was restored is active again.
- **Clearing.** An `X_cleared` event clears code X of its device; `lamp_restored` clears the
  code its detail names (`cleared`, lamp_failure by default); any other `S_restored` clears the
  codes starting `S_` (`communication_restored` clears `communication_failure`,
  `clock_restored` clears `clock_unsynchronised`). A clearing event older than the device's
  latest raise is stale and changes nothing. When every device of an alarm is restored the alarm
  clears itself (`cleared_how` "restored"), keeping its history and duration.
- **States.** open -> acknowledged -> cleared; an operator may clear an open or acknowledged
  alarm by hand (with a comment), assign it to an operator, and comment on it at any time.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

#: the CHANGES topic of any change of an alarm (the page's stream sends it as a `change` event)
TOPIC = "alarms"
#: raising occurrences this close (device clock) to an alarm's own join it
GROUP_WINDOW_MS = 5 * 60 * 1000
OPEN, ACKNOWLEDGED, CLEARED = "open", "acknowledged", "cleared"
STATES = (OPEN, ACKNOWLEDGED, CLEARED)
ACTIVE = (OPEN, ACKNOWLEDGED)
SEVERITIES = ("critical", "major")
SEVERITY_RANK = {"major": 1, "critical": 2}
RESTORED_LAMP = "lamp_restored"
DEFAULT_LAMP_FAULT = "lamp_failure"
#: longest comment an operator may write
MAX_COMMENT = 1000


def raises(code: str, severity: str) -> bool:
    """Whether an event of this code and severity raises an alarm."""
    return severity in SEVERITY_RANK and not clears_pattern(code, {})[1]


def clears_pattern(code: str, detail: Mapping[str, Any]) -> tuple[str, bool]:
    """(what it clears, exact) for a clearing event; ("", False) if the code clears nothing.
    exact: the code it clears; otherwise a prefix of the codes it clears."""
    if code == RESTORED_LAMP:
        cleared = detail.get("cleared")
        return (cleared if isinstance(cleared, str) and cleared else DEFAULT_LAMP_FAULT), True
    if code.endswith("_cleared") and len(code) > len("_cleared"):
        return code.removesuffix("_cleared"), True
    if code.endswith("_restored") and len(code) > len("_restored"):
        return code.removesuffix("restored"), False
    return "", False


def clears(code: str, detail: Mapping[str, Any], alarm_code: str) -> bool:
    target, exact = clears_pattern(code, detail)
    if not target:
        return False
    return alarm_code == target if exact else alarm_code.startswith(target) and alarm_code != code


def scope_of(detail: Mapping[str, Any]) -> str:
    """The part of a cause below the gateway: the bus a raw alarm names, if it names one."""
    bus = detail.get("bus")
    return bus[:100] if isinstance(bus, str) else ""


@dataclass(frozen=True, slots=True)
class Occurrence:
    """One raw alarm or clearing event, from either source."""

    gateway_id: int
    device: str
    code: str
    severity: str
    ts_ms: int
    detail: Mapping[str, Any]
    source: str  # "mqtt" | "upload"

    @property
    def key(self) -> tuple[int, str, str, int]:
        return self.gateway_id, self.device, self.code, self.ts_ms


@dataclass(frozen=True, slots=True)
class AlarmDevice:
    device: str
    first_ts_ms: int
    raised_ts_ms: int  # its latest raise
    restored_ts_ms: int | None  # None: still failing

    def as_json(self) -> dict[str, Any]:
        return {"device": self.device, "first_ts_ms": self.first_ts_ms, "raised_ts_ms": self.raised_ts_ms,
                "restored_ts_ms": self.restored_ts_ms, "active": self.restored_ts_ms is None}


@dataclass(frozen=True, slots=True)
class HistoryEntry:
    """A raise or a clearing of one device, as received."""

    ts_ms: int
    device: str
    code: str
    kind: str  # raise | clear
    source: str  # mqtt | upload
    received_ms: int

    def as_json(self) -> dict[str, Any]:
        return {"ts_ms": self.ts_ms, "device": self.device, "code": self.code, "kind": self.kind,
                "source": self.source, "received_ms": self.received_ms}


@dataclass(frozen=True, slots=True)
class AuditEntry:
    at_ms: int
    actor: str
    action: str  # alarm.acknowledge | alarm.assign | alarm.comment | alarm.clear
    detail: str

    @property
    def operator(self) -> str:
        return self.actor.partition(":")[2] or self.actor

    def as_json(self) -> dict[str, Any]:
        return {"at_ms": self.at_ms, "actor": self.actor, "operator": self.operator,
                "action": self.action.removeprefix("alarm."), "detail": self.detail}


@dataclass(frozen=True, slots=True)
class Alarm:
    id: int
    gateway: str
    commune: str
    code: str
    scope: str
    severity: str
    state: str
    first_ts_ms: int
    last_ts_ms: int
    raised_ms: int  # when the collector opened it
    devices_total: int
    devices_active: int
    detail: Mapping[str, Any]
    assignee: str | None = None
    acked_by: str | None = None
    acked_ms: int | None = None
    cleared_ms: int | None = None
    cleared_by: str | None = None  # None with cleared_how "restored"
    cleared_how: str | None = None  # restored | manual
    ended_ts_ms: int | None = None  # the last restore (device clock), or the manual clear
    first_device: str | None = None  # by name: the one device of a single-device alarm
    devices: list[AlarmDevice] = field(default_factory=list)

    @property
    def duration_ms(self) -> int | None:
        return None if self.ended_ts_ms is None else max(0, self.ended_ts_ms - self.first_ts_ms)

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id, "gateway": self.gateway, "commune": self.commune, "kind": self.code,
            "scope": self.scope or None, "severity": self.severity, "state": self.state,
            "first_ts_ms": self.first_ts_ms, "last_ts_ms": self.last_ts_ms, "raised_ms": self.raised_ms,
            "devices_total": self.devices_total, "devices_active": self.devices_active, "device": self.first_device,
            "detail": dict(self.detail), "assignee": self.assignee, "acknowledged_by": self.acked_by,
            "acknowledged_ms": self.acked_ms, "cleared_ms": self.cleared_ms, "cleared_by": self.cleared_by,
            "cleared_how": self.cleared_how, "ended_ts_ms": self.ended_ts_ms, "duration_ms": self.duration_ms,
        }


@dataclass(frozen=True, slots=True)
class Filters:
    states: tuple[str, ...] = ACTIVE
    commune: str | None = None
    severity: str | None = None
    kind: str | None = None
    gateway: str | None = None
    limit: int = 50
    offset: int = 0
    #: gateways whose alarms the reader may not see (a police vehicle's, without the police role)
    hidden: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Counts:
    """Alarms matching the filters but one dimension each: per state, severity, commune and kind
    (the cleared ones counted over the last CLEARED_COUNT_MS only)."""

    state: dict[str, int]
    severity: dict[str, int]
    commune: dict[str, int]
    kind: dict[str, int]

    def as_json(self) -> dict[str, Any]:
        return {"state": self.state, "severity": self.severity, "commune": self.commune, "kind": self.kind}


class AlarmError(Exception):
    """An operator's action that cannot be done: `slug` and `status` for the API, the message for both."""

    def __init__(self, status: int, slug: str, message: str, state: str | None = None) -> None:
        super().__init__(message)
        self.status, self.slug, self.state = status, slug, state
