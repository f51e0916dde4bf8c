"""What the API and the CLI share to send a command: who may send which action, which need a
reason, the command checked as its gateway will check it, and the gateways a target names."""

from __future__ import annotations

import uuid
from typing import Any

from citygate_wire.common import now_ms
from citygate_wire.mqtt import Command, decode_command, encode_command
from collector.credentials import LEVELS
from collector.errors import CollectorError
from collector.store import Store
from collector.territory import Territory

VIEWER, OPERATOR, SUPERVISOR = LEVELS

#: the rank an action needs: the lamps, a device's reading and the agent's log level an operator,
#: the signals a supervisor (every action a gateway takes: citygate_wire.mqtt.ACTIONS)
ACTION_RANK = {
    "lighting.override": OPERATOR,
    "lighting.clear_override": OPERATOR,
    "lighting.push_programs": OPERATOR,
    "device.read": OPERATOR,
    "agent.set_log_level": OPERATOR,
    "traffic.select_plan": SUPERVISOR,
    "traffic.set_position": SUPERVISOR,
}
#: actions whose operator must say why (kept with the command, shown in its audit)
REASON_NEEDED = frozenset({"traffic.select_plan", "traffic.set_position"})
MAX_REASON = 500


class TargetError(CollectorError):
    """A gateway or commune that names no gateway to send to; `kind` is the problem type, `pointer` the member."""

    def __init__(self, kind: str, pointer: str, message: str) -> None:
        super().__init__(message)
        self.kind, self.pointer = kind, pointer


def new_command(who: str, action: str, args: dict[str, Any], valid_s: float) -> Command:
    """A command of `who`, valid `valid_s` from now; WireError (naming the member) exactly where the
    gateway would refuse it."""
    issued = now_ms()
    cmd = Command(uuid.uuid4().hex, action, args, issued, issued + int(valid_s * 1000), who)
    decode_command(encode_command(cmd))  # exactly the gateway's own check
    return cmd


async def resolve_targets(store: Store, territory: Territory | None, gateway: str | None,
                          commune: str | None) -> tuple[str, list[int]]:
    """("gateway:NAME" | "commune:INSEE", the gateways' ids) of exactly one of `gateway` and `commune`
    (a former commune's code resolves to its current one); TargetError otherwise."""
    if (gateway is None) == (commune is None):
        raise TargetError("invalid-command", "", "give exactly one of gateway or commune")
    if gateway is not None:
        found = await store.gateway(gateway)
        if found is None:
            raise TargetError("unknown-gateway", "/gateway", f"no gateway named {gateway[:100]!r}")
        return f"gateway:{found.name}", [found.id]
    assert commune is not None and territory is not None, "a commune needs the territory"
    resolved = territory.resolve(commune)
    if resolved is None:
        raise TargetError("unknown-commune", "/commune", f"{commune[:100]!r} is no commune of the territory")
    ids = [i.gateway.id for i in await store.gateways() if i.gateway.commune == resolved.insee]
    if not ids:
        raise TargetError("no-gateway", "/commune", f"no gateway is registered in {resolved.insee} {resolved.name}")
    return f"commune:{resolved.insee}", ids
