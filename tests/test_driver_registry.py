"""Bus types come in through the `citygate.buses` entry points: citygate's own, and another package's.

The example driver of docs/adding-a-driver.md is installed here as a third-party distribution
would be (a dist-info folder with its entry points on sys.path), and its own test is run: the
agent config then accepts `type = "thermo"` without any edit of citygate.
"""

from __future__ import annotations

import importlib
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from drivers.base import BusContext
from drivers.errors import ConfigError
from drivers.registry import Driver, bus_types, parse_bus
from edge_agent.config import AgentConfigError, parse_config
from tests.plugin_dist import install_entry_points, uninstall

ROOT = Path(__file__).resolve().parent.parent
GUIDE = ROOT / "docs" / "adding-a-driver.md"
BUILT_IN = {"modbus-tcp", "modbus-rtu", "ble", "tic", "mbus", "signals", "lorawan-chirpstack", "cameras", "gnss"}
CTX = BusContext("bus[0]", ROOT)


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Path]:
    """A folder that plays site-packages for a third-party distribution."""
    folder = tmp_path / "site"
    folder.mkdir()
    try:
        yield folder
    finally:
        uninstall(folder)


def _guide_files() -> dict[str, str]:
    """The `# file: NAME` python blocks of the guide."""
    blocks = re.findall(r"```python\n# file: (\S+)\n(.*?)```", GUIDE.read_text(), flags=re.S)
    return dict(blocks)


def _agent_doc(tmp_path: Path, bus: dict[str, object]) -> dict[str, object]:
    return {"gateway": {"id": "gw-1", "commune": "21231", "state_dir": str(tmp_path)},
            "uplink": {"url": "http://127.0.0.1:9", "token": "t"}, "bus": [bus]}


def test_citygate_declares_its_own_bus_types_as_entry_points() -> None:
    assert BUILT_IN <= set(bus_types())
    for name in BUILT_IN:
        (ep,) = bus_types()[name]
        assert ep.dist == "citygate"
        assert isinstance(ep.load(), Driver), name


def test_every_built_in_driver_has_its_readme() -> None:
    for name in BUILT_IN:
        module = importlib.import_module(bus_types()[name][0].module)
        file = Path(module.__file__ or "")
        folder_readme = file.parent / "README.md"
        module_readme = file.parent / f"README-{file.stem}.md"
        assert (file.parent.name != "drivers" and folder_readme.is_file()) or module_readme.is_file(), name


async def test_the_guide_example_is_a_third_party_driver_the_agent_config_accepts(tmp_path: Path, site: Path) -> None:
    files = _guide_files()
    assert set(files) == {"citygate_thermo.py", "thermo_sim.py", "test_thermo.py"}
    doc = _agent_doc(tmp_path, {"name": "thermo-1", "type": "thermo", "device": "t-1"})
    with pytest.raises(AgentConfigError, match="unknown bus type 'thermo'"):
        parse_config(doc, tmp_path / "agent.toml")

    for name, text in files.items():
        (site / name).write_text(text)
    install_entry_points(site, "citygate_thermo", {"citygate.buses": {"thermo": "citygate_thermo:DRIVER"}})
    spec = parse_config(doc, tmp_path / "agent.toml").buses[0]
    assert (spec.type, spec.name) == ("thermo", "thermo-1")

    example = importlib.import_module("test_thermo")
    await example.test_a_thermometer_is_read_then_lost_then_restored(tmp_path)
    example.test_the_codec_refuses_what_is_not_a_temperature()


def test_a_bad_table_of_a_third_party_bus_is_a_config_error_with_its_key(tmp_path: Path, site: Path) -> None:
    (site / "citygate_thermo.py").write_text(_guide_files()["citygate_thermo.py"])
    install_entry_points(site, "citygate_thermo", {"citygate.buses": {"thermo": "citygate_thermo:DRIVER"}})
    doc = _agent_doc(tmp_path, {"name": "thermo-1", "type": "thermo", "device": "t-1", "port": 0})
    with pytest.raises(AgentConfigError) as info:
        parse_config(doc, tmp_path / "agent.toml")
    assert info.value.key == "bus[0].port" and "out of range" in info.value.reason


def test_an_unknown_type_lists_the_installed_ones() -> None:
    with pytest.raises(ConfigError) as info:
        parse_bus({"name": "x", "type": "modbus-udp"}, CTX)
    assert info.value.key == "bus[0].type"
    assert "unknown bus type 'modbus-udp'" in info.value.reason and "modbus-tcp" in info.value.reason


def test_a_type_two_packages_provide_is_refused_naming_both(site: Path) -> None:
    (site / "other_tic.py").write_text("DRIVER = None\n")
    install_entry_points(site, "other_tic", {"citygate.buses": {"tic": "other_tic:DRIVER"}})
    with pytest.raises(ConfigError, match="several packages") as info:
        parse_bus({"name": "m", "type": "tic", "port": "/dev/ttyS0"}, CTX)
    assert "drivers.tic.bus:DRIVER" in info.value.reason and "other_tic:DRIVER" in info.value.reason


def test_an_entry_point_that_is_no_driver_or_does_not_import_is_named(site: Path) -> None:
    (site / "not_a_driver.py").write_text("DRIVER = object()\n")
    install_entry_points(site, "broken_drivers", {"citygate.buses": {
        "nothing": "not_a_driver:DRIVER", "missing": "no_such_module:DRIVER"}})
    with pytest.raises(ConfigError, match=r"not_a_driver:DRIVER is not a drivers.registry.Driver"):
        parse_bus({"type": "nothing"}, CTX)
    with pytest.raises(ConfigError, match=r"cannot load its driver no_such_module:DRIVER \(No module named"):
        parse_bus({"type": "missing"}, CTX)


def test_parsing_a_ble_table_loads_no_simulator() -> None:
    code = ("import sys; from pathlib import Path; from drivers.base import BusContext; "
            "from drivers.registry import parse_bus; "
            "parse_bus({'name': 'ble0', 'type': 'ble', 'allow': [{'mac': 'A4:C1:38:8D:18:B2', 'id': 't', 'kind': 'ruuvi'}]},"
            " BusContext('bus[0]', Path('.'))).build(); "
            "print(sorted(m for m in sys.modules if m.split('.')[0] == 'simulators'))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


_RECORDING: list[tuple[str, tuple[object, ...]]] | None = None


def _audit(event: str, args: tuple[object, ...]) -> None:
    if _RECORDING is not None and (event == "open" or event.startswith("socket.")):
        _RECORDING.append((event, args))


def test_building_a_bus_of_each_built_in_type_opens_nothing(tmp_path: Path) -> None:
    """`build` makes the bus; files, ports, sockets and the radio are opened by `run` (check-config builds too)."""
    global _RECORDING
    (tmp_path / "ble-ble0.counters.json").write_text('{"v": 1, "sensors": {}}')  # read when the bus runs
    ctx = BusContext("bus[0]", ROOT / "configs", state_dir=tmp_path)
    lamp = [{"id": "lamp-1", "unit": 1, "register_map": "registermaps/lamp-lc100.toml"}]
    tables = [
        {"name": "tcp", "type": "modbus-tcp", "host": "127.0.0.1", "port": 1, "device": lamp},
        {"name": "rtu", "type": "modbus-rtu", "port": str(tmp_path / "ttyS9"), "device": lamp},
        {"name": "tic", "type": "tic", "port": str(tmp_path / "ttyS8")},
        {"name": "mbus", "type": "mbus", "port": str(tmp_path / "ttyS7"), "device": [{"id": "m", "primary": 1}]},
        {"name": "ble0", "type": "ble", "allow": [{"mac": "A4:C1:38:8D:18:B2", "id": "t", "kind": "ruuvi"}]},
        {"name": "signals", "type": "signals", "host": "127.0.0.1", "port": 1,
         "intersection": "intersections/dijon-jaures-tram.toml"},
        {"name": "lora", "type": "lorawan-chirpstack", "port": 1,
         "sensor": [{"dev_eui": "70b3d54b10000001", "space": "pk-1", "model": "bosch-pls"}]},
        {"name": "cams", "type": "cameras", "camera": [{"id": "cam-1", "host": "127.0.0.1", "stream": [{"path": "/s"}]}]},
        {"name": "gps", "type": "gnss", "port": str(tmp_path / "ttyS6"), "io": {"host": "127.0.0.1", "cycle_bit": 1}},
    ]
    specs = [parse_bus(raw, ctx) for raw in tables]  # parsing may read the files a table names
    assert {spec.type for spec in specs} == BUILT_IN
    sys.addaudithook(_audit)
    _RECORDING = []
    try:
        buses = [spec.build() for spec in specs]
        [bus.states() for bus in buses]
        opened = list(_RECORDING)
    finally:
        _RECORDING = None
    assert opened == []


@pytest.mark.parametrize(("key", "value", "reason"), [
    ("parity", "X", "expected one of N, E, O, got 'X'"),
    ("bytesize", 9, "9 is out of range [7, 8]"),
    ("stopbits", 3, "3 is out of range [1, 2]"),
    ("port", " ", "must not be empty"),
])
def test_every_serial_bus_type_reads_its_line_keys_alike(key: str, value: object, reason: str) -> None:
    """One parser (drivers/serial_line.parse_line) for Modbus RTU, TIC and M-Bus: one message for one mistake."""
    tables = [
        {"name": "rtu", "type": "modbus-rtu", "port": "/dev/ttyS1",
         "device": [{"id": "l", "unit": 1, "register_map": "registermaps/lamp-lc100.toml"}]},
        {"name": "tic", "type": "tic", "port": "/dev/ttyS2"},
        {"name": "mbus", "type": "mbus", "port": "/dev/ttyS3", "device": [{"id": "m", "primary": 1}]},
    ]
    for raw in tables:
        with pytest.raises(ConfigError) as info:
            parse_bus({**raw, key: value}, BusContext("bus[0]", ROOT / "configs"))
        assert (info.value.key, info.value.reason) == (f"bus[0].{key}", reason), raw["type"]


def test_a_distribution_seen_twice_on_sys_path_counts_once_where_it_is_first(tmp_path: Path) -> None:
    """As importlib.metadata does: an old copy further down sys.path is shadowed, not a second provider."""
    old, new = tmp_path / "old", tmp_path / "new"
    try:
        install_entry_points(old, "citygate_thermo", {"citygate.buses": {"thermo": "old_thermo:DRIVER"}})
        install_entry_points(new, "citygate_thermo", {"citygate.buses": {"thermo": "citygate_thermo:DRIVER"}})
        (thermo,) = bus_types()["thermo"]
        assert thermo.value == "citygate_thermo:DRIVER"
    finally:
        uninstall(new)
        uninstall(old)
