"""`citygate-agent probe ...`: talk to field devices directly, with or without the agent running.

- `probe modbus` scans unit ids on a Modbus TCP endpoint or an RS-485 (RTU) port and, for each
  unit that answers, reads every register map of configs/registermaps/ and says which fits.
- `probe tic` and `probe mbus` run the agent's own driver for a few seconds on a meter line and
  print what it reads, its events and its error counters.
- `probe ble` scans passively for BTHome and Ruuvi sensors, decodes what they send, and prints
  the `[[bus.allow]]` tables to commission them.

A line is sequential: while the agent polls an RS-485 port, a probe on the same port garbles
both, so stop the agent first (docs/technician.md). Exit 0 when something answered, 1 when
nothing did, 2 on bad usage.
"""

from __future__ import annotations

import logging
import math
import sys
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from edge_agent.cli_group import SuggestingGroup
from edge_agent.cli_view import (
    EXIT_ATTENTION,
    EXIT_OK,
    EXIT_USAGE,
    console,
    fail,
    human,
    notes,
    print_json,
    table,
    values_text,
)

# The drivers (pymodbus, bleak) are imported by the command that uses them: `probe --help` and
# `probe tic` must not load the Modbus and Bluetooth stacks.
if TYPE_CHECKING:
    from drivers.base import Bus
    from drivers.modbus.link import ModbusLink
    from drivers.modbus.regmap import RegisterMap
    from drivers.model import Record, Value

#: Where register maps are looked for: the gateway's own, then the ones shipped with the source.
MAP_DIRS = (Path("/etc/citygate/registermaps"), Path(__file__).resolve().parents[1] / "configs" / "registermaps")
#: Modbus TCP gateways answer for an absent serial device with these: nobody is there.
ABSENT_EXCEPTIONS = frozenset({0x0A, 0x0B})
#: A reading outside these bounds means the map reads the wrong registers (or the wrong word order).
PLAUSIBLE = {"%": (0.0, 100.0), "V": (0.0, 1000.0), "A": (0.0, 1000.0), "W": (0.0, 100_000.0),
             "°C": (-60.0, 200.0), "Hz": (40.0, 70.0)}


@click.group(cls=SuggestingGroup)
def probe() -> None:
    """Talk to field devices directly, the agent need not run. Find Modbus units, listen to meters."""
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr, format="%(levelname)s %(name)s: %(message)s")
    # a unit that is not there is the normal case of a scan: pymodbus would log each silence
    logging.getLogger("pymodbus").setLevel(logging.CRITICAL)


# -- modbus --------------------------------------------------------------------------------------


def parse_units(text: str) -> list[int]:
    """'1-247', '1,5,10-12' -> unit ids, each 1..247 (0 is broadcast, 248-255 reserved)."""
    units: list[int] = []
    for part in text.split(","):
        lo_text, _, hi_text = part.strip().partition("-")
        try:
            lo, hi = int(lo_text), int(hi_text or lo_text)
        except ValueError:
            raise click.BadParameter(f"{part!r} is not a unit id or a range like 1-247", param_hint="--units") from None
        if not 1 <= lo <= hi <= 247:
            raise click.BadParameter(f"{part!r}: unit ids are 1..247, ranges ascending", param_hint="--units")
        units.extend(range(lo, hi + 1))
    return sorted(set(units))


def find_maps(paths: Sequence[Path]) -> list[RegisterMap]:
    from drivers.errors import ConfigError
    from drivers.modbus.regmap import load_register_map

    files: list[Path] = []
    for path in paths or [d for d in MAP_DIRS if d.is_dir()][:1]:
        files.extend(sorted(path.glob("*.toml")) if path.is_dir() else [path])
    if not files:
        fail(EXIT_USAGE, f"no register map found (looked in {', '.join(map(str, MAP_DIRS))}; give --map)")
    maps = []
    for f in files:
        try:
            maps.append(load_register_map(f))
        except ConfigError as exc:
            fail(EXIT_USAGE, f"register map error: {exc}")
    return maps


@dataclass
class MapFit:
    map: str
    model: str
    fits: bool
    reason: str
    values: dict[str, Value] = field(default_factory=dict)


@dataclass
class UnitResult:
    unit: int
    answers: bool
    fits: list[MapFit] = field(default_factory=list)
    error: str | None = None

    def to_doc(self) -> dict[str, Any]:
        return {"unit": self.unit, "answers": self.answers, "error": self.error,
                "maps": [vars(f) for f in self.fits], "fitting": [f.map for f in self.fits if f.fits]}


def implausible(regmap: RegisterMap, values: Mapping[str, Value]) -> str | None:
    for reg in regmap.registers:
        value = values.get(reg.name)
        bounds = PLAUSIBLE.get(reg.unit)
        if bounds is None or not isinstance(value, int | float) or isinstance(value, bool):
            continue
        if not math.isfinite(value) or not bounds[0] <= value <= bounds[1]:
            return f"{reg.name} = {value} {reg.unit} is implausible"
    return None


async def try_map(link: ModbusLink, unit: int, regmap: RegisterMap) -> MapFit:
    """Read every block of the map; it fits when all answer and every value is plausible."""
    values: dict[str, Value] = {}
    name = regmap.path.name
    for block in regmap.plan():
        words = await link.read(unit, block.function, block.address, block.count)
        block.decode_into(words, values)
    problem = implausible(regmap, values)
    return MapFit(name, regmap.model, problem is None, problem or "every register answers, values plausible", values)


async def probe_unit(link: ModbusLink, unit: int, maps: Sequence[RegisterMap]) -> UnitResult:
    from drivers.modbus.link import BadReply, ExceptionReply, NoReply

    result = UnitResult(unit, answers=False)
    for regmap in maps:
        try:
            fit = await try_map(link, unit, regmap)
        except ExceptionReply as exc:
            if exc.code in ABSENT_EXCEPTIONS:
                return result
            result.answers = True
            fit = MapFit(regmap.path.name, regmap.model, False, str(exc))
        except NoReply:
            if not result.answers:
                return result  # nobody at this address: do not wait out a timeout per map
            fit = MapFit(regmap.path.name, regmap.model, False, "stopped answering")
        except BadReply as exc:
            result.answers = True
            result.error = f"garbled replies (wrong speed or parity? two masters?): {exc}"
            return result
        else:
            result.answers = True
        result.fits.append(fit)
    return result


def _host_port(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise click.BadParameter(f"{text!r} is not HOST:PORT", param_hint="--tcp")
    return host, int(port)


@probe.command("modbus")
@click.option("--tcp", metavar="HOST:PORT", help="A Modbus TCP endpoint (a controller, or a TCP-to-RS-485 gateway).")
@click.option("--port", "serial_port", metavar="DEVICE", help="An RS-485 serial port, e.g. /dev/ttyUSB0 (Modbus RTU).")
@click.option("--baud", type=click.Choice(["1200", "2400", "4800", "9600", "19200", "38400", "57600", "115200"]),
              default="9600", show_default=True)
@click.option("--parity", type=click.Choice(["N", "E", "O"]), default="E", show_default=True)
@click.option("--stopbits", type=click.IntRange(1, 2), default=1, show_default=True)
@click.option("--units", default="1-247", show_default=True, help="Unit ids to try: 1-247, or e.g. 1-10,20.")
@click.option("--timeout", "timeout_s", type=click.FloatRange(0.02, 10), default=0.3, show_default=True,
              help="Seconds to wait for each answer.")
@click.option("--map", "map_paths", multiple=True, type=click.Path(exists=True, path_type=Path),
              help="Register map file or folder (repeatable); default: /etc/citygate/registermaps or configs/.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def probe_modbus(tcp: str | None, serial_port: str | None, baud: str, parity: str, stopbits: int, units: str,
                 timeout_s: float, map_paths: tuple[Path, ...], as_json: bool) -> None:
    """Scan unit ids and say which register map fits each unit that answers."""
    import asyncio

    from drivers.modbus.link import LinkDown, rtu_link, tcp_link

    if (tcp is None) == (serial_port is None):
        raise click.UsageError("give exactly one of --tcp HOST:PORT or --port DEVICE")
    unit_list = parse_units(units)
    maps = find_maps(map_paths)
    if tcp is not None:
        host, port = _host_port(tcp)
        link = tcp_link(host, port, timeout_s=timeout_s, reconnect_s=(0.5, 2.0))
        where = f"modbus-tcp {host}:{port}"
    else:
        assert serial_port is not None
        link = rtu_link(serial_port, baudrate=int(baud), parity=parity, stopbits=stopbits, bytesize=8,
                        timeout_s=timeout_s, reconnect_s=(0.5, 2.0))
        where = f"modbus-rtu {serial_port} {baud} 8{parity}{stopbits}"
    try:
        results = asyncio.run(_scan(link, unit_list, maps, where))
    except LinkDown as exc:
        fail(EXIT_ATTENTION, f"cannot open {where}: {exc}")
    found = [r for r in results if r.answers]
    if as_json:
        print_json({"where": where, "scanned": len(unit_list), "maps": [m.path.name for m in maps],
                    "units": [r.to_doc() for r in found]})
    else:
        if not found:
            notes([f"no unit answered on {where} (units {units}, timeout {timeout_s} s)"])
        else:
            t = table("unit", "fitting register map", "reading", title=f"{len(found)} unit(s) on {where}")
            below = []
            for r in found:
                fitting = [f for f in r.fits if f.fits]
                below += [f"unit {r.unit}, {f.map}: {f.reason}" for f in r.fits if not f.fits]
                t.add_row(str(r.unit), ", ".join(f"{f.map} ({f.model})" for f in fitting) or "[red]none[/]",
                          values_text(fitting[0].values, 5) if fitting else (r.error or ""))
            console().print(t)
            notes(below)
    sys.exit(EXIT_OK if found else EXIT_ATTENTION)


async def _scan(link: ModbusLink, units: Sequence[int], maps: Sequence[RegisterMap], where: str) -> list[UnitResult]:
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from drivers.modbus.link import LinkDown, LinkError

    results: list[UnitResult] = []
    progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                        console=Console(stderr=True), transient=True)
    try:
        with progress:
            task = progress.add_task(f"scanning {where}", total=len(units))
            for unit in units:
                try:
                    results.append(await probe_unit(link, unit, maps))
                except LinkDown:
                    if not results:
                        raise
                    results.append(UnitResult(unit, False, error="link down"))
                except LinkError as exc:
                    results.append(UnitResult(unit, True, error=str(exc)))
                found = sum(r.answers for r in results)
                progress.update(task, advance=1, description=f"scanning {where}: {found} found")
    finally:
        await link.aclose()
    return results


# -- meters: the agent's own drivers for a few seconds -------------------------------------------


@dataclass
class Listening:
    records: list[Record] = field(default_factory=list)

    def __call__(self, record: Record) -> None:
        self.records.append(record)
        click.echo(_record_line(record), err=True)


def _record_line(record: Record) -> str:
    from drivers.model import Sample

    if isinstance(record, Sample):
        return f"  sample {record.device}: {values_text(record.values, 8)}"
    return f"  event  {record.device}: {record.severity} {record.code} {human(dict(record.detail))}"


async def _listen(bus: Bus, seconds: float) -> Listening:
    import asyncio

    heard = Listening()
    task = asyncio.create_task(bus.run(heard))
    try:
        await asyncio.wait({task}, timeout=seconds)
        if task.done():
            task.result()  # a bus that stops by itself has a reason: let it show
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await bus.aclose()
    return heard


def listen_with_driver(raw: dict[str, Any], seconds: float, as_json: bool) -> None:
    import asyncio

    from drivers.base import BusContext
    from drivers.errors import ConfigError
    from drivers.model import Sample
    from drivers.registry import make_bus
    from edge_agent.localapi import record_doc

    try:
        bus = make_bus(raw, BusContext(key="probe", config_dir=Path.cwd()))
    except ConfigError as exc:
        fail(EXIT_USAGE, f"bad probe settings: {exc.key}: {exc.reason}")
    click.echo(f"listening to {raw['port']} for {seconds:g} s ...", err=True)
    heard = asyncio.run(_listen(bus, seconds))
    samples = [r for r in heard.records if isinstance(r, Sample)]
    states = bus.states()
    if as_json:
        print_json({"port": raw["port"], "seconds": seconds, "records": [record_doc(r) for r in heard.records],
                    "devices": [asdict(s) for s in states]})
    else:
        t = table("device", "state", "last values", "errors")
        for s in states:
            t.add_row(s.device, s.state, values_text(s.last_values, 8),
                      ", ".join(f"{k} {v}" for k, v in sorted(s.errors.items()) if v) or "0")
        console().print(t)
        notes([f"{s.device}: {s.last_error}" for s in states if s.last_error])
    sys.exit(EXIT_OK if samples else EXIT_ATTENTION)


@probe.command("tic")
@click.argument("port")
@click.option("--mode", type=click.Choice(["historic", "standard"]), default="historic", show_default=True,
              help="The meter's TIC mode (its display shows it).")
@click.option("--baud", type=int, default=None, help="Default: 1200 historic, 9600 standard.")
@click.option("--parity", type=click.Choice(["N", "E", "O"]), default="E", show_default=True)
@click.option("--bytesize", type=click.IntRange(7, 8), default=7, show_default=True)
@click.option("--seconds", type=click.FloatRange(1, 600), default=10, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def probe_tic(port: str, mode: str, baud: int | None, parity: str, bytesize: int, seconds: float,
              as_json: bool) -> None:
    """Listen to a Linky meter's TIC output on PORT with the agent's TIC driver."""
    raw: dict[str, Any] = {"name": "probe", "type": "tic", "port": port, "mode": mode, "parity": parity,
                           "bytesize": bytesize, "sample_interval_s": 1, "silent_after_s": max(seconds - 1, 1)}
    if baud is not None:
        raw["baudrate"] = baud
    listen_with_driver(raw, seconds, as_json)


@probe.command("mbus")
@click.argument("port")
@click.option("--address", "addresses", multiple=True,
              help="A meter: primary address 1-250, or its 8-digit secondary id (repeatable).")
@click.option("--scan", "scan", default=None, help="Primary addresses to try, e.g. 1-250.")
@click.option("--baud", type=click.Choice(["300", "2400", "9600"]), default="2400", show_default=True)
@click.option("--parity", type=click.Choice(["N", "E", "O"]), default="E", show_default=True)
@click.option("--timeout", "timeout_s", type=click.FloatRange(0.05, 10), default=0.5, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def probe_mbus(port: str, addresses: tuple[str, ...], scan: str | None, baud: str, parity: str, timeout_s: float,
               as_json: bool) -> None:
    """Read M-Bus meters on PORT once with the agent's M-Bus driver (by address, or scanning primary addresses)."""
    devices: list[dict[str, Any]] = []
    for a in addresses:
        if a.isdigit() and len(a) == 8:
            devices.append({"id": f"secondary-{a}", "secondary": a})
        elif a.isdigit() and 1 <= int(a) <= 250:
            devices.append({"id": f"primary-{int(a)}", "primary": int(a)})
        else:
            raise click.BadParameter(f"{a!r}: a primary address 1-250 or an 8-digit secondary id", param_hint="--address")
    if scan is not None:
        try:
            lo_text, _, hi_text = scan.partition("-")
            lo, hi = int(lo_text), int(hi_text or lo_text)
        except ValueError:
            raise click.BadParameter(f"{scan!r} is not a range like 1-250", param_hint="--scan") from None
        if not 1 <= lo <= hi <= 250:
            raise click.BadParameter(f"{scan!r}: primary addresses are 1..250", param_hint="--scan")
        devices.extend({"id": f"primary-{a}", "primary": a} for a in range(lo, hi + 1))
    if not devices:
        raise click.UsageError("give --address (repeatable) or --scan")
    raw = {"name": "probe", "type": "mbus", "port": port, "baudrate": int(baud), "parity": parity,
           "timeout_s": timeout_s, "retries": 1, "interval_s": 3600, "device": devices}
    # every meter gets its tries once (SND_NKE and REQ_UD2, each with one repeat), with room for multi-telegram reads
    listen_with_driver(raw, len(devices) * timeout_s * 4 + 3, as_json)


@dataclass
class HeardSensor:
    mac: str
    kind: str
    name: str | None = None
    adverts: int = 0
    rssi_dbm: int | None = None
    values: dict[str, Value] = field(default_factory=dict)
    error: str | None = None


def _heard(adv_mac: str, name: str | None, rssi: int | None, service_data: Mapping[str, bytes],
           manufacturer_data: Mapping[int, bytes], keys: Mapping[str, bytes],
           heard: dict[str, HeardSensor]) -> None:
    from drivers import bthome, ruuvi
    from drivers.errors import DecodeError

    if bthome.SERVICE_UUID in service_data:
        kind, payload = "bthome", service_data[bthome.SERVICE_UUID]
    elif ruuvi.MANUFACTURER_ID in manufacturer_data:
        kind, payload = "ruuvi", manufacturer_data[ruuvi.MANUFACTURER_ID]
    else:
        return
    sensor = heard.setdefault(adv_mac, HeardSensor(adv_mac, kind))
    sensor.adverts += 1
    sensor.name = name or sensor.name
    sensor.rssi_dbm = rssi
    try:
        if kind == "bthome":
            sensor.values = bthome.decode(payload, key=keys.get(adv_mac), mac=bthome.parse_mac(adv_mac)).values()
        else:
            sensor.values = dict(ruuvi.decode(payload).sample_values())
        sensor.error = None
    except DecodeError as exc:
        sensor.error = str(exc)


async def _scan_ble(backend_spec: str, adapter: str | None, seconds: float,
                    keys: Mapping[str, bytes]) -> dict[str, HeardSensor]:
    import asyncio

    from bleak import BleakScanner
    from bleak.args.bluez import BlueZScannerArgs

    from drivers.base import BusContext
    from drivers.ble import OR_PATTERNS, START_ERRORS, scanner_backend, unavailable_reason
    from drivers.errors import ConfigError

    try:
        backend, kwargs = scanner_backend(backend_spec, BusContext(key="probe", config_dir=Path.cwd()))
    except ConfigError as exc:
        fail(EXIT_USAGE, f"--backend: {exc.reason}")
    heard: dict[str, HeardSensor] = {}
    bluez: BlueZScannerArgs = {"or_patterns": list(OR_PATTERNS)}
    if adapter:
        bluez["adapter"] = adapter
    scanner = BleakScanner(
        lambda d, a: _heard(d.address.upper(), a.local_name, a.rssi, a.service_data, a.manufacturer_data, keys, heard),
        None, "passive", bluez=bluez, backend=backend, **kwargs,
    )
    try:
        async with asyncio.timeout(30):
            await scanner.start()
    except (TimeoutError, *START_ERRORS) as exc:  # type: ignore[misc]  # a tuple of exception classes
        reason = "the Bluetooth stack did not answer within 30 s" if isinstance(exc, TimeoutError) \
            else unavailable_reason(exc)
        fail(EXIT_ATTENTION, f"Bluetooth unavailable: {reason}")
    try:
        await asyncio.sleep(seconds)
    finally:
        await scanner.stop()
    return heard


def _parse_keys(pairs: Sequence[str]) -> dict[str, bytes]:
    from drivers import bthome

    keys: dict[str, bytes] = {}
    for pair in pairs:
        mac_text, _, key_hex = pair.partition("=")
        try:
            mac = bthome.format_mac(bthome.parse_mac(mac_text))
            key = bytes.fromhex(key_hex)
        except ValueError:
            raise click.BadParameter(f"{pair!r}: expected MAC=32 hex digits", param_hint="--key") from None
        if len(key) != 16:
            raise click.BadParameter(f"{pair!r}: a bindkey is 16 bytes", param_hint="--key")
        keys[mac] = key
    return keys


@probe.command("ble")
@click.option("--seconds", type=click.FloatRange(1, 600), default=10, show_default=True)
@click.option("--backend", default="os", show_default=True,
              help="'os' (the gateway's Bluetooth adapter) or 'replay:FILE' (a simulator scenario).")
@click.option("--adapter", default=None, help="e.g. hci1; default: the system's default adapter.")
@click.option("--key", "key_pairs", multiple=True, metavar="MAC=HEX",
              help="Bindkey of an encrypted BTHome sensor (repeatable).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def probe_ble(seconds: float, backend: str, adapter: str | None, key_pairs: tuple[str, ...], as_json: bool) -> None:
    """Scan passively for BTHome and Ruuvi sensors; show what each sends and how to allow it."""
    import asyncio

    keys = _parse_keys(key_pairs)
    click.echo(f"scanning for BLE sensors for {seconds:g} s ...", err=True)
    heard = sorted(asyncio.run(_scan_ble(backend, adapter, seconds, keys)).values(), key=lambda h: h.mac)
    if as_json:
        print_json({"seconds": seconds, "sensors": [asdict(h) for h in heard]})
    else:
        t = table("mac", "kind", "adverts", "rssi", "values")  # names and errors below: the MAC is never cut
        for h in heard:
            t.add_row(h.mac, h.kind, str(h.adverts), "" if h.rssi_dbm is None else f"{h.rssi_dbm} dBm",
                      values_text(h.values, 6))
        console().print(t)
        notes([f"{h.mac}: {'named ' + repr(h.name) if h.name else ''}{'; ' if h.name and h.error else ''}"
               f"{h.error or ''}" for h in heard if h.name or h.error])
        for h in heard:
            click.echo(f'[[bus.allow]]\nmac = "{h.mac}"\nid = "sensor-{h.mac.replace(":", "")[-6:].lower()}"\n'
                       f'kind = "{h.kind}"\n')
    sys.exit(EXIT_OK if heard else EXIT_ATTENTION)
