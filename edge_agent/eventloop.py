"""The agent's event loop: uvloop where it is installed, the standard library's otherwise or when asked.

Polling 200 lamp controllers a second, most of the agent's CPU is the event loop's own work: a
socket write and a read per Modbus request, a timer per timeout (bench/bench_polling.py, profiled
with py-spy: `_SelectorSocketTransport.write` alone was 39 % of the samples). uvloop (libuv, the
loop of Node.js, maintained by the MagicStack team that wrote asyncio's own parts of it) does that
work in C: 2.86 CPU s/min became 2.01 on the same run. Everything the agent uses runs on it
unchanged (pymodbus, pyserial-asyncio-fast's add_reader on a tty, aiomqtt's paho socket, aiohttp's
unix socket, signal handlers, threads' run_coroutine_threadsafe): the whole test suite runs the agent on it.

`CITYGATE_EVENT_LOOP=asyncio` (in the unit's environment file) runs the standard loop, for a
technician who suspects the loop or a platform without a uvloop wheel; `uvloop` insists on uvloop
(an error if it is missing); unset or `auto` takes uvloop when it can be imported.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

ENV = "CITYGATE_EVENT_LOOP"
CHOICES = ("auto", "uvloop", "asyncio")

T = TypeVar("T")
log = logging.getLogger("citygate.agent")


class EventLoopChoiceError(ValueError):
    pass


def loop_factory(choice: str | None = None) -> tuple[str, Callable[[], asyncio.AbstractEventLoop] | None]:
    """(the loop's name, its factory for asyncio.Runner: None for the standard loop)."""
    choice = (os.environ.get(ENV) or "auto") if choice is None else choice
    if choice not in CHOICES:
        raise EventLoopChoiceError(f"{ENV}={choice!r}: expected one of {', '.join(CHOICES)}")
    if choice == "asyncio":
        return "asyncio", None
    try:
        import uvloop
    except ImportError:
        if choice == "uvloop":
            raise EventLoopChoiceError(f"{ENV}=uvloop but uvloop is not installed (pip install uvloop)") from None
        return "asyncio", None
    return f"uvloop {uvloop.__version__}", uvloop.new_event_loop


def run(main: Coroutine[Any, Any, T], choice: str | None = None) -> T:
    """Run `main` to its end on the chosen loop, as asyncio.run does."""
    name, factory = loop_factory(choice)
    log.debug("event loop: %s", name)
    with asyncio.Runner(loop_factory=factory) as runner:
        return runner.run(main)
