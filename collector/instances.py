"""Several collector instances on one PostgreSQL: which one runs the background jobs.

Every instance serves ingest, the pages and their streams (collector.notify carries the live
updates between them) and takes its share of the MQTT messages (`$share/<group>/...`,
collector.control.link). The background jobs, those that must not run twice at once, run on one
instance: the one holding a PostgreSQL advisory lock (`pg_try_advisory_lock`) on a connection of
its own. An instance that dies (even kill -9) loses its connection, the server releases the lock,
and another instance takes it at its next try (`retry_s`). An instance that loses its connection
stops its jobs at once, before it could know whether the server has released the lock yet.

The jobs: the MQTT link's sending of the deliveries (commands and their resends, expiries), and
the retention of old records (collector.retention). An instance that does not send tells the one
that does when a new command is stored (topic "deliveries" of collector.live, carried by NOTIFY).

With SQLite there is one collector, which runs them all.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import random
from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Any

import asyncpg
from aiohttp import web

from collector.appkeys import STORE
from collector.control.link import ControlLink
from collector.control.routes import LINK
from collector.dburl import redact_url, sqlite_path
from collector.errors import CollectorError
from collector.live import CHANGES
from collector.notify import connect_watched, install_pg_changes
from collector.retention import Policy, periodic
from collector.store_pg import split_schema

log = logging.getLogger("citygate.collector")

DELIVERIES = "deliveries"
Job = Callable[[], Coroutine[Any, Any, None]]


class Leadership:
    """Whether this instance runs the jobs: `leading` is set while it holds the lock."""

    def __init__(self, url: str | None, *, retry_s: float = 2.0, check_s: float = 5.0) -> None:
        self.url = url
        self.retry_s = retry_s
        self.check_s = check_s
        self.leading = asyncio.Event()
        self.following = asyncio.Event()
        self.following.set()
        self.terms = 0  # times this instance took the lock
        self.on_change: list[Callable[[bool], None]] = []
        if url is not None:
            self.dsn, schema = split_schema(url)
            self.key = f"citygate-jobs:{schema or 'public'}"

    def _set(self, leading: bool) -> None:
        if leading == self.leading.is_set():
            return
        if leading:
            self.terms += 1
            self.following.clear()
            self.leading.set()
        else:
            self.leading.clear()
            self.following.set()
        log.info("background jobs: %s", "this instance runs them" if leading else "another instance runs them")
        for callback in self.on_change:
            callback(leading)

    async def run(self) -> None:
        """For ever (only a cancellation ends it)."""
        if self.url is None:
            self._set(True)  # one collector (SQLite): nobody else to run them
            await asyncio.Event().wait()
        while True:
            conn: asyncpg.Connection | None = None
            try:
                conn, lost = await connect_watched(self.dsn)
                while not await conn.fetchval("SELECT pg_try_advisory_lock(hashtext($1))", self.key):
                    await _wait(lost, random.uniform(0.5, 1.0) * self.retry_s)
                    if lost.is_set():
                        raise OSError("connection closed")
                self._set(True)
                while True:  # hold it; a dead server shows as a failed or unanswered check
                    await _wait(lost, self.check_s)
                    if lost.is_set():
                        raise OSError("connection closed")
                    await conn.fetchval("SELECT 1", timeout=self.check_s)
            except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                if self.leading.is_set():
                    log.warning("background jobs: lost the lock's connection (%s): %s", redact_url(self.url or ''), exc)
            finally:
                self._set(False)
                if conn is not None and not conn.is_closed():
                    conn.terminate()
            await asyncio.sleep(random.uniform(0.5, 1.0) * self.retry_s)


async def _wait(event: asyncio.Event, timeout_s: float) -> None:
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(timeout_s):
            await event.wait()


async def run_while_leading(leadership: Leadership, jobs: list[Job]) -> None:
    """Run `jobs` while this instance leads, cancelled when it stops leading; for ever."""
    while True:
        await leadership.leading.wait()
        tasks = [asyncio.create_task(job()) for job in jobs]
        waits = [asyncio.ensure_future(leadership.following.wait()), *tasks]
        try:
            done, _ = await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                if task in tasks and not task.cancelled() and task.exception() is not None:
                    log.error("background job failed", exc_info=task.exception())
        finally:
            for task in waits:
                task.cancel()
            await asyncio.gather(*waits, return_exceptions=True)
        await leadership.following.wait()


LEADERSHIP = web.AppKey("leadership", Leadership)
JOBS = web.AppKey("background_jobs", list)


def install_instances(app: web.Application, *, retry_s: float = 2.0) -> Leadership:
    """Make the app one of several instances: live updates by NOTIFY, the jobs of `app[JOBS]` (and
    the MQTT link's sending) on the instance holding the lock. Call after attach_link."""
    url = app[STORE].url
    leadership = app[LEADERSHIP] = Leadership(None if sqlite_path(url) is not None else url, retry_s=retry_s)
    app.setdefault(JOBS, [])
    try:
        policy = Policy.from_env()
    except ValueError as exc:
        raise CollectorError(str(exc)) from None
    app[JOBS].append(functools.partial(periodic, app[STORE], policy))
    install_pg_changes(app)
    link = app.get(LINK)
    if link is not None:
        _share_sending(app, leadership, link)

    async def running(_: web.Application) -> AsyncIterator[None]:
        tasks = [asyncio.create_task(leadership.run(), name="leadership"),
                 asyncio.create_task(run_while_leading(leadership, app[JOBS]), name="background-jobs")]
        yield
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    app.cleanup_ctx.append(running)
    return leadership


def _share_sending(app: web.Application, leadership: Leadership, link: ControlLink) -> None:
    changes = app[CHANGES]
    link.sending.clear()

    def changed(leading: bool) -> None:
        (link.sending.set if leading else link.sending.clear)()
        if leading:
            link.kick()  # what was stored while nobody sent

    def kicked() -> None:
        if not leadership.leading.is_set():
            changes.notify(DELIVERIES)  # the sending instance hears it by NOTIFY

    async def relay() -> None:
        """While leading: a command stored by another instance is sent at once, not at the next resend round."""
        while True:
            await changes.next(DELIVERIES).wait()
            link.kick()

    leadership.on_change.append(changed)
    link.on_kick = kicked
    app[JOBS].append(relay)
