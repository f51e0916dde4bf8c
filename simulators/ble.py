"""BLE sensors replayed from a scenario file, through bleak's own scanner.

`ReplayScanner` is a bleak scanner backend (a `BaseBleakScanner` subclass) given to
`BleakScanner(backend=ReplayScanner, scenario=...)`: it builds real `BLEDevice` and
`AdvertisementData` objects with `create_or_update_device()` and hands them to
`call_detection_callbacks()`, exactly as the BlueZ backend does, so the real scanner and our
decoders run unchanged. Only the radio is simulated. The BLE bus takes it with
``backend = "replay:scenario.json"``.

Scenario (JSON ``{"devices": [...]}`` or TOML ``[[devices]]``), one entry per sensor::

    {"mac": "A4:C1:38:8D:18:B2", "name": "ATC_8D18B2", "kind": "bthome",
     "interval_s": 2.0, "rssi": -67,
     "values": {"temperature_c": 21.5, "humidity_pct": 48.2, "battery_pct": 93},
     "key": "231d39c1d7cc1ab1aee224cd096db932"}

- ``kind``: ``bthome`` or ``ruuvi``.
- ``values``: quantities to encode (BTHome: our quantity names, e.g. ``temperature_c``,
  ``motion``; Ruuvi: the RAWv2 fields ``temperature_c``, ``humidity_pct``, ``pressure_pa``,
  ``acceleration_x_mg`` .., ``battery_mv``, ``tx_power_dbm``, ``movement_count``; missing ones
  are sent as "not available"). Each advert gets the next packet id / encryption counter
  (BTHome) or measurement sequence number (Ruuvi), as a real sensor does.
- ``payload``: hex sent verbatim instead (service data after the UUID, or Ruuvi manufacturer data);
  a list of hex strings is sent in turn, e.g. a captured sequence, or a replayed old packet.
- ``key``: BTHome bindkey (hex): the values are sent AES-CCM encrypted.
- ``start_s`` (0), ``count`` (adverts, then silence; default forever), ``repeat`` (copies of
  each advert, as radios repeat them; default 1), ``packet_id`` (BTHome, default true),
  ``gaps`` (``[[from_s, to_s], ...]``: the sensor sends nothing then, e.g. a flat battery swapped).
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import json
import tomllib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click
from bleak import BleakScanner
from bleak.backends.device import BLEDevice
from bleak.backends.scanner import AdvertisementData, AdvertisementDataCallback, BaseBleakScanner

from drivers import bthome, ruuvi

_DEVICE_KEYS = {"mac", "name", "kind", "interval_s", "rssi", "values", "payload", "key", "start_s", "count",
                "repeat", "packet_id", "gaps"}
_RUUVI_VALUES = set(ruuvi.RuuviReading._fields) - {"sequence", "mac"}
_AD_FLAGS = bytes((0x02, 0x01, 0x06))
_LEGACY_ADV_MAX = 31


class ScenarioError(ValueError):
    """A scenario file that cannot be replayed: says which file, which entry and why."""


@dataclass(frozen=True, slots=True)
class SimDevice:
    mac: str  # "AA:BB:CC:DD:EE:FF"
    name: str | None
    kind: str  # "bthome" | "ruuvi"
    interval_s: float
    rssi: int
    start_s: float = 0.0
    count: int | None = None
    repeat: int = 1
    payloads: tuple[bytes, ...] = ()
    values: Mapping[str, Any] | None = None
    key: bytes | None = None
    packet_id: bool = True
    gaps: tuple[tuple[float, float], ...] = ()

    def payload_at(self, k: int) -> bytes:
        """The payload of this device's k-th advert (k from 0)."""
        if self.payloads:
            return self.payloads[k % len(self.payloads)]
        assert self.values is not None
        if self.kind == "ruuvi":
            fields = {f: self.values.get(f) for f in _RUUVI_VALUES}
            return ruuvi.encode(ruuvi.RuuviReading(**fields, sequence=k % 65535, mac=self.mac.lower()))
        objects = bthome.objects_for_values(self.values)
        if self.packet_id:
            objects.insert(0, (0x00, k % 256))
        mac = bthome.parse_mac(self.mac)
        return bthome.encode(objects, key=self.key, mac=mac, counter=k + 1)


@dataclass(frozen=True, slots=True)
class Scenario:
    devices: tuple[SimDevice, ...]
    source: str


@dataclass(frozen=True, slots=True)
class Advert:
    """One advertisement as a scanner reports it, `t_s` seconds after the replay started."""

    t_s: float
    device: SimDevice
    payload: bytes

    def advertisement_data(self) -> AdvertisementData:
        d = self.device
        if d.kind == "bthome":
            service_data, manufacturer_data, uuids = {bthome.SERVICE_UUID: self.payload}, {}, [bthome.SERVICE_UUID]
        else:
            service_data, manufacturer_data, uuids = {}, {ruuvi.MANUFACTURER_ID: self.payload}, []
        return AdvertisementData(
            local_name=d.name,
            manufacturer_data=manufacturer_data,
            service_data=service_data,
            service_uuids=uuids,
            tx_power=None,
            rssi=d.rssi,
            platform_data=("replay", self.t_s),
        )

    def on_air(self) -> tuple[bytes, bytes]:
        """(advertising data, scan response) AD structures; the name goes in the scan response if it does not fit."""
        if self.device.kind == "bthome":
            data = bthome.UUID16_LE + self.payload
            element = bytes((len(data) + 1, 0x16)) + data
        else:
            data = ruuvi.MANUFACTURER_ID.to_bytes(2, "little") + self.payload
            element = bytes((len(data) + 1, 0xFF)) + data
        adv = _AD_FLAGS + element
        name = b""
        if self.device.name:
            raw = self.device.name.encode("utf-8")
            name = bytes((len(raw) + 1, 0x09)) + raw
        if name and len(adv) + len(name) <= _LEGACY_ADV_MAX:
            return _AD_FLAGS + name + element, b""
        return adv, name


def timeline(scenario: Scenario) -> Iterator[Advert]:
    """Every advert of the scenario in time order; endless unless every device has a count."""
    heap: list[tuple[float, int, int]] = []
    for i, d in enumerate(scenario.devices):
        heapq.heappush(heap, (d.start_s, i, 0))
    while heap:
        t, i, k = heapq.heappop(heap)
        d = scenario.devices[i]
        if not any(start <= t < end for start, end in d.gaps):
            payload = d.payload_at(k)
            for _ in range(d.repeat):
                yield Advert(t, d, payload)
        if d.count is None or k + 1 < d.count:
            heapq.heappush(heap, (d.start_s + (k + 1) * d.interval_s, i, k + 1))


class ReplayScanner(BaseBleakScanner):
    """bleak scanner backend replaying a scenario in real time: `BleakScanner(backend=ReplayScanner, scenario=...)`."""

    def __init__(
        self,
        detection_callback: AdvertisementDataCallback | None,
        service_uuids: list[str] | None,
        scanning_mode: str = "active",
        *,
        scenario: Scenario,
        **kwargs: Any,  # bleak passes its per-OS arguments (bluez=, cb=) to every backend
    ) -> None:
        super().__init__(detection_callback, service_uuids)
        self.scenario = scenario
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self.seen_devices = {}
        self._task = asyncio.create_task(self._replay(), name="ble-replay")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _replay(self) -> None:
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        for advert in timeline(self.scenario):
            # Behind schedule on a loaded machine: still yield once, so a burst never starves the loop.
            await asyncio.sleep(max(0.0, t0 + advert.t_s - loop.time()))
            adv = advert.advertisement_data()
            if not self.is_allowed_uuid(adv.service_uuids):
                continue
            mac = advert.device.mac
            device = self.create_or_update_device(mac, mac, advert.device.name, {"source": "replay"}, adv)
            self.call_detection_callbacks(device, adv)


# --- scenario files ------------------------------------------------------------------------------------


def replay_backend(argument: str, config_dir: Path) -> tuple[type[BaseBleakScanner], dict[str, Any]]:
    """The BLE bus's `replay:FILE` backend (entry point `replay` of citygate.ble_backends in pyproject.toml).

    FILE is relative to the agent config's folder; a bad scenario is a ScenarioError (a ValueError)."""
    path = Path(argument).expanduser()
    return ReplayScanner, {"scenario": load_scenario(path if path.is_absolute() else config_dir / path)}


def load_scenario(path: Path | str) -> Scenario:
    """Read a JSON or TOML scenario; ScenarioError names the file, the entry and the reason."""
    path = Path(path)
    try:
        text = path.read_bytes()
    except OSError as exc:
        raise ScenarioError(f"{path}: cannot read: {exc.strerror}") from None
    try:
        if path.suffix == ".toml":
            doc: Any = tomllib.loads(text.decode("utf-8"))
        else:
            doc = json.loads(text)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ScenarioError(f"{path}: not valid {'TOML' if path.suffix == '.toml' else 'JSON'}: {exc}") from None
    return parse_scenario(doc, str(path))


def parse_scenario(doc: Any, source: str) -> Scenario:
    if not isinstance(doc, dict) or set(doc) != {"devices"}:
        raise ScenarioError(f"{source}: expected exactly one member, devices (a list of sensor entries)")
    raw = doc["devices"]
    if not isinstance(raw, list) or not raw:
        raise ScenarioError(f"{source}: devices must be a non-empty list")
    devices = tuple(_device(entry, f"{source}: devices[{i}]") for i, entry in enumerate(raw))
    macs = [d.mac for d in devices]
    dup = next((m for m in macs if macs.count(m) > 1), None)
    if dup is not None:
        raise ScenarioError(f"{source}: MAC {dup} appears twice")
    return Scenario(devices, source)


def _device(raw: Any, where: str) -> SimDevice:
    if not isinstance(raw, dict):
        raise ScenarioError(f"{where}: expected a table")
    unknown = sorted(set(raw) - _DEVICE_KEYS)
    if unknown:
        raise ScenarioError(f"{where}.{unknown[0]}: unknown key")

    def get(name: str, kinds: type | tuple[type, ...], default: Any = None, required: bool = False) -> Any:
        if name not in raw:
            if required:
                raise ScenarioError(f"{where}.{name}: missing")
            return default
        value = raw[name]
        if (isinstance(value, bool) and kinds is not bool) or not isinstance(value, kinds):
            raise ScenarioError(f"{where}.{name}: wrong type {type(value).__name__}")
        return value

    try:
        mac = bthome.format_mac(bthome.parse_mac(get("mac", str, required=True)))
    except ValueError as exc:
        raise ScenarioError(f"{where}.mac: {exc}") from None
    kind = get("kind", str, required=True)
    if kind not in ("bthome", "ruuvi"):
        raise ScenarioError(f"{where}.kind: {kind!r}, expected 'bthome' or 'ruuvi'")
    interval = float(get("interval_s", (int, float), 1.0))
    start = float(get("start_s", (int, float), 0.0))
    rssi = get("rssi", int, -70)
    count = get("count", int)
    repeat = get("repeat", int, 1)
    _check_ranges(where, interval, start, rssi, count, repeat)
    payload_raw, values, key_hex = get("payload", (str, list)), get("values", dict), get("key", str)
    if (payload_raw is None) == (values is None):
        raise ScenarioError(f"{where}: give exactly one of payload (hex, or a list of hex) or values")
    payloads = _payloads(payload_raw, where) if payload_raw is not None else []
    gaps = _gaps(get("gaps", list, []), where)
    key = _bindkey(key_hex, kind, values, where) if key_hex is not None else None
    if kind == "ruuvi" and values is not None:
        extra = sorted(set(values) - _RUUVI_VALUES)
        if extra:
            raise ScenarioError(f"{where}.values.{extra[0]}: not a Ruuvi field; known: {', '.join(sorted(_RUUVI_VALUES))}")
    device = SimDevice(
        mac=mac, name=get("name", str), kind=kind, interval_s=interval, rssi=rssi, start_s=start, count=count,
        repeat=repeat, payloads=tuple(payloads), values=values, key=key, packet_id=get("packet_id", bool, True),
        gaps=tuple(gaps),
    )
    try:
        device.payload_at(0)
    except (ValueError, TypeError) as exc:
        raise ScenarioError(f"{where}.values: {exc}") from None
    return device


def _check_ranges(where: str, interval: float, start: float, rssi: int, count: int | None, repeat: int) -> None:
    if not 0.001 <= interval <= 86_400:
        raise ScenarioError(f"{where}.interval_s: {interval} is out of range [0.001, 86400]")
    if start < 0:
        raise ScenarioError(f"{where}.start_s: must not be negative")
    if not -127 <= rssi <= 20:
        raise ScenarioError(f"{where}.rssi: {rssi} dBm is out of range [-127, 20]")
    if count is not None and count < 1:
        raise ScenarioError(f"{where}.count: must be at least 1")
    if not 1 <= repeat <= 10:
        raise ScenarioError(f"{where}.repeat: {repeat} is out of range [1, 10]")


def _payloads(raw: str | list[Any], where: str) -> list[bytes]:
    payloads: list[bytes] = []
    for j, text in enumerate([raw] if isinstance(raw, str) else raw):
        try:
            payloads.append(bytes.fromhex(text.replace(" ", "")))
        except (ValueError, AttributeError):
            raise ScenarioError(f"{where}.payload[{j}]: not a hex string") from None
    if not payloads:
        raise ScenarioError(f"{where}.payload: empty list")
    return payloads


def _gaps(raw: list[Any], where: str) -> list[tuple[float, float]]:
    gaps: list[tuple[float, float]] = []
    for j, gap in enumerate(raw):
        if not (isinstance(gap, list) and len(gap) == 2 and all(_number(x) for x in gap) and 0 <= gap[0] < gap[1]):
            raise ScenarioError(f"{where}.gaps[{j}]: expected [from_s, to_s] with 0 <= from_s < to_s")
        gaps.append((float(gap[0]), float(gap[1])))
    return gaps


def _bindkey(key_hex: str, kind: str, values: dict[str, Any] | None, where: str) -> bytes:
    if kind != "bthome" or values is None:
        raise ScenarioError(f"{where}.key: only for a bthome device given values (a payload is sent as is)")
    try:
        key = bytes.fromhex(key_hex)
    except ValueError:
        raise ScenarioError(f"{where}.key: not hexadecimal") from None
    if len(key) != 16:
        raise ScenarioError(f"{where}.key: a bindkey is 16 bytes (32 hex digits), got {len(key)}")
    return key


def _number(x: object) -> bool:
    return isinstance(x, int | float) and not isinstance(x, bool)


# --- citygate-sim ble -------------------------------------------------------------------------------


@click.command("ble")
@click.option("--scenario", "scenario_file", required=True, type=click.Path(path_type=Path),
              help="Scenario file (JSON or TOML).")
@click.option("--count", default=20, show_default=True, type=click.IntRange(min=1),
              help="How many adverts to print.")
@click.option("--run", "run_s", type=click.FloatRange(min=0, min_open=True),
              help="Instead, replay for this many seconds through bleak's BleakScanner and print what it reports.")
def ble(scenario_file: Path, count: int, run_s: float | None) -> None:
    """Print the BLE adverts a scenario emits (payload and on-air bytes, hex), or replay them through bleak."""
    try:
        scenario = load_scenario(scenario_file)
    except ScenarioError as exc:
        raise click.ClickException(str(exc)) from None
    if run_s is not None:
        asyncio.run(_run(scenario, run_s))
        return
    for i, advert in enumerate(timeline(scenario)):
        if i >= count:
            break
        d = advert.device
        adv, scan_rsp = advert.on_air()
        rsp = f"  scan_rsp {scan_rsp.hex()}" if scan_rsp else ""
        click.echo(f"{advert.t_s:9.3f} s  {d.mac}  {d.kind:<6}  rssi {d.rssi:4d}  "
                   f"payload {advert.payload.hex()}  adv {adv.hex()}{rsp}")


async def _run(scenario: Scenario, seconds: float) -> None:
    t0 = asyncio.get_running_loop().time()

    def seen(device: BLEDevice, adv: AdvertisementData) -> None:
        t = asyncio.get_running_loop().time() - t0
        data = adv.service_data.get(bthome.SERVICE_UUID) or adv.manufacturer_data.get(ruuvi.MANUFACTURER_ID) or b""
        click.echo(f"{t:9.3f} s  {device.address}  {device.name or '-'}  rssi {adv.rssi}  {data.hex()}")

    async with BleakScanner(seen, None, "passive", backend=ReplayScanner, scenario=scenario):
        await asyncio.sleep(seconds)
