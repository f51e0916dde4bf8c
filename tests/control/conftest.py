"""Control-plane fixtures: a fleet's credentials and a real Mosquitto started with the files made from them."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from mqtt_testkit import Fleet

from simulators.mosquitto import Mosquitto


@pytest.fixture
def fleet(tmp_path: Path) -> Fleet:
    f = Fleet(tmp_path / "acl")
    f.add("gw-a")
    f.add("gw-b")
    return f


@pytest.fixture
def broker(tmp_path: Path, fleet: Fleet) -> Iterator[Mosquitto]:
    b = fleet.broker(tmp_path / "broker")
    b.start()
    try:
        yield b
    finally:
        b.kill()
