"""Control-plane fixtures: a fleet's credentials and a real Mosquitto started with the files made from them."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from mqtt_testkit import Fleet, signal_controller

from simulators.mosquitto import Mosquitto
from tests.plugin_dist import install_entry_points, uninstall


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


@pytest.fixture(scope="session", autouse=True)
def gated_bus_type(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """The tests' slow field device comes in as a third-party bus type would: an entry point."""
    site = tmp_path_factory.mktemp("site")
    install_entry_points(site, "citygate_gated", {"citygate.buses": {"gated": "mqtt_testkit:GATED"}})
    try:
        yield
    finally:
        uninstall(site)


@pytest.fixture
def controller() -> Iterator[int]:
    """The signal controller simulator of the Dijon Jaurès junction on Modbus TCP (its port)."""
    with signal_controller() as port:
        yield port
