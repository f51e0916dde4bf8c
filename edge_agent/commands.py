"""Operator commands on the gateway: executed at most once, never late, each answered by one ack.

Only authentic commands come here (citygate_wire.mqtt.authenticate_command, in the control
link). The id of every command received is committed to SQLite (`commands.db` in the state dir)
*before* the command runs, with the ack once it is known. So a command delivered twice (QoS 1
redelivery, the collector resending after a lost ack, an agent restart in between, a replay by
whoever captured it) runs once, and every later copy is refused as `replayed`, with the first
ack inside (citygate_wire.mqtt.replay_ack) so that a collector that lost it still learns it. A command found without an ack at start-up was
cut by a crash or a power loss: it is not run again, its ack says `failed`/`interrupted`.

Validity is checked against the agent's clock on receipt and again just before running, so a
command that waited behind a slow one is refused rather than executed late.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections.abc import Awaitable, Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any, Protocol, runtime_checkable

import orjson

from citygate_wire.mqtt import Ack, Command, decode_ack, encode_ack, replay_ack
from drivers.base import Bus
from drivers.errors import DriverError
from edge_agent.clock import epoch_ms
from edge_agent.lighting.model import LightingError
from edge_agent.service import AgentContext, Lighting

log = logging.getLogger("citygate.commands")

#: Rows are kept this long after their command expired: a copy arriving later is refused as expired anyway.
KEEP_AFTER_EXPIRY_MS = 7 * 24 * 3600 * 1000
#: A command never runs longer than this, whatever its validity (a device that hangs must not block the queue).
MAX_RUN_S = 60.0

_SCHEMA = """
CREATE TABLE IF NOT EXISTS commands (
    id            TEXT PRIMARY KEY,
    action        TEXT NOT NULL,
    received_ms   INTEGER NOT NULL,
    expires_at_ms INTEGER NOT NULL,
    ack           BLOB,                       -- encoded ack once known; NULL while running
    published     INTEGER NOT NULL DEFAULT 0, -- 1 once the broker acknowledged the ack (PUBACK)
    replay        BLOB                        -- the ack to a copy received after the ack: sent instead
);
CREATE INDEX IF NOT EXISTS commands_unpublished ON commands(published) WHERE published = 0;
CREATE TABLE IF NOT EXISTS mqtt_session (
    one   INTEGER PRIMARY KEY CHECK (one = 1),
    epoch INTEGER NOT NULL                    -- the last MQTT connection's epoch (citygate_wire.mqtt.State.session)
);
"""


class CommandStore:
    """The dedupe and outbox table. `async with CommandStore(path) as store:`; writes are durable (FULL)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="commands")
        self._db: sqlite3.Connection | None = None

    async def __aenter__(self) -> CommandStore:
        await self._call(self._open)
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self._call(self._close)
        self._executor.shutdown(wait=True)

    async def _call(self, fn: Callable[..., Any], *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    def _open(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=FULL")
        db.executescript(_SCHEMA)
        if "replay" not in {row[1] for row in db.execute("PRAGMA table_info(commands)")}:
            db.execute("ALTER TABLE commands ADD COLUMN replay BLOB")  # a commands.db of an older agent
        self._db = db

    def _close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None

    def _require(self) -> sqlite3.Connection:
        if self._db is None:
            raise RuntimeError("command store is not open")
        return self._db

    async def interrupted(self, now_ms: int) -> int:
        """Give every command left without an ack (cut by a crash) a `failed` ack; return how many."""
        return int(await self._call(self._interrupted, now_ms))

    def _interrupted(self, now_ms: int) -> int:
        db = self._require()
        rows = db.execute("SELECT id FROM commands WHERE ack IS NULL").fetchall()
        for (cid,) in rows:
            ack = Ack(cid, "failed", now_ms, "interrupted",
                      "the agent stopped while running this command; it may be partly applied and is not run again")
            db.execute("UPDATE commands SET ack = ?, published = 0 WHERE id = ?", (encode_ack(ack), cid))
        return len(rows)

    async def receive(self, cmd_id: str, action: str, expires_at_ms: int, now_ms: int) -> tuple[bool, bytes | None]:
        """Record a command id. Returns (new, ack): new=True the first time (run it); else its ack so far.

        A known id with an ack gets a `replayed` refusal queued, the first ack inside (the sender
        may have lost it).
        """
        new, ack = await self._call(self._receive, cmd_id, action, expires_at_ms, now_ms)
        return bool(new), ack

    def _receive(self, cmd_id: str, action: str, expires_at_ms: int, now_ms: int) -> tuple[bool, bytes | None]:
        db = self._require()
        cur = db.execute(
            "INSERT OR IGNORE INTO commands(id, action, received_ms, expires_at_ms) VALUES (?, ?, ?, ?)",
            (cmd_id, action, now_ms, expires_at_ms),
        )
        if cur.rowcount == 1:
            return True, None
        row = db.execute("SELECT ack, received_ms FROM commands WHERE id = ?", (cmd_id,)).fetchone()
        if row[0] is not None:
            replay = encode_ack(replay_ack(decode_ack(row[0]), row[1], now_ms))
            db.execute("UPDATE commands SET replay = ?, published = 0 WHERE id = ?", (replay, cmd_id))
        return False, row[0]

    async def finish(self, ack: Ack) -> None:
        """Store a command's ack (once); it is then waiting to be published."""
        await self._call(self._finish, ack.id, encode_ack(ack))

    def _finish(self, cmd_id: str, body: bytes) -> None:
        self._require().execute("UPDATE commands SET ack = ?, published = 0 WHERE id = ? AND ack IS NULL",
                                (body, cmd_id))

    async def unpublished(self, limit: int = 100) -> list[tuple[str, bytes]]:
        return list(await self._call(self._unpublished, limit))

    def _unpublished(self, limit: int) -> list[tuple[str, bytes]]:
        rows = self._require().execute(
            "SELECT id, COALESCE(replay, ack) FROM commands WHERE published = 0 AND ack IS NOT NULL"
            " ORDER BY received_ms LIMIT ?",
            (limit,),
        )
        return [(cid, bytes(ack)) for cid, ack in rows]

    async def mark_published(self, cmd_id: str, ack: bytes) -> None:
        await self._call(self._mark_published, cmd_id, ack)

    def _mark_published(self, cmd_id: str, ack: bytes) -> None:
        # only the copy just sent: a repeat that asked for it again meanwhile keeps it queued
        self._require().execute("UPDATE commands SET published = 1 WHERE id = ? AND COALESCE(replay, ack) = ?",
                                (cmd_id, ack))

    async def ack_of(self, cmd_id: str) -> Ack | None:
        body = await self._call(self._ack_of, cmd_id)
        return None if body is None else decode_ack(body)

    def _ack_of(self, cmd_id: str) -> bytes | None:
        row = self._require().execute("SELECT ack FROM commands WHERE id = ?", (cmd_id,)).fetchone()
        return None if row is None or row[0] is None else bytes(row[0])

    async def next_session(self, now_ms: int) -> int:
        """The epoch of the MQTT connection about to be made, committed before it is used: the last
        one + 1, or `now_ms` if that is more. So it increases from one connection to the next, across
        restarts and power cuts (durable, FULL) and a clock set back; the wall clock keeps it ahead of
        what a lost state directory had given out."""
        return int(await self._call(self._next_session, now_ms))

    def _next_session(self, now_ms: int) -> int:
        db = self._require()
        row = db.execute("SELECT epoch FROM mqtt_session").fetchone()
        epoch = max(now_ms, row[0] + 1 if row else 0)
        db.execute("INSERT INTO mqtt_session (one, epoch) VALUES (1, ?) ON CONFLICT (one) DO UPDATE SET epoch = ?",
                   (epoch, epoch))
        return epoch

    async def prune(self, now_ms: int) -> int:
        return int(await self._call(self._prune, now_ms))

    def _prune(self, now_ms: int) -> int:
        cur = self._require().execute(
            "DELETE FROM commands WHERE published = 1 AND expires_at_ms < ?", (now_ms - KEEP_AFTER_EXPIRY_MS,)
        )
        return cur.rowcount


class Refused(Exception):
    """The command is not carried out: nothing was changed. `code` is one of citygate_wire.mqtt.ACK_CODES."""

    def __init__(self, code: str, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


class Failed(Refused):
    """The command was tried and did not complete (a device did not answer)."""


Handler = Callable[[Command, AgentContext], Awaitable[tuple[str, dict[str, Any]]]]


def _bus_of(ctx: AgentContext, device: str) -> Bus:
    bus = ctx.bus_of(device)
    if bus is None:
        raise Refused("unavailable", f"no device {device!r} on this gateway")
    return bus


def _lighting(ctx: AgentContext) -> Lighting:
    svc = ctx.services.lighting
    if svc is None:
        raise Refused("unavailable", "this gateway runs no lighting service (no [lighting] section)")
    return svc


def _instant(ms_value: int) -> datetime:
    return datetime.fromtimestamp(ms_value / 1000, UTC)


def _lighting_target(args: Mapping[str, Any]) -> tuple[str, str]:
    kind = "group" if "group" in args else "lamp"
    return kind, str(args[kind])


async def _lighting_override(cmd: Command, ctx: AgentContext) -> tuple[str, dict[str, Any]]:
    svc = _lighting(ctx)
    a = cmd.args
    kind, target = _lighting_target(a)
    start = _instant(a["start_ms"]) if a.get("start_ms") is not None else None
    try:
        svc.set_override(target, int(a["level_pct"]), start, _instant(a["until_ms"]))
    except LightingError as exc:
        raise Refused("rejected", str(exc)) from None
    return "done", {kind: target, "level_pct": a["level_pct"], "until_ms": a["until_ms"]}


async def _lighting_clear(cmd: Command, ctx: AgentContext) -> tuple[str, dict[str, Any]]:
    svc = _lighting(ctx)
    kind, target = _lighting_target(cmd.args)
    try:
        had = svc.clear_override(target)
    except LightingError as exc:
        raise Refused("rejected", str(exc)) from None
    return "done", {kind: target, "had_override": had}


async def _lighting_push(cmd: Command, ctx: AgentContext) -> tuple[str, dict[str, Any]]:
    svc = _lighting(ctx)
    try:
        svc.push_programs(cmd.args)
    except LightingError as exc:
        # the lighting service swaps the set atomically: on refusal the previous one runs on
        raise Refused("rejected", str(exc)) from None
    return "done", {"programs": len(cmd.args.get("program", [])), "calendars": len(cmd.args.get("calendar", []))}


@runtime_checkable
class SignalsTarget(Protocol):
    """What the control link needs of a traffic signals bus (drivers.traffic.bus.SignalsBus): one controller."""

    async def select_plan(self, plan_id: int, *, timeout_s: int, expires_at: datetime) -> None: ...

    async def set_position(self, position: str, *, timeout_s: int, expires_at: datetime) -> None: ...


def _signals(ctx: AgentContext, controller: str) -> SignalsTarget:
    bus = _bus_of(ctx, controller)
    if not isinstance(bus, SignalsTarget):
        raise Refused("unavailable", f"{controller!r} (bus {bus.name}) is not a traffic signal controller")
    return bus


async def _signals_call(call: Awaitable[None]) -> None:
    # imported here: only a gateway with a signals bus loads the traffic driver
    from drivers.traffic.bus import CommandRefused

    try:
        await call
    except CommandRefused as exc:
        # expired on the way to the controller, unknown plan, controller in failure mode: nothing changed
        raise Refused("rejected", str(exc)) from None
    except DriverError as exc:
        raise Failed("device", str(exc)) from None


async def _traffic_plan(cmd: Command, ctx: AgentContext) -> tuple[str, dict[str, Any]]:
    a = cmd.args
    bus = _signals(ctx, a["controller"])
    await _signals_call(bus.select_plan(a["plan"], timeout_s=a["timeout_s"], expires_at=_instant(cmd.expires_at_ms)))
    # the controller switches plans at its next cycle boundary, not at once: accepted, not done
    return "accepted", {"controller": a["controller"], "plan": a["plan"], "timeout_s": a["timeout_s"]}


async def _traffic_position(cmd: Command, ctx: AgentContext) -> tuple[str, dict[str, Any]]:
    a = cmd.args
    bus = _signals(ctx, a["controller"])
    await _signals_call(bus.set_position(a["position"], timeout_s=a["timeout_s"],
                                         expires_at=_instant(cmd.expires_at_ms)))
    return "done", {"controller": a["controller"], "position": a["position"], "timeout_s": a["timeout_s"]}


async def _device_read(cmd: Command, ctx: AgentContext) -> tuple[str, dict[str, Any]]:
    device = cmd.args["device"]
    bus = _bus_of(ctx, device)
    try:
        sample = await bus.read(device)
    except DriverError as exc:
        raise Failed("device", str(exc)) from None
    ctx.emit(sample)
    return "done", {"device": sample.device, "ts_ms": sample.ts_ms, "values": dict(sample.values)}


async def _set_log_level(cmd: Command, ctx: AgentContext) -> tuple[str, dict[str, Any]]:
    name = cmd.args.get("logger") or ""
    logging.getLogger(name).setLevel(cmd.args["level"].upper())
    return "done", {"logger": name or "root", "level": cmd.args["level"]}


HANDLERS: dict[str, Handler] = {
    "lighting.override": _lighting_override,
    "lighting.clear_override": _lighting_clear,
    "lighting.push_programs": _lighting_push,
    "traffic.select_plan": _traffic_plan,
    "traffic.set_position": _traffic_position,
    "device.read": _device_read,
    "agent.set_log_level": _set_log_level,
}


class Executor:
    """Runs accepted commands one at a time, in arrival order, and stores each one's ack."""

    def __init__(self, ctx: AgentContext, store: CommandStore, on_ack: Callable[[], None]) -> None:
        self.ctx = ctx
        self.store = store
        self.on_ack = on_ack
        self.queue: asyncio.Queue[Command] = asyncio.Queue()
        self.executed = 0

    def now_ms(self) -> int:
        return epoch_ms(self.ctx.clock.now())

    async def receive(self, cmd: Command) -> None:
        """Record a new command and queue it; a repeated id is not run again, it is refused as replayed."""
        now = self.now_ms()
        new, ack = await self.store.receive(cmd.id, cmd.action, cmd.expires_at_ms, now)
        if not new:
            log.warning("command %s (%s) received again: %s", cmd.id, cmd.action,
                        "refused as replayed, with its first ack" if ack is not None else "still running")
            if ack is not None:
                self.on_ack()
            return
        if now >= cmd.expires_at_ms:
            await self._finish(Ack(cmd.id, "refused", now, "expired", _expired_reason(cmd, now)))
            return
        self.queue.put_nowait(cmd)

    async def refuse(self, cmd_id: str, action: str, code: str, reason: str) -> None:
        """An authentic command that cannot be taken (a body the agent cannot read): one refusal, kept."""
        now = self.now_ms()
        new, ack = await self.store.receive(cmd_id, action, now, now)
        if new:
            await self._finish(Ack(cmd_id, "refused", now, code, reason[:500]))
        elif ack is not None:
            self.on_ack()

    async def run(self) -> None:
        while True:
            cmd = await self.queue.get()
            await self._finish(await self.execute(cmd))

    async def execute(self, cmd: Command) -> Ack:
        now = self.now_ms()
        if now >= cmd.expires_at_ms:
            return Ack(cmd.id, "refused", now, "expired", _expired_reason(cmd, now))
        handler = HANDLERS.get(cmd.action)
        if handler is None:
            return Ack(cmd.id, "refused", now, "unsupported", f"this agent does not know {cmd.action!r}")
        budget = min(MAX_RUN_S, (cmd.expires_at_ms - now) / 1000)
        self.executed += 1
        try:
            async with asyncio.timeout(budget):
                status, result = await handler(cmd, self.ctx)
        except Failed as exc:
            return Ack(cmd.id, "failed", self.now_ms(), exc.code, exc.reason[:500])
        except Refused as exc:
            return Ack(cmd.id, "refused", self.now_ms(), exc.code, exc.reason[:500])
        except TimeoutError:
            return Ack(cmd.id, "failed", self.now_ms(), "device", f"did not complete within {budget:.1f} s")
        except Exception as exc:
            log.exception("command %s (%s) crashed", cmd.id, cmd.action)
            return Ack(cmd.id, "failed", self.now_ms(), "error", f"{type(exc).__name__}: {exc}"[:500])
        log.info("command %s (%s) by %s: %s", cmd.id, cmd.action, cmd.issued_by, status)
        return Ack(cmd.id, status, self.now_ms(), result=orjson.loads(orjson.dumps(result, default=str)))

    async def _finish(self, ack: Ack) -> None:
        if ack.status in ("refused", "failed"):
            log.warning("command %s %s (%s): %s", ack.id, ack.status, ack.code, ack.reason)
        await self.store.finish(ack)
        self.on_ack()


def _expired_reason(cmd: Command, now_ms: int) -> str:
    late = (now_ms - cmd.expires_at_ms) / 1000
    expired = datetime.fromtimestamp(cmd.expires_at_ms / 1000, UTC).isoformat(timespec="seconds")
    return f"expired at {expired}, {late:.1f} s ago by the gateway's clock"
