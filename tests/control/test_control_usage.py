"""The MQTT control link's bytes are counted in the gateway's uplink data (status "data today"), as the
kernel counted them on its connection: pings and state refreshes included.

A real Mosquitto reached through a counting TCP proxy written here: what crossed the proxy is the
reference the agent's count must match (the agent adds an estimate of IP and TCP headers on top)."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from pathlib import Path

from mqtt_testkit import Fleet, control, running_agent, wait_for

from edge_agent.uplink_usage import HEADER_BYTES
from simulators.mosquitto import Mosquitto


class CountingProxy:
    """Forwards one TCP port to another and counts the payload bytes both ways."""

    def __init__(self, upstream: tuple[str, int]) -> None:
        self.upstream = upstream
        self.bytes = 0
        self.server: asyncio.Server | None = None

    async def start(self) -> int:
        self.server = await asyncio.start_server(self._relay, "127.0.0.1", 0)
        return int(self.server.sockets[0].getsockname()[1])

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection(*self.upstream)

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            with contextlib.suppress(ConnectionError):
                while data := await src.read(65536):
                    self.bytes += len(data)
                    dst.write(data)
                    await dst.drain()
            dst.close()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer), return_exceptions=True)

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()


async def test_the_control_links_bytes_count_in_the_uplink_data(tmp_path: Path, fleet: Fleet,
                                                               broker: Mosquitto) -> None:
    proxy = CountingProxy(("127.0.0.1", broker.port))
    port = await proxy.start()
    try:
        # keep-alive 5 s, state every 1 s: both kinds of quiet traffic within the test's seconds
        mqtt = {"url": f"mqtt://127.0.0.1:{port}", "state_interval_s": 1}
        async with running_agent(tmp_path, fleet, broker, mqtt=mqtt) as agent:
            usage = agent.context.services.uploader.usage  # type: ignore[union-attr]
            await wait_for(lambda: usage.counts.control_today > 1_500, 30, "the control link's bytes counted")
            counted, crossed = usage.counts.control_today, proxy.bytes
            assert control(agent).connected
        doc = usage.doc()
    finally:
        await proxy.stop()
    # every byte that crossed is counted (but what crossed since the last count: a state message or two),
    # plus an estimate of the IP and TCP headers, which for messages of a few hundred bytes is far less
    # than doubling them
    assert crossed - 1_000 <= counted <= 2 * crossed + HEADER_BYTES[socket.AF_INET] * 20, (counted, crossed)
    assert doc["control_today"] == counted
    # the link's bytes are uplink data too: in the day's and the month's totals the budget is judged on
    assert doc["uplink_today"]["sent"] + doc["uplink_today"]["received"] >= counted
    assert doc["uplink_month"]["sent"] + doc["uplink_month"]["received"] >= counted
