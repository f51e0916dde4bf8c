"""A pseudo-terminal pair for the serial-line simulators: the simulator holds the master, a driver opens `port`."""

from __future__ import annotations

import asyncio
import os
import tty
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Protocol

import click


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


# --- the command line of a pty simulator (citygate-sim tic, citygate-sim mbus) ---------------------

LINK_OPTION = click.option(
    "--link", type=click.Path(path_type=Path), default=None, help="Symlink to the pty, for a fixed port path."
)
RUN_OPTION = click.option(
    "--run", "run_s", type=click.FloatRange(min=0, min_open=True), default=None, help="Stop after this long."
)


class PtyDevice(Protocol):
    """A simulated device that, entered, serves on a pty at `port`."""

    @property
    def port(self) -> str: ...

    async def __aenter__(self) -> object: ...

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None: ...


def serve_on_pty(make: Callable[[], PtyDevice], what: str, link: Path | None, run_s: float | None) -> None:
    """Run the device `make()` builds (in the event loop) until Ctrl-C, or for run_s seconds; print its port."""

    async def main() -> None:
        device = make()
        async with device:
            click.echo(f"{what} on {device.port}" + (f" (link {link})" if link else ""))
            if run_s is None:
                await asyncio.Event().wait()
            await asyncio.sleep(run_s or 0)

    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        pass
