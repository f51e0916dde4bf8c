"""systemd's notify protocol (sd_notify(3)) in a few lines of stdlib: READY, STATUS, WATCHDOG, STOPPING.

Without $NOTIFY_SOCKET (not started by systemd, or Type=simple) every call is a no-op, so the
agent runs the same from a shell. The watchdog keeps the ping coming only while every loop of the
agent is healthy (edge_agent.health): a stuck loop stops the pings and systemd restarts the agent.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from collections.abc import Mapping

from edge_agent.health import HealthMonitor

log = logging.getLogger("citygate.sdnotify")

#: How often loops are checked when systemd asks for no watchdog (the health still feeds `status`).
CHECK_INTERVAL_S = 5.0


class Notifier:
    """Sends datagrams to $NOTIFY_SOCKET; a path, or '@name' for the abstract namespace."""

    def __init__(self, address: str | None) -> None:
        self.address = address
        self._sock: socket.socket | None = None
        self._last_error: str | None = None

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Notifier:
        return cls((env if env is not None else os.environ).get("NOTIFY_SOCKET") or None)

    @property
    def enabled(self) -> bool:
        return self.address is not None

    def send(self, *assignments: str) -> bool:
        """Send `VAR=value` lines in one datagram; False (logged once per reason) if systemd cannot be reached."""
        if self.address is None:
            return False
        target = "\0" + self.address[1:] if self.address.startswith("@") else self.address
        try:
            if self._sock is None:
                self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
            self._sock.sendto("\n".join(assignments).encode(), target)
        except OSError as exc:
            if str(exc) != self._last_error:
                log.warning("cannot notify systemd at %s: %s", self.address, exc)
            self._last_error = str(exc)
            return False
        self._last_error = None
        return True

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None


def watchdog_interval_s(env: Mapping[str, str] | None = None) -> float | None:
    """Half of WatchdogSec, as systemd recommends, or None when no watchdog is asked of this process."""
    env = env if env is not None else os.environ
    usec = env.get("WATCHDOG_USEC")
    pid = env.get("WATCHDOG_PID")
    if not usec or (pid and pid != str(os.getpid())):
        return None
    try:
        value = int(usec)
    except ValueError:
        log.warning("ignoring WATCHDOG_USEC=%r: not an integer", usec)
        return None
    return value / 2e6 if value > 0 else None


async def watch(monitor: HealthMonitor, notifier: Notifier, interval_s: float | None) -> None:
    """Check the loops every round; ping the watchdog only when none is silent, and say which are not
    healthy (a loop that ticks but fails, like a stalled uploader, shows as degraded: a restart would
    not mend it)."""
    monitor.seed()
    period = interval_s if interval_s is not None else CHECK_INTERVAL_S
    reported: frozenset[tuple[str, bool]] = frozenset()
    while True:
        await monitor.check()
        bad = monitor.unhealthy()
        silent = [v for v in bad if v.silent]
        names = frozenset((v.name, v.silent) for v in bad)
        if names != reported:
            if names:
                detail = ", ".join(v.describe() for v in bad)
                if silent:
                    log.error("stuck loop(s): %s; the systemd watchdog is no longer fed", detail)
                else:
                    log.error("unhealthy loop(s): %s", detail)
                notifier.send(f"STATUS={'stuck' if silent else 'degraded'}: {detail}")
            else:
                if reported:
                    log.info("all loops healthy again")
                notifier.send("STATUS=running")
            reported = names
        if not silent and interval_s is not None:
            notifier.send("WATCHDOG=1")
        await asyncio.sleep(period)
