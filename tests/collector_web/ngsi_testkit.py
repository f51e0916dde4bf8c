"""Helpers of the NGSI-LD tests: the vendored Smart Data Models JSON schemas (sdm_schemas/, CC BY 4.0,
their $refs resolved from the same folder: no network), an NGSI-LD normalized -> key-values converter
written from the specification (the schemas describe the key-values form), and a data set."""

from __future__ import annotations

import functools
from datetime import date, datetime
from pathlib import Path
from typing import Any

import orjson
from jsonschema import Draft202012Validator, FormatChecker
from referencing import Registry, Resource
from web_counts import traffic_records
from web_testkit import Web, event, now_ms, sample

SCHEMAS = Path(__file__).parent / "sdm_schemas"
CORE = "https://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context.jsonld"
ERRORS = "https://uri.etsi.org/ngsi-ld/errors/"
#: the Smart Data Models camera (dataModel.Device/Camera, its stream and image URLs): open data never serves one
CAMERA_TYPES = {"Camera"}


@functools.cache
def _registry() -> Registry:
    resources = []
    for path in SCHEMAS.rglob("*.json"):
        doc = orjson.loads(path.read_bytes())
        resources.append((doc["$id"], Resource.from_contents(doc)))
    # the schemas name the shared ones by their published address, which is not always their $id spelling
    by_id = dict(resources)
    aliases = {"https://smart-data-models.github.io/data-models/common-schema.json":
               by_id["https://smart-data-models.github.io/data-models/common-schema.json"]}
    return Registry().with_resources([*resources, *aliases.items()])


def schema_path(kind: str) -> Path | None:
    found = sorted(SCHEMAS.glob(f"*/{kind}/schema.json"))
    return found[0] if found else None


def _datetime(value: object) -> bool:
    if not isinstance(value, str) or "T" not in value:
        return False
    try:
        return datetime.fromisoformat(value).tzinfo is not None
    except ValueError:
        return False


def _date(value: object) -> bool:
    try:
        return isinstance(value, str) and bool(date.fromisoformat(value))
    except ValueError:
        return False


def _uri(value: object) -> bool:
    scheme, sep, rest = value.partition(":") if isinstance(value, str) else ("", "", "")
    return bool(sep and rest and scheme[:1].isalpha() and " " not in value)  # type: ignore[operator]


FORMATS = FormatChecker()
FORMATS.checks("date-time")(_datetime)
FORMATS.checks("date")(_date)
FORMATS.checks("uri")(_uri)


@functools.cache
def validator(kind: str) -> Draft202012Validator:
    path = schema_path(kind)
    assert path is not None, f"no Smart Data Models schema vendored for {kind}: add it under {SCHEMAS}"
    return Draft202012Validator(orjson.loads(path.read_bytes()), registry=_registry(), format_checker=FORMATS)


def schema_errors(entity: dict[str, Any]) -> list[str]:
    """What the entity's Smart Data Models schema finds wrong with it (key-values form)."""
    return [f"{'/'.join(map(str, e.absolute_path)) or '(entity)'}: {e.message}"
            for e in validator(entity["type"]).iter_errors(entity)]


def to_key_values(entity: dict[str, Any]) -> dict[str, Any]:
    """NGSI-LD normalized -> key-values (GS CIM 009 §4.5.4): a Property or GeoProperty is its value (a typed
    literal {"@type", "@value"} its plain value), a Relationship its object; @context goes."""
    out: dict[str, Any] = {}
    for name, attr in entity.items():
        if name == "@context":
            continue
        if name in ("id", "type"):
            out[name] = attr
            continue
        assert isinstance(attr, dict) and attr.get("type") in ("Property", "GeoProperty", "Relationship"), \
            f"{entity['id']}: {name} is not a normalized attribute: {attr!r}"
        value = attr["object"] if attr["type"] == "Relationship" else attr["value"]
        out[name] = value["@value"] if isinstance(value, dict) and "@value" in value else value
    return out


async def seed_city(web: Web) -> int:
    """Two lighting cabinets (one without coordinates), a water meter, a sensor: the time of the data."""
    t = now_ms() - 3_600_000
    await web.add_cabinet("gw-dijon-0001", "21231", 47.3221, 5.0415, cabinet="DIJ-001")
    await web.add_cabinet("gw-dijon-0002", "21231")  # registered without coordinates
    await web.add_cabinet("gw-neuilly-0001", "21452", 47.2790, 5.1050)
    await web.upload("gw-dijon-0001", [
        event(0, "group:street", t - 60_000, "group_level", "info", level_pct=70, previous_pct=100,
              program="eco-night", mode="synced"),
        event(0, "group:park", t - 60_000, "group_level", "info", level_pct=0, previous_pct=100,
              program="park-off", mode="synced"),
        sample(0, "lamp-1", t, energy_wh=1111, lamp_on=True, level_pct=70, power_w=43.0, voltage_v=229.5,
               current_a=0.19),
        sample(0, "lamp-2", t, energy_wh=50, lamp_on=True, level_pct=70, power_w=0.3),
        event(0, "lamp-2", t + 5_000, "lamp_failure", "major", group="street", commanded_pct=70, power_w=0.3),
        sample(0, "lamp-3", t, energy_wh=10, lamp_on=False, level_pct=0, power_w=0.0),
        sample(0, "ble:ruuvi AA:BB", t + 1_000, temperature_c=7.5, humidity_pct=81.0, battery_pct=88, rssi_dbm=-71),
        sample(0, "tag-1", t + 1_000, rssi_dbm=-80),  # measures nothing the model names
    ])
    await web.upload("gw-dijon-0001", traffic_records(t))  # a junction's counts (collector.traffic)
    await web.upload("gw-dijon-0002", [sample(0, "lamp-9", t, energy_wh=5, lamp_on=True, level_pct=100, power_w=60.0)])
    await web.upload("gw-neuilly-0001", [
        sample(0, "water-1", t - 60_000, volume_m3=502.25),
        sample(0, "water-1", t, volume_m3=502.7184),
        event(0, "water-1", t + 60_000, "water_leak", "major", nights=3, night_min_flows_m3h=[0.2, 0.3, 0.25]),
        sample(0, "water-2", t, volume_m3=12.0),
        event(0, "water-2", t - 120_000, "water_leak", "major", nights=3),
        event(0, "water-2", t - 60_000, "water_leak_cleared", "info"),
    ])
    # on-street parking: the gateway of configs/parking/21231.toml, two spaces heard, the others unknown
    await web.add_cabinet("gw-dijon-lora", "21231", 47.3215, 5.0410)
    await web.upload("gw-dijon-lora", [
        sample(0, "pk-dijon-liberte-001", t, parking_state="occupied", rssi_dbm=-104, snr_db=3.5, fcnt=12),
        sample(0, "pk-dijon-monge-001", t, parking_state="free", battery_v=3.61, fcnt=40),
    ])
    return t
