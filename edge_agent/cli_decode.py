"""`citygate-agent decode ...`: decode one frame or payload given as hex, for technicians and scripts.

Each protocol adds a subcommand to the `decode` group. A subcommand calls `show()` with the
decoder's result, or lets the driver's DecodeError through to `decode_errors()`, which prints
the precise reason and exits with code 2.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, cast

import click
import orjson

from drivers.errors import DecodeError
from edge_agent.cli_group import SuggestingGroup

if TYPE_CHECKING:
    from drivers.modbus.frames import Frame


@click.group(cls=SuggestingGroup)
def decode() -> None:
    """Decode one frame or payload given as hex. Exit 2 on a decode error."""


def parse_hex(text: str) -> bytes:
    """Hex with or without spaces, colons or a 0x prefix."""
    cleaned = text.replace(" ", "").replace(":", "").replace("0x", "").replace("0X", "")
    try:
        return bytes.fromhex(cleaned)
    except ValueError:
        raise click.BadParameter(f"not hexadecimal: {text!r}", param_hint="HEX") from None


@contextmanager
def decode_errors() -> Iterator[None]:
    try:
        yield
    except DecodeError as exc:
        click.echo(f"decode error: {exc}", err=True)
        sys.exit(2)


def show(doc: Mapping[str, Any], as_json: bool) -> None:
    """Print a decoded document: a `fields` list of {name, value, unit} plus any other members."""
    from rich.console import Console
    from rich.table import Table

    if as_json:
        click.echo(orjson.dumps(doc, option=orjson.OPT_INDENT_2, default=str).decode())
        return
    console = Console()
    for key, value in doc.items():
        if key != "fields":
            console.print(f"[bold]{key}[/bold]: {value}")
    table = Table("field", "value", "unit")
    for f in doc.get("fields", []):
        # a field with no value says why (an invalid date, an error code) rather than "None"
        value = f"({f['problem']})" if f["value"] is None and f.get("problem") else str(f["value"])
        table.add_row(str(f["name"]), value, str(f.get("unit") or ""))
    console.print(table)


@decode.command("bthome")
@click.argument("hex_payload", metavar="HEX")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@click.option("--key", help="Bindkey of an encrypted sensor (32 hex digits).")
@click.option("--mac", help="Sensor MAC (e.g. 54:48:E6:8F:80:A5): part of the nonce of an encrypted payload.")
def bthome_cmd(hex_payload: str, as_json: bool, key: str | None, mac: str | None) -> None:
    """One BTHome v2 service-data payload: the bytes after the UUID (bleak's service_data[...fcd2...])."""
    from drivers import bthome

    data = parse_hex(hex_payload)
    bindkey = None
    if key is not None:
        try:
            bindkey = bytes.fromhex(key.replace(" ", ""))
        except ValueError:
            raise click.BadParameter(f"not hexadecimal: {key!r}", param_hint="--key") from None
        if len(bindkey) != 16:
            raise click.BadParameter(f"a bindkey is 16 bytes (32 hex digits), got {len(bindkey)}", param_hint="--key")
    try:
        mac_bytes = bthome.parse_mac(mac) if mac is not None else None
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--mac") from None
    with decode_errors():
        frame = bthome.decode(data, key=bindkey, mac=mac_bytes)
    doc: dict[str, Any] = {
        "protocol": "BTHome v2",
        "device_info": f"0x{frame.device_info:02x}",
        "encrypted": frame.encrypted,
        "trigger_based": frame.trigger_based,
    }
    if frame.mac is not None:
        doc["mac"] = bthome.format_mac(frame.mac)
    if frame.counter is not None:
        doc["counter"] = frame.counter
    doc["fields"] = [
        {"name": m.name, "value": m.value, "unit": m.unit, "object_id": f"0x{m.object_id:02x}", "property": m.prop}
        for m in frame.measurements
    ]
    if frame.error is not None:
        # the objects before it are decoded above; the advert is not refused whole
        doc["object_error"] = frame.error.describe()
    show(doc, as_json)


@decode.command("ruuvi")
@click.argument("hex_payload", metavar="HEX")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def ruuvi_cmd(hex_payload: str, as_json: bool) -> None:
    """One RuuviTag RAWv2 payload: bleak's manufacturer_data[0x0499], 24 bytes starting with 05."""
    from drivers import ruuvi

    with decode_errors():
        reading = ruuvi.decode(parse_hex(hex_payload))
    doc: dict[str, Any] = {"protocol": "Ruuvi data format 5 (RAWv2)", "mac": reading.mac, "sequence": reading.sequence}
    doc["fields"] = [
        {"name": name, "value": getattr(reading, name), "unit": ruuvi.UNITS[name]}
        for name in reading._fields
        if name not in ("mac", "sequence")
    ]
    show(doc, as_json)


def _modbus_doc(protocol: str, frame: Frame) -> dict[str, Any]:
    doc: dict[str, Any] = {"protocol": protocol}
    if frame.transaction_id is not None:
        doc["transaction_id"] = frame.transaction_id
    doc["unit"] = frame.unit
    doc["function"] = f"{frame.function} ({frame.function_name})"
    doc["kind"] = frame.kind
    if frame.crc is not None:
        doc["crc"] = f"0x{frame.crc:04X} (ok)"
    if frame.note:
        doc["note"] = frame.note
    doc["fields"] = [{"name": k, "value": v, "unit": ""} for k, v in frame.fields.items()]
    return doc


_DIRECTION = click.option(
    "--direction",
    type=click.Choice(["auto", "request", "response"]),
    default="auto",
    show_default=True,
    help="Read the frame as a request or a response (auto: the reading its length allows).",
)


@decode.command("modbus-rtu")
@click.argument("hex_frame", metavar="HEX")
@_DIRECTION
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def modbus_rtu_cmd(hex_frame: str, direction: str, as_json: bool) -> None:
    """One Modbus RTU frame, CRC included (e.g. 11 03 00 6B 00 03 76 87)."""
    from drivers.modbus import frames

    with decode_errors():
        frame = frames.decode_rtu(parse_hex(hex_frame), cast(frames.Direction, direction))
    show(_modbus_doc("Modbus RTU", frame), as_json)


@decode.command("modbus-tcp")
@click.argument("hex_adu", metavar="HEX")
@_DIRECTION
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def modbus_tcp_cmd(hex_adu: str, direction: str, as_json: bool) -> None:
    """One Modbus TCP ADU: MBAP header then PDU (e.g. 00 01 00 00 00 06 11 03 00 6B 00 03)."""
    from drivers.modbus import frames

    with decode_errors():
        frame = frames.decode_tcp(parse_hex(hex_adu), cast(frames.Direction, direction))
    show(_modbus_doc("Modbus TCP", frame), as_json)


@decode.command("tic")
@click.argument("hex_data", metavar="HEX")
@click.option("--mode", type=click.Choice(["auto", "historic", "standard"]), default="auto", show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def tic_cmd(hex_data: str, mode: str, as_json: bool) -> None:
    """One TIC group (0A ... 0D) or whole frames (02 ... 03); in frames a bad group is listed, the rest decoded."""
    from edge_agent.decode_meters import tic_document

    with decode_errors():
        doc = tic_document(parse_hex(hex_data), mode)
    show(doc, as_json)


@decode.command("mbus")
@click.argument("hex_telegram", metavar="HEX")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def mbus_cmd(hex_telegram: str, as_json: bool) -> None:
    """One M-Bus telegram: E5, a short frame (10 ... 16) or a long frame (68 L L 68 ... 16)."""
    from edge_agent.decode_mbus import mbus_document

    with decode_errors():
        doc = mbus_document(parse_hex(hex_telegram))
    show(doc, as_json)


@decode.command("lorawan")
@click.argument("hex_payload", metavar="HEX")
@click.option("--model", required=True, help="Sensor model (drivers/lorawan/models.py), e.g. bosch-pls.")
@click.option("--port", "f_port", required=True, type=click.IntRange(0, 255), help="The uplink's fPort.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def lorawan_cmd(hex_payload: str, model: str, f_port: int, as_json: bool) -> None:
    """One LoRaWAN parking sensor payload (the uplink's `data`, as hex) on its port."""
    from drivers.lorawan.models import MODELS

    if model not in MODELS:
        raise click.BadParameter(f"unknown model {model!r}; known: {', '.join(sorted(MODELS))}", param_hint="--model")
    with decode_errors():
        reading = MODELS[model].decode(f_port, parse_hex(hex_payload))
    state = None if reading.occupied is None else "occupied" if reading.occupied else "free"
    doc: dict[str, Any] = {"protocol": MODELS[model].document, "frame": reading.kind.value, "fields": [
        {"name": "parking_state", "value": state, "unit": ""},
        {"name": "battery_v", "value": reading.battery_v, "unit": "V"},
        {"name": "battery_low", "value": reading.battery_low, "unit": ""},
        {"name": "temperature_c", "value": reading.temperature_c, "unit": "°C"},
        {"name": "firmware", "value": reading.firmware, "unit": ""},
        {"name": "reset_cause", "value": reading.reset_cause, "unit": ""},
    ]}
    doc["fields"] = [f for f in doc["fields"] if f["value"] is not None]
    show(doc, as_json)
