"""What the gateway spends, counted for the technician: uplink bytes per day and month, disk writes per day.

A cellular plan is billed by the month, in bytes both ways at the IP layer; an eMMC wears by the
bytes written. The uploader adds the bytes of each of its exchanges, and the MQTT control link
(edge_agent.control) those of its connection at each message it sends and each state refresh (so its
keep-alives are in), as the kernel counted them on the TCP connection (TCP_INFO: payload both ways,
TLS records included, and a header per segment); the control link's share is also kept apart. It
samples
samples the agent's own disk writes (`/proc/self/io` write_bytes: the journal is the agent's only
writer). Counts are per UTC day and month and kept in `usage.json` in the state dir, saved every
SAVE_EVERY_S and when the uploader stops: a restart keeps them, a power cut loses at most that much
counting. With `[uplink] monthly_budget_mb` set, `warning()` says when the month's bytes, at the
month's rate so far, will pass the budget.
"""

from __future__ import annotations

import calendar
import logging
import os
import socket
import struct
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson

from edge_agent.clock import Clock, epoch_ms

log = logging.getLogger("citygate.usage")

FILE = "usage.json"
#: At most one save of the counts per this many seconds: 96 small writes a day, not one per upload.
SAVE_EVERY_S = 900.0
#: A month's rate is judged from at least this much counting: two minutes after a restart with a backlog
#: to send it would project gigabytes.
MIN_RATE_S = 3600.0
#: IPv4 (20) + TCP with timestamps (32); IPv6 is 20 more. A cellular link carries these for every segment.
HEADER_BYTES = {socket.AF_INET: 52, socket.AF_INET6: 72}
# struct tcp_info (linux/tcp.h): tcpi_bytes_acked, tcpi_bytes_received (u64), tcpi_segs_out, tcpi_segs_in (u32)
_TCP_INFO = struct.Struct("=120xQQII")
_TCP_INFO_LEN = 232


@dataclass(frozen=True, slots=True)
class TcpCount:
    """What the kernel counted on one TCP connection so far: payload bytes and segments, each way."""

    sent: int = 0
    received: int = 0
    segs_out: int = 0
    segs_in: int = 0
    header_bytes: int = 52

    def since(self, before: TcpCount) -> tuple[int, int]:
        """(bytes out, bytes in) at the IP layer since `before`, headers included."""
        return (self.sent - before.sent + (self.segs_out - before.segs_out) * self.header_bytes,
                self.received - before.received + (self.segs_in - before.segs_in) * self.header_bytes)


def tcp_count(sock: socket.socket) -> TcpCount | None:
    """The kernel's counts for a connected TCP socket (an SSLSocket too: TLS is inside the payload), or None."""
    try:
        raw = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, _TCP_INFO_LEN)
    except (OSError, AttributeError, ValueError):  # closed, not TCP, or not Linux
        return None
    if len(raw) < _TCP_INFO.size:
        return None
    acked, received, segs_out, segs_in = _TCP_INFO.unpack_from(raw)
    return TcpCount(acked, received, segs_out, segs_in, HEADER_BYTES.get(sock.family, 52))


def process_write_bytes() -> int | None:
    """Bytes this process has caused to be written to storage (`/proc/self/io` write_bytes), or None."""
    try:
        with open("/proc/self/io", "rb") as f:
            for line in f:
                if line.startswith(b"write_bytes:"):
                    return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return None


@dataclass
class Counts:
    day: str = ""  # YYYY-MM-DD, UTC
    month: str = ""  # YYYY-MM, UTC
    sent_today: int = 0
    received_today: int = 0
    sent_month: int = 0
    received_month: int = 0
    disk_written_today: int = 0
    #: of which the MQTT control link (both ways): keep-alives, state, alarms, commands and acks
    control_today: int = 0
    control_month: int = 0
    #: since when this month has been counted (the month's start, or the first count on a new gateway)
    month_since_ms: int = 0


class UsageMeter:
    def __init__(self, state_dir: Path, clock: Clock, budget_bytes: int | None = None) -> None:
        self.path = state_dir / FILE
        self.clock = clock
        self.budget_bytes = budget_bytes
        self.counts = self._load()
        self._written_seen = process_write_bytes()
        self._saved_at: float | None = None
        self._roll(self.clock.now())

    # -- counting ------------------------------------------------------------------------------

    def add_uplink(self, sent: int, received: int, *, control: bool = False) -> None:
        """Add an exchange's bytes; `control`: they crossed the MQTT control link, not the uploads'."""
        c = self._roll(self.clock.now())
        c.sent_today += sent
        c.received_today += received
        c.sent_month += sent
        c.received_month += received
        if control:
            c.control_today += sent + received
            c.control_month += sent + received

    def sample_disk(self) -> None:
        """Add the process's disk writes since the last sample to today's."""
        now = process_write_bytes()
        if now is None:
            return
        seen, self._written_seen = self._written_seen, now
        c = self._roll(self.clock.now())
        if seen is not None and now >= seen:
            c.disk_written_today += now - seen

    def _roll(self, now: datetime) -> Counts:
        c = self.counts
        day, month = now.strftime("%Y-%m-%d"), now.strftime("%Y-%m")
        if c.month != month:
            first = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
            # a new gateway (or a lost file) counts from now, not from the 1st: its rate is not diluted
            since = epoch_ms(first) if c.month else epoch_ms(now)
            c.month, c.sent_month, c.received_month, c.month_since_ms = month, 0, 0, since
            c.control_month = 0
        if c.day != day:
            c.day, c.sent_today, c.received_today, c.disk_written_today = day, 0, 0, 0
            c.control_today = 0
        return c

    # -- persistence ---------------------------------------------------------------------------

    def _load(self) -> Counts:
        try:
            doc = orjson.loads(self.path.read_bytes())
            return Counts(**{k: v for k, v in doc.items() if k in Counts.__dataclass_fields__})
        except FileNotFoundError:
            return Counts()
        except (OSError, orjson.JSONDecodeError, TypeError) as exc:
            log.warning("%s unreadable (%s): usage counts start again from zero", self.path, exc)
            return Counts()

    def save(self, monotonic_now: float | None = None) -> None:
        """Write the counts (at most once per SAVE_EVERY_S when `monotonic_now` is given; always without)."""
        if monotonic_now is not None:
            if self._saved_at is not None and monotonic_now - self._saved_at < SAVE_EVERY_S:
                return
            self._saved_at = monotonic_now
        tmp = self.path.with_name(FILE + ".tmp")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with open(tmp, "wb") as f:  # synced before the rename: a power cut leaves the old file or the new
                f.write(orjson.dumps(asdict(self.counts)))
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.path)
        except OSError as exc:
            log.warning("cannot save the usage counts to %s: %s", self.path, exc)

    # -- reading -------------------------------------------------------------------------------

    def projected_month_bytes(self) -> int | None:
        """The month's uplink bytes at the end of the month at the rate counted so far this month (None
        before MIN_RATE_S of counting)."""
        c = self._roll(self.clock.now())
        now_ms = epoch_ms(self.clock.now())
        elapsed_ms = now_ms - c.month_since_ms
        if elapsed_ms < MIN_RATE_S * 1000:
            return None
        year, month = (int(x) for x in c.month.split("-"))
        first = self.clock.now().replace(day=1, hour=0, minute=0, second=0, microsecond=0)
        end_ms = epoch_ms(first) + calendar.monthrange(year, month)[1] * 86_400_000
        used = c.sent_month + c.received_month
        return used + int(used * (end_ms - now_ms) / elapsed_ms)

    def warning(self) -> str | None:
        """Why the month's data budget will not last, or None (also None without a budget)."""
        budget = self.budget_bytes
        if budget is None:
            return None
        c = self.counts
        used = c.sent_month + c.received_month
        if used > budget:
            return f"uplink data budget exceeded: {data_text(used)} sent and received this month, budget {data_text(budget)}"
        projected = self.projected_month_bytes()
        if projected is not None and projected > budget:
            return (f"uplink data budget will be exceeded: {data_text(projected)} of uplink data by the end of the month at the"
                    f" current rate, budget {data_text(budget)}")
        return None

    def doc(self) -> dict[str, Any]:
        """The counts for the local API's status."""
        c = self._roll(self.clock.now())
        return {
            "day": c.day, "month": c.month,
            "uplink_today": {"sent": c.sent_today, "received": c.received_today},
            "uplink_month": {"sent": c.sent_month, "received": c.received_month},
            "control_today": c.control_today, "control_month": c.control_month,
            "disk_written_today": c.disk_written_today,
            "monthly_budget_bytes": self.budget_bytes,
            "projected_month_bytes": self.projected_month_bytes(),
            "warning": self.warning(),
        }


def data_text(n: int) -> str:
    """Bytes as a data plan counts them (decimal units)."""
    for unit, scale in (("MB", 1e6), ("kB", 1e3)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{n} B"
