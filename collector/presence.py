"""Presence written without loss: state messages collected and written in one transaction.

The MQTT link (collector.control.link) hands every state message, a retained state or a Last
Will, to a PresenceWriter, which writes what arrived in the last `max_delay_s` (or `max_messages`
of them) in one transaction. After a collector restart the broker sends every gateway's retained
state at once, and a mass power cut fires every gateway's Will at once: one commit a message
(450-900 a second) let the broker's queue for the collector overflow, and the overflow was
dropped (bench/bench_presence.py). Per gateway the messages are applied in the order they arrived,
as one commit each would have: the newest wins, and `since_ms` moves only when `online` changed,
to the time of the message that changed it.

A state that comes late never replaces a newer one: the broker sends a message again when the
instance that had it died before acknowledging it (collector.control.link acknowledges after
the commit), and with several instances another one may have stored the gateway's next word
meanwhile.

A message with a `session` (the epoch of the gateway's MQTT connection, in its states and in the
Will set at that connect; it increases from one connection to the next) is ordered by (session,
rank) against a stored one that has a session too: a later session always wins, an earlier one
never replaces a later one; within a session states go by `ts_ms`, and the session's Will (no
`ts_ms`) comes after all of them. So a Will that waited at the broker and comes after the
gateway's next connection was written changes nothing, and neither does a state of a connection
written after that connection's Will. Within a session a stored time more than
`CLOCK_SET_BACK_MS` ahead of the new message's receipt is the gateway's clock set back: the new
state is written.

When either side has no session (an older gateway's messages), the rule by time alone: a state
with `ts_ms` (the gateway's clock) is written only if it is not older than the stored one's
`ts_ms`, or, if a Last Will is stored, than the time the Will was received (the Will ends the
connection whose states came before it). A Will has no time of its own and is always written. A
state that the same link received after the gateway's Will (`after_will`: the broker keeps one
publisher's messages in order) is written whatever its time: a Will queued while the collector
was down is received late, after the states of the gateway's next connection were published. A
stored time more than `CLOCK_SET_BACK_MS` ahead of the new message's receipt is the gateway's
clock set back: the new state is written. What this cannot order (no session): a Will written
after the gateway's next connection's state by another instance, a state written after its
connection's Will by another instance.

Each message may carry `done`, called once it is written (or refused): the link's PUBACK.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import re
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

from collector.sqlprims import SqlPrimitives

#: presence rows written by one statement (6 parameters each: within both engines' limits)
_ROWS_PER_STATEMENT = 500
_UPSERT_HEAD = "INSERT INTO presence (gateway_id, online, since_ms, updated_ms, topic_commune, state) VALUES "
#: a stored state's time this far ahead of a new message's receipt is a gateway clock that was set back
CLOCK_SET_BACK_MS = 60_000
_SET_BACK = f"TS_MS(presence.state) > excluded.updated_ms + {CLOCK_SET_BACK_MS}"
_BOTH_SESSIONS = "SESSION(excluded.state) IS NOT NULL AND SESSION(presence.state) IS NOT NULL"
#: (session, rank) order: a later session wins; within one, ts_ms, and its Will (no ts_ms) after every state
_BY_SESSION = (
    "SESSION(excluded.state) > SESSION(presence.state)"
    " OR (SESSION(excluded.state) = SESSION(presence.state) AND (TS_MS(excluded.state) IS NULL"
    f" OR TS_MS(excluded.state) >= TS_MS(presence.state) OR {_SET_BACK}))"
)
#: when either side has no session: by time alone (see the module's doc)
_BY_TIME = (
    "TS_MS(excluded.state) IS NULL"
    " OR TS_MS(excluded.state) >= COALESCE(TS_MS(presence.state), presence.updated_ms)"
    f" OR COALESCE(TS_MS(presence.state), presence.updated_ms) > excluded.updated_ms + {CLOCK_SET_BACK_MS}"
)
_UPSERT_SET = (
    " ON CONFLICT (gateway_id) DO UPDATE SET"
    " since_ms = CASE WHEN presence.online = excluded.online THEN presence.since_ms ELSE excluded.since_ms END,"
    " online = excluded.online, updated_ms = excluded.updated_ms,"
    " topic_commune = excluded.topic_commune, state = excluded.state"
)
# a late state never replaces a newer word (see the module's doc); TS_MS() and SESSION() are each engine's JSON read
_UPSERT_TAIL = f"{_UPSERT_SET} WHERE CASE WHEN {_BOTH_SESSIONS} THEN {_BY_SESSION} ELSE {_BY_TIME} END"
#: a run the link received right after the gateway's Will: only the session order may refuse it
_UPSERT_TAIL_AFTER_WILL = f"{_UPSERT_SET} WHERE CASE WHEN {_BOTH_SESSIONS} THEN {_BY_SESSION} ELSE TRUE END"
_JSON_READ = re.compile(r"(TS_MS|SESSION)\((\w+)\.state\)")
_JSON_READ_OF = {
    "sqlite": {"TS_MS": "json_extract({}.state, '$.ts_ms')", "SESSION": "json_extract({}.state, '$.session')"},
    "postgres": {"TS_MS": "({}.state::json ->> 'ts_ms')::bigint", "SESSION": "({}.state::json ->> 'session')::bigint"},
}
Statements = Sequence[tuple[str, Sequence[Any]]]


@dataclass(frozen=True, slots=True)
class StateMessage:
    """One state message as the link received it (already decoded and checked against its topic)."""

    gateway_id: int
    online: bool
    topic_commune: str
    payload: bytes
    received_ms: int
    #: called once the message is written or refused (the link acknowledges it to the broker then)
    done: Callable[[], None] | None = field(default=None, compare=False)
    #: the link received it right after the gateway's Will: it follows that Will, whatever its time
    after_will: bool = False
    #: (session, rank) when it has a session (_order), read from the payload once, when it is made
    order: tuple[int, float] | None = field(init=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "order", _order(self.payload))


def _order(payload: bytes) -> tuple[int, float] | None:
    """(session, rank) of a state message that has a session: rank is ts_ms, a Will's (none) after all of them."""
    try:
        doc = orjson.loads(payload)
    except orjson.JSONDecodeError:
        return None
    session = doc.get("session") if type(doc) is dict else None
    if type(session) is not int:
        return None
    ts = doc.get("ts_ms")
    return session, ts if type(ts) is int else math.inf


def _follows(new: StateMessage, kept: StateMessage) -> bool:
    """Whether `new` replaces `kept`, the message a run keeps: by (session, rank) when both have a
    session, otherwise the one that came last (as one commit a message would leave it)."""
    a, b = new.order, kept.order
    return a is None or b is None or a >= b


@dataclass(frozen=True, slots=True)
class _Run:
    """Consecutive messages of one gateway with the same `online`: the latest of them (_follows) is what stays."""

    first_ms: int
    last: StateMessage
    after_will: bool


def presence_rounds(messages: Sequence[StateMessage]) -> list[list[_Run]]:
    """The writes that leave the table as one message at a time would: round k holds the k-th run
    of every gateway (almost always one round: a gateway rarely flips twice within a flush)."""
    runs: dict[int, list[_Run]] = {}
    for m in messages:
        mine = runs.setdefault(m.gateway_id, [])
        if mine and mine[-1].last.online == m.online:
            if _follows(m, mine[-1].last):
                mine[-1] = _Run(mine[-1].first_ms, m, mine[-1].after_will)
        else:
            mine.append(_Run(m.received_ms, m, m.after_will))
    depth = max((len(r) for r in runs.values()), default=0)
    return [[r[k] for r in runs.values() if len(r) > k] for k in range(depth)]


def presence_statements(messages: Sequence[StateMessage]) -> list[tuple[str, list[Any]]]:
    """Multi-row upserts (`$n` parameters, both engines) that write `messages` in arrival order."""
    statements: list[tuple[str, list[Any]]] = []
    for round_ in presence_rounds(messages):
        for after_will in (False, True):
            runs = [r for r in round_ if r.after_will == after_will]
            tail = _UPSERT_TAIL_AFTER_WILL if after_will else _UPSERT_TAIL
            for start in range(0, len(runs), _ROWS_PER_STATEMENT):
                chunk = runs[start:start + _ROWS_PER_STATEMENT]
                args: list[Any] = []
                for run in chunk:
                    m = run.last
                    args += [m.gateway_id, int(m.online), run.first_ms, m.received_ms, m.topic_commune,
                             m.payload.decode()]
                rows = ", ".join("(" + ", ".join(f"${i * 6 + j}" for j in range(1, 7)) + ")" for i in range(len(chunk)))
                statements.append((_UPSERT_HEAD + rows + tail, args))
    return statements


async def write_presence(store: object, statements: Statements) -> None:
    """Run `statements` in one transaction of `store` (either engine's)."""
    if not isinstance(store, SqlPrimitives):
        raise TypeError(f"{type(store).__name__} has no SQL primitives")
    engine = "sqlite" if str(getattr(store, "url", "")).startswith("sqlite:") else "postgres"
    reads = _JSON_READ_OF[engine]
    await store._ctl_atomic([(_JSON_READ.sub(lambda r: reads[r[1]].format(r[2]), sql), args)
                             for sql, args in statements])


class PresenceWriter:
    """Collects state messages and writes them together.

    `write(statements)` runs the statements in one transaction (through the link's
    wait-while-the-database-is-unavailable wrapper); if a flush fails for the data itself, its
    messages are written one by one through `write_one`, so that only the bad one is refused
    (`on_refused`), as before batching.
    """

    def __init__(self, write: Callable[[Statements], Awaitable[None]],
                 write_one: Callable[[StateMessage], Awaitable[None]],
                 on_refused: Callable[[StateMessage, BaseException], None],
                 *, max_delay_s: float = 0.05, max_messages: int = 2000) -> None:
        self._write = write
        self._write_one = write_one
        self._on_refused = on_refused
        self.max_delay_s = max_delay_s
        self.max_messages = max_messages
        self._pending: list[StateMessage] = []
        self._arrived = asyncio.Event()
        self._full = asyncio.Event()
        self._lock = asyncio.Lock()
        #: messages written, and the transactions that wrote them (one a flush)
        self.written = 0
        self.flushes = 0

    @property
    def pending(self) -> int:
        return len(self._pending)

    def add(self, message: StateMessage) -> None:
        self._pending.append(message)
        self._arrived.set()
        if len(self._pending) >= self.max_messages:
            self._full.set()

    async def run(self) -> None:
        """Flush for ever. A cancellation ends it: what it held was not acknowledged, so the broker
        sends it again when the link connects."""
        while True:
            await self._arrived.wait()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.max_delay_s):
                    await self._full.wait()
            await self.flush()

    async def flush(self) -> None:
        """Write what is pending; when it returns, every message added before the call is written
        (the link calls it before it stores an alarm or an ack: what arrived first is stored first)."""
        async with self._lock:
            await self._flush()

    async def _flush(self) -> None:
        messages, self._pending = self._pending, []
        self._arrived.clear()
        self._full.clear()
        if not messages:
            return
        try:
            await self._write(presence_statements(messages))
        except Exception:
            for m in messages:
                try:
                    await self._write_one(m)
                except Exception as exc:
                    self._on_refused(m, exc)
        self.written += len(messages)
        self.flushes += 1
        for m in messages:
            if m.done is not None:
                m.done()
