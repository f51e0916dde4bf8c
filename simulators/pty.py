"""A pseudo-terminal pair for the serial-line simulators: the simulator holds the master, a driver opens `port`."""

from __future__ import annotations

import os
import tty
from pathlib import Path


class PtyPair:
    """os.openpty() in raw mode (no CR/LF translation, no echo), master side non-blocking.

    The simulator keeps the slave open too, so its writes never fail with EIO while no driver
    has the port open (a real meter keeps talking to an unplugged cable).
    """

    def __init__(self, link: Path | None = None) -> None:
        self.master, self._slave = os.openpty()
        tty.setraw(self._slave)
        os.set_blocking(self.master, False)
        self.port = os.ttyname(self._slave)
        self.link = link
        if link is not None:
            link.unlink(missing_ok=True)
            link.symlink_to(self.port)

    def write(self, data: bytes) -> int:
        """Write what the line takes now; return the bytes written (the rest is lost, as on a wire)."""
        try:
            return os.write(self.master, data)
        except BlockingIOError:
            return 0

    def read(self) -> bytes:
        try:
            return os.read(self.master, 4096)
        except (BlockingIOError, OSError):
            return b""

    def close(self) -> None:
        if self.link is not None:
            self.link.unlink(missing_ok=True)
        for fd in (self.master, self._slave):
            try:
                os.close(fd)
            except OSError:
                pass
