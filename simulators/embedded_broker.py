"""The demo's MQTT broker: amqtt (pure Python, MQTT 3.1.1) in the demo's own event loop.

It has no authentication and no ACL, so it listens on a loopback address only; amqtt's own
default would listen on every interface. The field and the tests use Mosquitto
(simulators.mosquitto) with the password and ACL files `citygate-collector mqtt-acl` writes.

    async with start_embedded_broker("127.0.0.1", 0) as broker:
        ... broker.url  (mqtt://127.0.0.1:PORT)
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from amqtt.broker import Broker


@dataclass(frozen=True)
class EmbeddedBroker:
    host: str
    port: int

    @property
    def url(self) -> str:
        return f"mqtt://{self.host}:{self.port}"


def _check_loopback(host: str) -> None:
    try:
        loopback = ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = host == "localhost"
    if not loopback:
        raise ValueError(f"the embedded broker has no authentication: bind it to a loopback address, not {host!r}")


@asynccontextmanager
async def start_embedded_broker(host: str = "127.0.0.1", port: int = 0) -> AsyncIterator[EmbeddedBroker]:
    """Run amqtt on host:port (0 picks a free port) until the block exits."""
    _check_loopback(host)
    bind = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    broker = Broker({
        "listeners": {"default": {"type": "tcp", "bind": bind}},
        # anonymous accepted, nothing else: no $SYS publisher, no packet logger flooding the demo's output
        "plugins": {"amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": True}},
    })
    await broker.start()
    try:
        # amqtt keeps its listening servers here (0.12); the real port is known only once bound
        sockets = broker._servers["default"].instance.sockets
        bound = sockets[0].getsockname()[1]
        logging.getLogger("citygate.demo").info("embedded MQTT broker (amqtt) on %s:%d", host, bound)
        yield EmbeddedBroker(host, bound)
    finally:
        await broker.shutdown()
