"""How far the gateway's clock can be trusted, as the kernel knows it (adjtimex(2), read-only).

Every sample is stamped with this clock, so the technician's `status` shows whether NTP (or
chrony, or a GPS) keeps it synchronised and the kernel's error bound. Reading needs no privilege.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import sys
from dataclasses import dataclass

_TIME_ERROR = 5  # adjtimex's return value while the clock is not synchronised
_STA_UNSYNC = 0x0040


class _Timex(ctypes.Structure):
    # struct timex of <sys/timex.h> (glibc, 64-bit and 32-bit alike: C longs and ints, 11 reserved ints)
    _fields_ = [
        ("modes", ctypes.c_uint), ("offset", ctypes.c_long), ("freq", ctypes.c_long),
        ("maxerror", ctypes.c_long), ("esterror", ctypes.c_long), ("status", ctypes.c_int),
        ("constant", ctypes.c_long), ("precision", ctypes.c_long), ("tolerance", ctypes.c_long),
        ("time_sec", ctypes.c_long), ("time_usec", ctypes.c_long), ("tick", ctypes.c_long),
        ("ppsfreq", ctypes.c_long), ("jitter", ctypes.c_long), ("shift", ctypes.c_int),
        ("stabil", ctypes.c_long), ("jitcnt", ctypes.c_long), ("calcnt", ctypes.c_long),
        ("errcnt", ctypes.c_long), ("stbcnt", ctypes.c_long), ("tai", ctypes.c_int),
        ("reserved", ctypes.c_int * 11),
    ]


@dataclass(frozen=True, slots=True)
class ClockQuality:
    synchronised: bool | None  # None: the kernel could not be asked (not Linux)
    max_error_ms: float | None = None
    est_error_ms: float | None = None
    reason: str | None = None

    def to_doc(self) -> dict[str, object]:
        return {"synchronised": self.synchronised, "max_error_ms": self.max_error_ms,
                "est_error_ms": self.est_error_ms, "reason": self.reason}


@functools.cache
def _libc() -> ctypes.CDLL:
    # find_library runs ldconfig: once per process, not at every minute's clock check
    return ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)


def clock_quality() -> ClockQuality:
    if not sys.platform.startswith("linux"):
        return ClockQuality(None, reason=f"adjtimex is Linux only ({sys.platform})")
    tx = _Timex()  # modes = 0: read only
    state = _libc().adjtimex(ctypes.byref(tx))
    if state < 0:
        return ClockQuality(None, reason=f"adjtimex failed: errno {ctypes.get_errno()}")
    synced = state != _TIME_ERROR and not tx.status & _STA_UNSYNC
    return ClockQuality(synced, tx.maxerror / 1000, tx.esterror / 1000,
                        None if synced else "the kernel reports the clock as not synchronised (no NTP?)")


class KernelTimeSync:
    """The lighting service's time source check: whether NTP/chrony/timesyncd keeps the clock synchronised."""

    def is_synchronized(self) -> bool:
        return clock_quality().synchronised is True
