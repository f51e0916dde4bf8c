"""How far the gateway's clock can be trusted: as the kernel knows it (adjtimex(2), read-only), or by GNSS.

Every sample is stamped with this clock, so the technician's `status` shows whether NTP (or
chrony, or a GPS) keeps it synchronised and the kernel's error bound. Reading needs no privilege.

A vehicle gateway often has no NTP: there, a running gnss bus whose receiver has a fix is the
time source (drivers/gnss/clock.py: the last RMC with a fix, carried on the monotonic clock for
the bus's clock_holdover_s). `clock_quality()` and `KernelTimeSync` count it: the clock is
synchronised when the kernel says so, or when a GNSS clock is trusted and the system clock agrees
with it within GNSS_AGREEMENT_MS (a system clock far off GNSS time is not a trusted clock, whatever
the receiver knows: the gnss bus raises `system_clock_offset` for it).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import sys
from collections.abc import Callable
from dataclasses import dataclass

from citygate_wire.simclock import ACTIVE as SIMULATED
from drivers.gnss.clock import GnssClock, active

_TIME_ERROR = 5  # adjtimex's return value while the clock is not synchronised
_STA_UNSYNC = 0x0040
#: how far the system clock may be from a trusted GNSS clock and still count as synchronised by it
GNSS_AGREEMENT_MS = 2000


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
    source: str | None = None  # "kernel" (NTP, chrony ...), "gnss" or "simulated"; None when not synchronised

    def to_doc(self) -> dict[str, object]:
        return {"synchronised": self.synchronised, "max_error_ms": self.max_error_ms,
                "est_error_ms": self.est_error_ms, "reason": self.reason, "source": self.source}


@functools.cache
def _libc() -> ctypes.CDLL:
    # find_library runs ldconfig: once per process, not at every minute's clock check
    return ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)


def kernel_clock_quality() -> ClockQuality:
    if not sys.platform.startswith("linux"):
        return ClockQuality(None, reason=f"adjtimex is Linux only ({sys.platform})")
    tx = _Timex()  # modes = 0: read only
    state = _libc().adjtimex(ctypes.byref(tx))
    if state < 0:
        return ClockQuality(None, reason=f"adjtimex failed: errno {ctypes.get_errno()}")
    synced = state != _TIME_ERROR and not tx.status & _STA_UNSYNC
    return ClockQuality(synced, tx.maxerror / 1000, tx.esterror / 1000,
                        None if synced else "the kernel reports the clock as not synchronised (no NTP?)",
                        "kernel" if synced else None)


class GnssTimeSync:
    """A GNSS receiver with a fix as the time source: a running gnss bus's clock that the system clock agrees with."""

    def __init__(self, clocks: Callable[[], list[GnssClock]] = active) -> None:
        self._clocks = clocks

    def offset_ms(self) -> int | None:
        """System clock minus GNSS time, by the first trusted GNSS clock; None without one."""
        for clock in self._clocks():
            offset = clock.offset_ms()
            if offset is not None:
                return offset
        return None

    def is_synchronized(self) -> bool:
        offset = self.offset_ms()
        return offset is not None and abs(offset) <= GNSS_AGREEMENT_MS


def clock_quality(gnss: GnssTimeSync | None = None) -> ClockQuality:
    """The kernel's view, or a trusted GNSS clock's when the kernel has no time source; in the demo,
    its simulated clock (citygate_wire.simclock), the reference every process of the demo reads."""
    if SIMULATED is not None:
        return ClockQuality(True, 0.0, 0.0, None, "simulated")
    kernel = kernel_clock_quality()
    if kernel.synchronised:
        return kernel
    gnss = gnss or GnssTimeSync()
    offset = gnss.offset_ms()
    if offset is None:
        return kernel
    if abs(offset) > GNSS_AGREEMENT_MS:
        return ClockQuality(False, abs(offset), abs(offset), f"the system clock is {offset / 1000:+.1f} s off GNSS time")
    return ClockQuality(True, abs(offset), abs(offset), None, "gnss")


class KernelTimeSync:
    """The lighting service's time source check: whether NTP/chrony/timesyncd keeps the clock synchronised,
    or, on a gateway without them (a vehicle), a GNSS receiver with a fix."""

    def __init__(self, gnss: GnssTimeSync | None = None) -> None:
        self.gnss = gnss or GnssTimeSync()

    def is_synchronized(self) -> bool:
        return clock_quality(self.gnss).synchronised is True
