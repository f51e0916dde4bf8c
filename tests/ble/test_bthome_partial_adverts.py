"""A BTHome advert with a bad object: the bus keeps the objects before it, counts the advert per sensor and says why."""

from __future__ import annotations

from typing import Any

from ble_testkit import replay_bus, running, until

from drivers.ble import OBJECT_ERROR, AllowedSensor
from drivers.model import Severity

ATC = "A4:C1:38:8D:18:B2"
SHELLY = "54:48:E6:8F:80:A5"


def bt(mac: str, **extra: Any) -> dict[str, Any]:
    return {"mac": mac, "kind": "bthome", "interval_s": 0.03, "rssi": -67, **extra}


async def test_cut_short_and_non_utf8_objects_keep_what_came_before_and_are_counted_per_sensor() -> None:
    # packet id n, battery 97 %, then a text object announcing 5 bytes of which 1 came
    cut = [f"40000{n}0161530548" for n in range(1, 4)]
    # packet id n, temperature 25.00 °C, then a text object that is not UTF-8
    not_utf8 = [f"40000{n}02c4095302c328" for n in range(1, 4)]
    bus = replay_bus([bt(ATC, payload=cut), bt(SHELLY, payload=not_utf8)],
                     [AllowedSensor(ATC, "atc", "bthome"), AllowedSensor(SHELLY, "shelly", "bthome")])
    async with running(bus) as (sink, _):
        await until(lambda: all(s.errors.get(OBJECT_ERROR, 0) >= 3 for s in bus.states()), what="object errors")
    assert sink.samples("atc")[0].values == {"battery_pct": 97, "rssi_dbm": -67}
    assert sink.samples("shelly")[0].values == {"temperature_c": 25.0, "rssi_dbm": -67}
    states = {s.device: s for s in bus.states()}
    assert states["atc"].errors == {OBJECT_ERROR: states["atc"].errors[OBJECT_ERROR]}  # no decode_error: not refused
    assert states["atc"].state == "ok"
    (atc_event,) = sink.events(OBJECT_ERROR, "atc")  # at most one a minute per sensor
    assert atc_event.severity is Severity.MINOR
    assert atc_event.detail["reason"] == "0x53 at offset 4: text needs 5 byte(s), 1 left; not decoded: 530548"
    assert (atc_event.detail["offset"], atc_event.detail["not_decoded"], atc_event.detail["count"]) == (4, "530548", 1)
    (shelly_event,) = sink.events(OBJECT_ERROR, "shelly")
    assert "text is not UTF-8" in shelly_event.detail["reason"]
    assert not sink.events("decode_error")


async def test_unknown_object_counts_as_an_object_error_too() -> None:
    bus = replay_bus([bt(ATC, payload=["400001020008ee0102", "400002020008ee0102"])], [AllowedSensor(ATC, "atc", "bthome")])
    async with running(bus) as (sink, _):
        await until(lambda: bus.states()[0].errors.get(OBJECT_ERROR, 0) >= 2, what="object errors")
    assert sink.samples("atc")[0].values == {"temperature_c": 20.48, "rssi_dbm": -67}
    assert len(sink.events("bthome_unknown_object")) == 1 and not sink.events(OBJECT_ERROR)
