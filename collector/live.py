"""Live updates over Server-Sent Events: the control-centre page and a reporter following a report.

A stream sends a snapshot at once, then again whenever it changed. Changes made in this
process (a batch ingested, a report moved) wake the streams at once; the streams also poll
every `poll_s`, so what another collector instance wrote shows too, a little later; on PostgreSQL the
other instances' changes come by LISTEN/NOTIFY instead (collector.notify) and the poll stops. The app's
shutdown ends every stream (an open stream would otherwise hold the server's shutdown).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

import orjson
from aiohttp import web

KEEPALIVE_S = 15.0


class Changes:
    """Topics ("ingest", "reports", ...) a stream can wait on; `notify` wakes every waiter of a topic."""

    def __init__(self) -> None:
        self._events: dict[str, asyncio.Event] = {}
        self.closing = asyncio.Event()
        self.version = 0  # moves at every change: a cache of what the streams send keys on it
        #: streams poll every poll_s for what other instances wrote; not while `forward` (collector.notify,
        #: PostgreSQL LISTEN/NOTIFY) brings their changes
        self.polling = True
        #: sends this instance's changes to the others (collector.notify); None with one instance
        self.forward: Callable[[str], None] | None = None

    def notify(self, topic: str) -> None:
        """A change made here: wake the streams of `topic`, here and (forward) in the other instances."""
        self.wake(topic)
        if self.forward is not None:
            self.forward(topic)

    def wake(self, topic: str) -> None:
        """Wake the streams of `topic` in this instance only."""
        self.version += 1
        event = self._events.pop(topic, None)
        if event is not None:
            event.set()

    def next(self, topic: str) -> asyncio.Event:
        """The event set at the next change of `topic` (take it before reading, so no change is missed)."""
        event = self._events.get(topic)
        if event is None:
            event = self._events[topic] = asyncio.Event()
        return event


CHANGES = web.AppKey("live_changes", Changes)


def install_changes(app: web.Application) -> Changes:
    changes = app[CHANGES] = Changes()

    async def close_streams(_: web.Application) -> None:
        changes.closing.set()

    app.on_shutdown.append(close_streams)
    return changes


Snapshot = Callable[[], Awaitable[tuple[str, Any]]]


async def sse(request: web.Request, snapshot: Snapshot, topics: Iterable[str], *, poll_s: float = 5.0,
              min_gap_s: float = 0.0) -> web.StreamResponse:
    """Stream `snapshot()` (event name, JSON document) as SSE until the client leaves or the app stops.

    `min_gap_s` bounds how often a stream takes a snapshot, however often its topics change (a
    metropolis's gateways post several batches a second)."""
    changes = request.app[CHANGES]
    resp = web.StreamResponse(headers={"Content-Type": "text/event-stream; charset=utf-8",
                                       "Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
    await resp.prepare(request)
    topics = tuple(topics)
    loop = asyncio.get_running_loop()
    last: bytes | None = None
    sent = 0
    last_write = loop.time()
    try:
        while not changes.closing.is_set():
            waits = [changes.next(t) for t in topics]
            event, doc = await snapshot()
            body = orjson.dumps(doc)
            if body != last:
                sent += 1
                await resp.write(b"id: %d\nevent: %s\ndata: %s\n\n" % (sent, event.encode(), body))
                last, last_write = body, loop.time()
            elif loop.time() - last_write >= KEEPALIVE_S:
                await resp.write(b": keepalive\n\n")  # lets proxies and clients see the stream alive
                last_write = loop.time()
            if min_gap_s:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(min_gap_s):
                        await changes.closing.wait()
            tasks = [asyncio.ensure_future(e.wait()) for e in [*waits, changes.closing]]
            try:
                wait_s = poll_s if changes.polling else KEEPALIVE_S
                await asyncio.wait(tasks, timeout=wait_s, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for t in tasks:
                    t.cancel()
        await resp.write_eof()
    except ConnectionResetError:
        pass  # the client left
    return resp
