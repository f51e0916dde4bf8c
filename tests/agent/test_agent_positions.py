"""The `[positions]` section: each device's place, journalled once for the collector's map."""

from __future__ import annotations

import asyncio
import tomllib
from pathlib import Path

import orjson
import pytest

from edge_agent.agent import Agent
from edge_agent.config import AgentConfigError, parse_config

HEAD = """
[gateway]
id = "gw-map"
commune = "21231"
state_dir = "state"

[uplink]
url = "http://127.0.0.1:9"
token = "t"

[local_api]
socket = "state/agent.sock"
"""


def config(tmp_path: Path, positions: str) -> Agent:
    return Agent(parse_config(tomllib.loads(HEAD + positions), tmp_path / "agent.toml"))


@pytest.mark.parametrize(("text", "key", "reason"), [
    ('"lamp-1" = { latitude = 95.0, longitude = 5.0 }', "positions.lamp-1.latitude", "outside ±90"),
    ('"lamp-1" = { latitude = 47.3 }', "positions.lamp-1.longitude", "missing"),
    ('"lamp-1" = { latitude = "47.3", longitude = 5.0 }', "positions.lamp-1.latitude", "expected a number"),
    ('"lamp-1" = { latitude = 47.3, longitude = 5.0, altitude = 240 }', "positions.lamp-1.altitude", "unknown key"),
    ('"lamp-1" = [47.3, 5.0]', "positions.lamp-1", "expected { latitude"),
])
def test_a_bad_position_names_the_file_key_and_reason(tmp_path: Path, text: str, key: str, reason: str) -> None:
    with pytest.raises(AgentConfigError) as caught:
        config(tmp_path, "[positions]\n" + text + "\n")
    assert caught.value.file == str(tmp_path / "agent.toml")
    assert caught.value.key == key
    assert reason in caught.value.reason


async def pending_positions(agent: Agent) -> list[dict[str, object]]:
    await agent.journal.flush()
    batch = await agent.journal.read_pending(1000, 10**7)
    return [doc for doc in (orjson.loads(b) for b in (batch.records if batch else [])) if doc.get("code") == "device_position"]


async def journalled_positions(agent: Agent, expect: int) -> list[dict[str, object]]:
    """Run the agent until `expect` device_position events are committed (or 10 s), then stop it."""
    task = asyncio.create_task(agent.run())
    try:
        for _ in range(200):
            await asyncio.sleep(0.05)
            if len(await pending_positions(agent)) >= expect and (agent.config.gateway.state_dir / "positions.json").exists():
                break
        await asyncio.sleep(0.2)  # anything more would be journalled by now
        return await pending_positions(agent)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_each_position_is_journalled_once_and_again_only_when_it_moves(tmp_path: Path) -> None:
    two = ('[positions]\n"lamp-1" = { latitude = 47.3221, longitude = 5.0412 }\n'
           '"lamp-2" = { latitude = 47.3223, longitude = 5.0416 }\n')
    first = await journalled_positions(config(tmp_path, two), 2)
    assert sorted((e["device"], e["detail"]) for e in first) == [
        ("lamp-1", {"lat": 47.3221, "lon": 5.0412}), ("lamp-2", {"lat": 47.3223, "lon": 5.0416})]
    assert {e["severity"] for e in first} == {"info"}
    # a restart with the same config journals nothing more (nothing acknowledged: the two are still pending)
    assert len(await journalled_positions(config(tmp_path, two), 2)) == 2
    moved = two.replace("5.0416", "5.0420")
    after = await journalled_positions(config(tmp_path, moved), 3)
    assert [(e["device"], e["detail"]) for e in after[2:]] == [("lamp-2", {"lat": 47.3223, "lon": 5.042})]
