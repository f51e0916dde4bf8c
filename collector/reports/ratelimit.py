"""How many new reports one client may send: token buckets per source address and per e-mail.

Reports need no login, and the public search answers the newest 1000 of 90 days: without a
limit one client could push every real report out of it. Each bucket holds `per_address` (or
`per_email`) reports and refills at that many per `period_s`, so a resident never notices it
and a script gets 429 with Retry-After.

The source address is the peer's, or behind `serve --trusted-proxy` the client's address that
proxy gives in X-Forwarded-For (collector.access.client_address); an IPv6 client is counted by
its /64, the block one subscriber usually holds whole. The buckets live in this process:
several collector instances each keep their own, so behind a load balancer a client gets up to
that many times the rate.
"""

from __future__ import annotations

import ipaddress
import math
import os
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from collector.errors import CollectorError

PER_ADDRESS_ENV = "CITYGATE_OPEN311_PER_ADDRESS"
PER_EMAIL_ENV = "CITYGATE_OPEN311_PER_EMAIL"
#: buckets kept per kind; past it the least recently used goes (that client starts afresh)
MAX_BUCKETS = 65_536


@dataclass(frozen=True, slots=True)
class RateLimits:
    """Reports per `period_s` from one source address / one e-mail address; 0: no limit."""

    per_address: int = 10
    per_email: int = 5
    period_s: float = 3600.0

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> RateLimits:
        """The defaults, or $CITYGATE_OPEN311_PER_ADDRESS / $CITYGATE_OPEN311_PER_EMAIL (reports an hour)."""
        values = {}
        for name, var in (("per_address", PER_ADDRESS_ENV), ("per_email", PER_EMAIL_ENV)):
            raw = env.get(var)
            if raw is None:
                continue
            if not raw.strip().isascii() or not raw.strip().isdigit():
                raise CollectorError(f"${var}={raw!r}: reports an hour, an integer (0: no limit)")
            values[name] = int(raw)
        return cls(**values)


@dataclass(slots=True)
class _Bucket:
    tokens: float
    at: float


class _Buckets:
    def __init__(self, capacity: int, period_s: float, clock: Callable[[], float]) -> None:
        self.capacity = capacity
        self.rate = capacity / period_s  # tokens a second
        self.clock = clock
        self.buckets: OrderedDict[str, _Bucket] = OrderedDict()

    def wait_s(self, key: str) -> float:
        """0 when `key` may send one now, else the seconds until it may."""
        if self.capacity == 0:
            return 0.0
        bucket = self._refilled(key)
        return 0.0 if bucket.tokens >= 1 else (1 - bucket.tokens) / self.rate

    def take(self, key: str) -> None:
        if self.capacity:
            self._refilled(key).tokens -= 1

    def _refilled(self, key: str) -> _Bucket:
        now = self.clock()
        bucket = self.buckets.get(key)
        if bucket is None:
            bucket = self.buckets[key] = _Bucket(float(self.capacity), now)
            if len(self.buckets) > MAX_BUCKETS:
                self.buckets.popitem(last=False)
        else:
            bucket.tokens = min(float(self.capacity), bucket.tokens + (now - bucket.at) * self.rate)
            bucket.at = now
            self.buckets.move_to_end(key)
        return bucket


class ReportLimiter:
    def __init__(self, limits: RateLimits, clock: Callable[[], float] = time.monotonic) -> None:
        self.limits = limits
        self._addresses = _Buckets(limits.per_address, limits.period_s, clock)
        self._emails = _Buckets(limits.per_email, limits.period_s, clock)

    def take(self, address: str, email: str | None) -> int:
        """0 and one report counted against both, or the whole seconds to wait (nothing counted)."""
        keys = [(self._addresses, address_key(address))]
        if email is not None:
            keys.append((self._emails, email_key(email)))
        wait = max(buckets.wait_s(key) for buckets, key in keys)
        if wait > 0:
            return max(1, math.ceil(wait))
        for buckets, key in keys:
            buckets.take(key)
        return 0

    @classmethod
    def from_env(cls) -> ReportLimiter:
        return cls(RateLimits.from_env(os.environ))


def address_key(address: str) -> str:
    """An IPv4 address, or an IPv6 address's /64; anything else (no IP: a Unix socket) as it is."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((ip, 64), strict=False))
    return str(ip)


def email_key(email: str) -> str:
    """One mailbox however it is written: case and a +tag do not make another one."""
    local, _, domain = email.strip().lower().rpartition("@")
    return f"{local.split('+', 1)[0]}@{domain}"
