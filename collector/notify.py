"""Live updates between collector instances on one PostgreSQL: `LISTEN/NOTIFY` instead of a poll.

Each instance keeps one dedicated connection that LISTENs on the channel of its schema. What
changes in this instance (collector.live.Changes.notify: a batch ingested, a report moved) is
sent on it with `pg_notify`, the topics of what changed meanwhile in one notification, so a
storm of batches costs a notification per round trip, not per batch. A notification from another
instance wakes the streams of this one (Changes.wake), never sent on again; this instance's own
come back to it too and are ignored by the sender's backend pid.

While the connection is up the streams stop polling (Changes.polling is False); when it is lost,
they poll again until it is back, and every topic is woken once at the reconnection, since a
notification sent while nobody listened is not kept. SQLite has one collector, and no NOTIFY:
its streams poll as before.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import AsyncIterator

import asyncpg
from aiohttp import web

from collector.appkeys import STORE
from collector.dburl import redact_url, sqlite_path
from collector.live import CHANGES, Changes
from collector.store_pg import split_schema

log = logging.getLogger("citygate.collector")

#: topics a reconnection wakes (a notification sent while the listener was away is lost)
ALL_TOPICS = ("ingest", "reports", "deliveries")
BACKOFF_MAX_S = 10.0


def channel_of(schema: str | None) -> str:
    """The channel of one schema: instances of two schemas (two test runs, two cities) never wake each other."""
    return f"citygate_changes_{schema}" if schema else "citygate_changes"


async def connect_watched(dsn: str) -> tuple[asyncpg.Connection, asyncio.Event]:
    """A dedicated connection, and an event set when it is closed or lost."""
    conn = await asyncpg.connect(dsn)
    lost = asyncio.Event()
    conn.add_termination_listener(lambda _c: lost.set())
    return conn, lost


class PgChanges:
    """Forwards `changes` to the other instances on the database of `url`, and theirs to it."""

    def __init__(self, url: str, changes: Changes) -> None:
        self.dsn, self.schema = split_schema(url)
        self.url = url
        self.changes = changes
        self.channel = channel_of(self.schema)
        self.sent = 0  # notifications sent
        self.received = 0  # notifications from other instances
        self._pending: set[str] = set()
        self._wanted = asyncio.Event()
        self._pid: int | None = None

    def forward(self, topic: str) -> None:
        """Changes.forward: send `topic` to the other instances soon."""
        self._pending.add(topic)
        self._wanted.set()

    def _heard(self, _conn: object, pid: int, _channel: str, payload: object) -> None:
        if pid == self._pid:
            return
        self.received += 1
        for topic in str(payload).split(","):
            if topic:
                self.changes.wake(topic)

    async def run(self) -> None:
        """For ever (only a cancellation ends it): listen, send, and reconnect with backoff when the connection is lost."""
        failures = 0
        while True:
            conn: asyncpg.Connection | None = None
            try:
                conn, lost = await connect_watched(self.dsn)
                self._pid = conn.get_server_pid()
                await conn.add_listener(self.channel, self._heard)
                if failures:
                    log.info("live updates between instances: LISTEN on %s again", self.channel)
                    for topic in ALL_TOPICS:  # what was sent while nobody listened
                        self.changes.wake(topic)
                failures = 0
                self.changes.polling = False
                await self._send(conn, lost)
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                if failures == 0:
                    log.warning("live updates between instances (%s) lost: %s; streams poll meanwhile",
                                redact_url(self.url), exc)
            finally:
                self.changes.polling = True
                if conn is not None and not conn.is_closed():
                    conn.terminate()
            failures += 1
            await asyncio.sleep(random.uniform(0.2, min(BACKOFF_MAX_S, 0.5 * 2 ** min(failures, 10))))

    async def _send(self, conn: asyncpg.Connection, lost: asyncio.Event) -> None:
        while True:
            waits = [asyncio.ensure_future(self._wanted.wait()), asyncio.ensure_future(lost.wait())]
            try:
                await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for w in waits:
                    w.cancel()
            if lost.is_set():
                raise OSError("the listening connection was closed")
            self._wanted.clear()
            topics, self._pending = self._pending, set()
            if topics:
                await conn.execute("SELECT pg_notify($1, $2)", self.channel, ",".join(sorted(topics)))
                self.sent += 1


PG_CHANGES = web.AppKey("pg_changes", PgChanges)


def install_pg_changes(app: web.Application) -> PgChanges | None:
    """On a PostgreSQL store, bridge the app's Changes to the other instances (run with the app); else None."""
    url = app[STORE].url
    if sqlite_path(url) is not None:
        return None
    bridge = app[PG_CHANGES] = PgChanges(url, app[CHANGES])
    app[CHANGES].forward = bridge.forward

    async def running(_: web.Application) -> AsyncIterator[None]:
        task = asyncio.create_task(bridge.run(), name="pg-changes")
        yield
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)

    app.cleanup_ctx.append(running)
    return bridge
