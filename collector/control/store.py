"""The control plane's part of the collector store: presence, alarm log, command audit, operators,
MQTT credentials. Both stores (SQLite and PostgreSQL) carry it, through their migrations.

The queries are written once (`$n` parameters, SQL both engines run) over four primitives each
engine provides (collector.control.engines), so the two stores cannot drift apart.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

import orjson

from citygate_wire.mqtt import Ack, Alarm, Command
from collector.control.model import ALARM_ACTIONS, AlarmRow, CommandRow, Delivery, DueDelivery, Presence
from collector.errors import CollectorError
from collector.sqlprims import SqlPrimitives, counted_page_sql, marks, page_rows

#: migration 14: the reason an operator gave for a command (traffic commands must give one)
REASON_MIGRATION = "ALTER TABLE commands ADD COLUMN reason TEXT"


class OperatorExists(CollectorError):
    def __init__(self, name: str) -> None:
        super().__init__(f"an operator named {name!r} already exists")
        self.name = name


class ControlStore(Protocol):
    async def add_operator(self, name: str, token_hash: str, now_ms: int) -> None:
        """Register an operator; raise OperatorExists if the name is taken."""

    async def operator_for_token(self, token_hash: str) -> str | None: ...

    async def set_mqtt_password(self, gateway_id: int, password_hash: str, now_ms: int) -> None:
        """Keep the Mosquitto hash of a gateway's token (the MQTT password is the token itself)."""

    async def mqtt_passwords(self) -> list[tuple[str, str]]:
        """(gateway name, Mosquitto hash) of every gateway that has one."""

    async def record_state(self, gateway_id: int, online: bool, topic_commune: str, state: bytes, now_ms: int) -> None:
        """The gateway's latest state message; `since_ms` moves only when `online` changes."""

    async def presence(self) -> list[Presence]:
        """Every registered gateway, heard of or not, by name."""

    async def presence_page(self, limit: int, offset: int) -> tuple[list[Presence], int]:
        """The `limit` gateways from `offset` on of presence()'s list, and how many it holds."""

    async def record_alarm(self, gateway_id: int, alarm: Alarm, now_ms: int) -> bool:
        """Log an alarm once (a QoS 1 duplicate is ignored); True if new."""

    async def alarms(self, *, status: str | None = None, gateway: str | None = None, limit: int = 100,
                     before: tuple[int, int] | None = None) -> list[AlarmRow]:
        """Newest first (received, then id); `before` (received_ms, id): only the alarms after it in that order."""

    async def alarm(self, alarm_id: int) -> AlarmRow | None: ...

    async def update_alarm(self, alarm_id: int, action: str, operator: str, note: str | None,
                           now_ms: int) -> AlarmRow | None:
        """Acknowledge (open -> acknowledged) or clear (open|acknowledged -> cleared); None if not allowed now."""

    async def add_command(self, cmd: Command, target: str, gateway_ids: Sequence[int],
                          reason: str | None = None) -> None:
        """Audit a command (with the operator's reason) and queue one delivery per gateway, in one transaction."""

    async def command(self, command_id: str) -> CommandRow | None: ...

    async def commands(self, limit: int = 100, before: tuple[int, str] | None = None) -> list[CommandRow]:
        """The audit log, newest first (issued, then id); `before` (issued_at_ms, id): only the commands after it."""

    async def last_logins(self) -> dict[str, int]:
        """Operator name -> when it last logged in (the audit of its logins); absent if never."""

    async def due_deliveries(self, now_ms: int, resend_before_ms: int, limit: int = 500) -> list[tuple[int, DueDelivery]]:
        """(gateway id, delivery) of unanswered, unexpired deliveries never sent or last sent before the bound."""

    async def mark_sent(self, sent: Sequence[tuple[str, int]], now_ms: int) -> None:
        """(command id, gateway id) deliveries just published, in one transaction."""

    async def record_ack(self, gateway_id: int, ack: Ack, now_ms: int) -> bool:
        """A gateway's answer; the first one counts. False if there was no open delivery for it."""

    async def expire_deliveries(self, expired_before_ms: int) -> int:
        """Deliveries of commands expired before the bound, still unanswered: `unanswered`. How many."""


def _json(value: Any) -> dict[str, Any]:
    if value is None:
        return {}
    parsed = orjson.loads(value)
    return parsed if isinstance(parsed, dict) else {}


_ALARM_COLS = ("a.id, g.name, a.alarm_id, a.device, a.ts_ms, a.code, a.severity, a.detail, a.received_ms, a.status,"
               " a.acked_by, a.acked_ms, a.cleared_by, a.cleared_ms, a.note")
_DELIVERY_COLS = ("d.command_id, g.name, d.status, d.sends, d.last_sent_ms, d.answered_ms, d.code, d.reason,"
                  " d.result")
_COMMAND_COLS = "id, action, args, target, issued_by, issued_at_ms, expires_at_ms, reason"


_PRESENCE_COLS = "g.name, g.commune, p.online, p.since_ms, p.updated_ms, p.state"
#: a page of presence()'s list: its gateways' page first (an index scan by name), then their presence
_PRESENCE_PAGE = counted_page_sql(_PRESENCE_COLS, "gateways", "removed_ms IS NULL", "name",
                                  " LEFT JOIN presence p ON p.gateway_id = g.id")


def _presence(r: Sequence[Any]) -> Presence:
    return Presence(r[0], r[1], None if r[2] is None else bool(r[2]), r[3], r[4], _json(r[5]))


def _alarm(r: Sequence[Any]) -> AlarmRow:
    return AlarmRow(r[0], r[1], r[2], r[3], r[4], r[5], r[6], _json(r[7]), r[8], r[9], r[10], r[11], r[12], r[13],
                    r[14])


def _delivery(r: Sequence[Any]) -> Delivery:
    return Delivery(r[1], r[2], r[3], r[4], r[5], r[6], r[7], _json(r[8]))


class ControlQueries(SqlPrimitives):
    """ControlStore written once over the engine's primitives (see collector.control.engines)."""

    # -- operators and MQTT credentials ---------------------------------------------------------

    async def add_operator(self, name: str, token_hash: str, now_ms: int) -> None:
        try:
            await self._ctl_exec("INSERT INTO operators (name, token_hash, created_ms) VALUES ($1, $2, $3)",
                                 name, token_hash, now_ms)
        except Exception as exc:
            if self._ctl_unique_violation(exc):
                raise OperatorExists(name) from None
            raise

    async def operator_for_token(self, token_hash: str) -> str | None:
        rows = await self._ctl_rows("SELECT name FROM operators WHERE token_hash = $1", token_hash)
        return str(rows[0][0]) if rows else None

    async def set_mqtt_password(self, gateway_id: int, password_hash: str, now_ms: int) -> None:
        await self._ctl_exec(
            "INSERT INTO mqtt_credentials (gateway_id, password_hash, created_ms) VALUES ($1, $2, $3)"
            " ON CONFLICT (gateway_id) DO UPDATE SET password_hash = excluded.password_hash,"
            " created_ms = excluded.created_ms",
            gateway_id, password_hash, now_ms,
        )

    async def mqtt_passwords(self) -> list[tuple[str, str]]:
        rows = await self._ctl_rows(
            "SELECT g.name, m.password_hash FROM mqtt_credentials m JOIN gateways g ON g.id = m.gateway_id"
            " ORDER BY g.name"
        )
        return [(r[0], r[1]) for r in rows]

    # -- presence -------------------------------------------------------------------------------

    async def record_state(self, gateway_id: int, online: bool, topic_commune: str, state: bytes, now_ms: int) -> None:
        await self._ctl_exec(
            "INSERT INTO presence (gateway_id, online, since_ms, updated_ms, topic_commune, state)"
            " VALUES ($1, $2, $3, $3, $4, $5)"
            " ON CONFLICT (gateway_id) DO UPDATE SET"
            " since_ms = CASE WHEN presence.online = excluded.online THEN presence.since_ms ELSE excluded.since_ms END,"
            " online = excluded.online, updated_ms = excluded.updated_ms,"
            " topic_commune = excluded.topic_commune, state = excluded.state",
            gateway_id, int(online), now_ms, topic_commune, state.decode(),
        )

    async def presence(self) -> list[Presence]:
        rows = await self._ctl_rows(
            f"SELECT {_PRESENCE_COLS} FROM gateways g LEFT JOIN presence p ON p.gateway_id = g.id"
            " WHERE g.removed_ms IS NULL ORDER BY g.name"
        )
        return [_presence(r) for r in rows]

    async def presence_page(self, limit: int, offset: int) -> tuple[list[Presence], int]:
        rows, total = page_rows(await self._ctl_rows(_PRESENCE_PAGE, limit, offset))
        return [_presence(r) for r in rows], total

    # -- alarms ---------------------------------------------------------------------------------

    async def record_alarm(self, gateway_id: int, alarm: Alarm, now_ms: int) -> bool:
        n = await self._ctl_exec(
            "INSERT INTO alarms (gateway_id, alarm_id, device, ts_ms, code, severity, detail, received_ms, status)"
            " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'open') ON CONFLICT (gateway_id, alarm_id) DO NOTHING",
            gateway_id, alarm.id, alarm.device, alarm.ts_ms, alarm.code, alarm.severity,
            orjson.dumps(alarm.detail, default=str).decode(), now_ms,
        )
        return n == 1

    async def alarms(self, *, status: str | None = None, gateway: str | None = None, limit: int = 100,
                     before: tuple[int, int] | None = None) -> list[AlarmRow]:
        where: list[str] = []
        args: list[Any] = []
        if before is not None:
            args += before
            where.append(f"(a.received_ms < ${len(args) - 1} OR (a.received_ms = ${len(args) - 1} AND a.id < ${len(args)}))")
        if status is not None:
            args.append(status)
            where.append(f"a.status = ${len(args)}")
        if gateway is not None:
            args.append(gateway)
            where.append(f"g.name = ${len(args)}")
        args.append(limit)
        clause = f"WHERE {' AND '.join(where)}" if where else ""
        rows = await self._ctl_rows(
            f"SELECT {_ALARM_COLS} FROM alarms a JOIN gateways g ON g.id = a.gateway_id {clause}"
            f" ORDER BY a.received_ms DESC, a.id DESC LIMIT ${len(args)}",
            *args,
        )
        return [_alarm(r) for r in rows]

    async def alarm(self, alarm_id: int) -> AlarmRow | None:
        rows = await self._ctl_rows(
            f"SELECT {_ALARM_COLS} FROM alarms a JOIN gateways g ON g.id = a.gateway_id WHERE a.id = $1", alarm_id
        )
        return _alarm(rows[0]) if rows else None

    async def update_alarm(self, alarm_id: int, action: str, operator: str, note: str | None,
                           now_ms: int) -> AlarmRow | None:
        status = ALARM_ACTIONS[action]
        if action == "acknowledge":
            sql = ("UPDATE alarms SET status = 'acknowledged', acked_by = $2, acked_ms = $3, note = COALESCE($4, note)"
                   " WHERE id = $1 AND status = 'open'")
        else:
            sql = ("UPDATE alarms SET status = 'cleared', cleared_by = $2, cleared_ms = $3, note = COALESCE($4, note)"
                   " WHERE id = $1 AND status IN ('open', 'acknowledged')")
        changed = await self._ctl_exec(sql, alarm_id, operator, now_ms, note)
        row = await self.alarm(alarm_id)
        return row if changed and row is not None and row.status == status else None

    # -- commands -------------------------------------------------------------------------------

    async def add_command(self, cmd: Command, target: str, gateway_ids: Sequence[int],
                          reason: str | None = None) -> None:
        statements: list[tuple[str, Sequence[Any]]] = [(
            f"INSERT INTO commands ({_COMMAND_COLS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            (cmd.id, cmd.action, orjson.dumps(cmd.args).decode(), target, cmd.issued_by, cmd.issued_at_ms,
             cmd.expires_at_ms, reason),
        )]
        statements += [
            ("INSERT INTO command_deliveries (command_id, gateway_id, status, sends) VALUES ($1, $2, 'pending', 0)",
             (cmd.id, gid))
            for gid in gateway_ids
        ]
        await self._ctl_atomic(statements)

    async def _deliveries(self, ids: Sequence[str]) -> dict[str, list[Delivery]]:
        if not ids:
            return {}
        rows = await self._ctl_rows(
            f"SELECT {_DELIVERY_COLS} FROM command_deliveries d JOIN gateways g ON g.id = d.gateway_id"
            f" WHERE d.command_id IN ({marks(1, len(ids))}) ORDER BY g.name",
            *ids,
        )
        out: dict[str, list[Delivery]] = {i: [] for i in ids}
        for r in rows:
            out[r[0]].append(_delivery(r))
        return out

    def _command(self, r: Sequence[Any], deliveries: list[Delivery]) -> CommandRow:
        return CommandRow(r[0], r[1], _json(r[2]), r[3], r[4], r[5], r[6], deliveries, r[7])

    async def command(self, command_id: str) -> CommandRow | None:
        rows = await self._ctl_rows(f"SELECT {_COMMAND_COLS} FROM commands WHERE id = $1", command_id)
        if not rows:
            return None
        return self._command(rows[0], (await self._deliveries([command_id]))[command_id])

    async def commands(self, limit: int = 100, before: tuple[int, str] | None = None) -> list[CommandRow]:
        after = "" if before is None else "WHERE issued_at_ms < $2 OR (issued_at_ms = $2 AND id < $3) "
        rows = await self._ctl_rows(
            f"SELECT {_COMMAND_COLS} FROM commands {after}ORDER BY issued_at_ms DESC, id DESC LIMIT $1",
            limit, *(before or ()),
        )
        deliveries = await self._deliveries([r[0] for r in rows])
        return [self._command(r, deliveries[r[0]]) for r in rows]

    async def last_logins(self) -> dict[str, int]:
        rows = await self._ctl_rows(
            "SELECT target, MAX(at_ms) FROM audit_log WHERE action = 'operator.login' GROUP BY target")
        return {str(r[0]): int(r[1]) for r in rows}

    async def due_deliveries(self, now_ms: int, resend_before_ms: int, limit: int = 500) -> list[tuple[int, DueDelivery]]:
        rows = await self._ctl_rows(
            "SELECT d.gateway_id, c.id, g.name, g.commune, c.action, c.args, c.issued_by, c.issued_at_ms,"
            " c.expires_at_ms FROM command_deliveries d JOIN commands c ON c.id = d.command_id"
            " JOIN gateways g ON g.id = d.gateway_id"
            " WHERE d.status IN ('pending', 'sent') AND c.expires_at_ms > $1"
            " AND (d.last_sent_ms IS NULL OR d.last_sent_ms <= $2)"
            " ORDER BY c.issued_at_ms, c.id LIMIT $3",
            now_ms, resend_before_ms, limit,
        )
        return [(r[0], DueDelivery(r[1], r[2], r[3], r[4], _json(r[5]), r[6], r[7], r[8])) for r in rows]

    async def mark_sent(self, sent: Sequence[tuple[str, int]], now_ms: int) -> None:
        sql = ("UPDATE command_deliveries SET status = 'sent', sends = sends + 1, last_sent_ms = $3"
               " WHERE command_id = $1 AND gateway_id = $2 AND status IN ('pending', 'sent')")
        await self._ctl_atomic([(sql, (command_id, gateway_id, now_ms)) for command_id, gateway_id in sent])

    async def record_ack(self, gateway_id: int, ack: Ack, now_ms: int) -> bool:
        # a late answer after `unanswered` still tells the truth, so it is taken too
        n = await self._ctl_exec(
            "UPDATE command_deliveries SET status = $3, code = $4, reason = $5, result = $6, answered_ms = $7"
            " WHERE command_id = $1 AND gateway_id = $2 AND status IN ('pending', 'sent', 'unanswered')",
            ack.id, gateway_id, ack.status, ack.code, ack.reason,
            orjson.dumps(ack.result, default=str).decode(), now_ms,
        )
        return n == 1

    async def expire_deliveries(self, expired_before_ms: int) -> int:
        return await self._ctl_exec(
            "UPDATE command_deliveries SET status = 'unanswered' WHERE status IN ('pending', 'sent')"
            " AND command_id IN (SELECT id FROM commands WHERE expires_at_ms <= $1)",
            expired_before_ms,
        )
