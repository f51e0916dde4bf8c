"""Every poll to the agent's own logic, only what is reported to the journal, in one order.

With report by exception (drivers.reporting) the journal keeps fewer samples than the buses
read, yet lighting feedback, fault detection and analytics must see every poll. The feed
appends to the journal what is to be kept and hands the observers every record emitted, whole,
in emit order, each only once the records journalled for it and before it are committed: an
alarm is never seen before it is durable, and a poll never overtakes an earlier event. A record
committed that did not come through the feed (the uploader's own events) is passed on as it is.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Sequence

from drivers.model import Record


class _Entry:
    __slots__ = ("record", "uncommitted")

    def __init__(self, record: Record, uncommitted: int) -> None:
        self.record = record
        self.uncommitted = uncommitted


class LiveFeed:
    """`emit()` journals and queues; the journal's observer calls `committed()`; `deliver` gets each record."""

    def __init__(self, append: Callable[[Record], None], deliver: Callable[[Record], None]) -> None:
        self._append = append
        self._deliver = deliver
        self._queue: deque[_Entry] = deque()
        #: id of a journalled record not yet committed -> the entries waiting for it (the journal
        #: holds the record until then, so its id is not reused meanwhile)
        self._waiting: dict[int, deque[_Entry]] = {}

    def emit(self, record: Record, journalled: Sequence[Record]) -> None:
        """Journal `journalled` (what is kept of `record`, possibly nothing), then deliver `record` in turn."""
        if not journalled and not self._queue:
            self._deliver(record)  # nothing of it to commit, nothing before it awaits a commit: most polls
            return
        for kept in journalled:
            self._append(kept)
        entry = _Entry(record, len(journalled))
        for kept in journalled:
            self._waiting.setdefault(id(kept), deque()).append(entry)
        self._queue.append(entry)

    def committed(self, record: Record) -> None:
        """The journal committed `record` (call it from the journal's observer, in commit order)."""
        waiting = self._waiting.get(id(record))
        if waiting is None:
            self._deliver(record)
            return
        entry = waiting.popleft()
        if not waiting:
            del self._waiting[id(record)]
        entry.uncommitted -= 1
        queue = self._queue
        while queue and queue[0].uncommitted == 0:
            self._deliver(queue.popleft().record)

    @property
    def backlog(self) -> int:
        """Records emitted and not yet delivered (waiting for a commit)."""
        return len(self._queue)
