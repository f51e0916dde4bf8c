"""NGSI-LD open data conforms to the FIWARE Smart Data Models, on a real collector and both stores: every
type the collector serves validates against its vendored JSON schema in normalized (converted to
key-values) and keyValues forms, and the entities say what the data says."""

from __future__ import annotations

from urllib.parse import quote

import pytest
from ngsi_testkit import CAMERA_TYPES, CORE, SCHEMAS, schema_errors, schema_path, seed_city, to_key_values
from web_testkit import Web

from collector.ngsi_entities import CONTEXTS, TYPES, iso

LD = {"Accept": "application/ld+json"}
SDM_LIGHT = "https://raw.githubusercontent.com/smart-data-models/dataModel.Streetlighting/master/context.jsonld"
#: the types other issues add; their schemas are vendored so that they are validated as soon as they are served
COMING = ("TrafficFlowObserved", "ParkingSpot", "OnStreetParking", "Vehicle")


async def all_of(web: Web, kind: str, options: str = "normalized") -> list[dict]:
    reply = await web.get(f"/ngsi-ld/v1/entities?type={kind}&limit=1000&options={options}", headers=LD)
    assert reply.status == 200, reply.text
    return reply.doc


async def test_the_served_types_are_the_ones_validated_here(web: Web) -> None:
    await seed_city(web)
    served = (await web.get("/ngsi-ld/v1/types")).doc["typeList"]
    assert served == list(TYPES)  # every type has an entity in the seeded city
    for kind in (*TYPES, *COMING):
        assert schema_path(kind) is not None, f"vendor the Smart Data Models schema of {kind}"
    assert (SCHEMAS / "LICENSE.md").read_text().startswith("# Creative Commons Attribution 4.0")


@pytest.mark.parametrize("kind", TYPES)
@pytest.mark.parametrize("options", ["normalized", "keyValues", "concise"])
async def test_every_entity_is_valid_against_its_smart_data_model(web: Web, kind: str, options: str) -> None:
    await seed_city(web)
    entities = await all_of(web, kind, options)
    assert entities, f"the seeded city has no {kind}"
    for e in entities:
        assert e["@context"] == [CONTEXTS[kind], CORE]
        if options == "normalized":
            e = to_key_values(e)
        elif options == "concise":
            assert all(not isinstance(a, dict) or a.get("type", "Point") == "Point"
                       for k, a in e.items() if k not in ("id", "type", "@context")), e
            normalized = (await web.get("/ngsi-ld/v1/entities/" + quote(e["id"], safe=""), headers=LD)).doc
            assert concise_to_key_values(e) == to_key_values(normalized), e["id"]
            e = concise_to_key_values(e)
        else:
            assert all(not isinstance(v, dict) or "@value" not in v for v in e.values()), e
        assert schema_errors(e) == [], (e["id"], schema_errors(e))


def concise_to_key_values(entity: dict) -> dict:
    """Concise (GS CIM 009 v1.6): an attribute is its bare value, or an object with value/object."""
    out = {}
    for name, attr in entity.items():
        if name == "@context":
            continue
        if isinstance(attr, dict) and "object" in attr:
            out[name] = attr["object"]
        elif isinstance(attr, dict) and "value" in attr:
            out[name] = attr["value"]
        elif isinstance(attr, dict) and "@value" in attr:
            out[name] = attr["@value"]
        else:
            out[name] = attr
    return out


async def test_a_schema_finds_what_was_wrong_before_issue_20(web: Web) -> None:
    """The validation has teeth: the entities as they were served before fail it."""
    await seed_city(web)
    [cabinet] = [e for e in await all_of(web, "StreetlightControlCabinet", "keyValues") if "0001" in e["id"]]
    assert any("refStreetlightGroup" in m for m in schema_errors({k: v for k, v in cabinet.items()
                                                                  if k != "refStreetlightGroup"}))
    water = (await all_of(web, "WaterConsumptionObserved", "keyValues"))[0]
    assert schema_errors({**water, "alarmFlowPersistence": "persistentNightFlow"})
    assert schema_errors({**water, "waterConsumption": 502.7184})
    device = (await all_of(web, "Device", "keyValues"))[0]
    assert schema_errors({k: v for k, v in device.items() if k != "controlledProperty"})
    assert schema_errors({**device, "dateLastValueReported": {"@type": "DateTime", "@value": iso(0)}})
    light = (await all_of(web, "Streetlight", "keyValues"))[0]
    assert schema_errors({k: v for k, v in light.items() if k != "location"})


async def test_no_camera_is_ever_served(web: Web) -> None:
    await seed_city(web)
    assert not CAMERA_TYPES & set(TYPES)
    assert not CAMERA_TYPES & set((await web.get("/ngsi-ld/v1/types")).doc["typeList"])
    for kind in CAMERA_TYPES:
        assert (await web.get(f"/ngsi-ld/v1/entities?type={kind}")).doc == []
        assert (await web.get(f"/ngsi-ld/v1/types/{kind}")).status == 404
    for kind in TYPES:
        for e in await all_of(web, kind, "keyValues"):
            assert "image" not in e and "Camera" not in e["id"], e


async def test_lighting_groups_come_from_the_agents_events(web: Web) -> None:
    t = await seed_city(web)
    groups = {e["id"]: e for e in await all_of(web, "StreetlightGroup", "keyValues")}
    street = groups["urn:ngsi-ld:StreetlightGroup:gw-dijon-0001:street"]
    assert (street["powerState"], street["illuminanceLevel"], street["activeProgramId"]) == ("low", 0.7, "eco-night")
    assert street["refStreetlight"] == ["urn:ngsi-ld:Streetlight:gw-dijon-0001:lamp-2"]  # named by its fault
    assert street["refStreetlightControlCabinet"] == "urn:ngsi-ld:StreetlightControlCabinet:gw-dijon-0001"
    park = groups["urn:ngsi-ld:StreetlightGroup:gw-dijon-0001:park"]
    assert (park["powerState"], park["illuminanceLevel"], park["activeProgramId"]) == ("off", 0.0, "park-off")
    # a cabinet the collector knows no group of: its lamps form one group
    whole = groups["urn:ngsi-ld:StreetlightGroup:gw-dijon-0002:cabinet"]
    assert whole["refStreetlight"] == ["urn:ngsi-ld:Streetlight:gw-dijon-0002:lamp-9"] and whole["powerState"] == "on"
    assert set(groups) == {"urn:ngsi-ld:StreetlightGroup:gw-dijon-0001:street",
                           "urn:ngsi-ld:StreetlightGroup:gw-dijon-0001:park",
                           "urn:ngsi-ld:StreetlightGroup:gw-dijon-0002:cabinet"}

    cabinets = {e["id"]: e for e in await all_of(web, "StreetlightControlCabinet", "keyValues")}
    assert set(cabinets) == {"urn:ngsi-ld:StreetlightControlCabinet:gw-dijon-0001",
                             "urn:ngsi-ld:StreetlightControlCabinet:gw-dijon-0002"}  # a water-only gateway is none
    assert sorted(cabinets["urn:ngsi-ld:StreetlightControlCabinet:gw-dijon-0001"]["refStreetlightGroup"]) == \
        ["urn:ngsi-ld:StreetlightGroup:gw-dijon-0001:park", "urn:ngsi-ld:StreetlightGroup:gw-dijon-0001:street"]
    lamps = {e["id"].rsplit(":", 1)[1]: e for e in await all_of(web, "Streetlight", "keyValues")}
    assert lamps["lamp-2"]["refStreetlightGroup"] == "urn:ngsi-ld:StreetlightGroup:gw-dijon-0001:street"
    assert "refStreetlightGroup" not in lamps["lamp-1"]  # no event named its group yet
    assert lamps["lamp-9"]["refStreetlightGroup"] == "urn:ngsi-ld:StreetlightGroup:gw-dijon-0002:cabinet"
    one = await web.get("/ngsi-ld/v1/entities/urn:ngsi-ld:StreetlightGroup:gw-dijon-0001:street?options=keyValues",
                        headers=LD)
    assert one.status == 200 and one.doc == street
    normalized = (await web.get("/ngsi-ld/v1/entities/urn:ngsi-ld:StreetlightGroup:gw-dijon-0001:park")).doc
    assert normalized["powerState"]["observedAt"] == iso(t - 60_000)


async def test_water_follows_the_models_units_and_alarm_list(web: Web) -> None:
    await seed_city(web)
    waters = {e["id"].rsplit(":", 1)[1]: e for e in await all_of(web, "WaterConsumptionObserved")}
    one = waters["water-1"]
    assert one["waterConsumption"] == {**one["waterConsumption"], "value": 502, "unitCode": "MTQ"}
    assert one["waterConsumptionLitres"]["value"] == 502_718 and one["waterConsumptionLitres"]["unitCode"] == "LTR"
    assert one["alarmFlowPersistence"]["value"] == "In progress persistence"
    assert waters["water-2"]["alarmFlowPersistence"]["value"] == "Past Persistence during the period"
    assert waters["water-2"]["waterConsumption"]["value"] == 12


async def test_devices_say_what_they_control_and_groups_are_not_devices(web: Web) -> None:
    await seed_city(web)
    devices = {e["id"]: e for e in await all_of(web, "Device", "keyValues")}
    sensor = devices["urn:ngsi-ld:Device:gw-dijon-0001:ble%3Aruuvi%20AA%3ABB"]
    assert sensor["controlledProperty"] == ["humidity", "temperature"]
    assert (sensor["batteryLevel"], sensor["rssi"], sensor["deviceState"]) == (0.88, -71, "ok")
    assert isinstance(sensor["dateLastValueReported"], str) and sensor["dateLastValueReported"].endswith("Z")
    assert devices["urn:ngsi-ld:Device:gw-dijon-0001:lamp-2"]["deviceState"] == "faulty"
    assert devices["urn:ngsi-ld:Device:gw-dijon-0001:lamp-1"]["controlledProperty"] == ["energy", "light", "power"]
    assert devices["urn:ngsi-ld:Device:gw-neuilly-0001:water-1"]["controlledProperty"] == ["waterConsumption"]
    assert not [i for i in devices if "group" in i or "tag-1" in i], sorted(devices)
    assert all(d["controlledProperty"] for d in devices.values())
    normalized = (await web.get("/ngsi-ld/v1/entities/" + quote(
        "urn:ngsi-ld:Device:gw-dijon-0001:ble%3Aruuvi%20AA%3ABB", safe=""))).doc
    assert normalized["dateLastValueReported"]["value"]["@type"] == "DateTime"
    assert (await web.get("/ngsi-ld/v1/entities/urn:ngsi-ld:Device:gw-dijon-0001:group%3Astreet")).status == 404


async def test_every_streetlight_has_a_location_and_says_where_it_comes_from(web: Web) -> None:
    await seed_city(web)
    lamps = {e["id"].rsplit(":", 1)[1]: e for e in await all_of(web, "Streetlight", "keyValues")}
    assert lamps["lamp-1"]["location"] == {"type": "Point", "coordinates": [5.0415, 47.3221]}
    assert lamps["lamp-1"]["locationSource"] == "cabinet"
    # gw-dijon-0002 was registered without coordinates: Dijon's centre (configs/territory.json)
    dijon = (await web.get("/api/v1/communes")).doc["communes"]
    centre = next(c for c in dijon if c["insee"] == "21231")
    assert lamps["lamp-9"]["location"] == {"type": "Point", "coordinates": [centre["lon"], centre["lat"]]}
    assert lamps["lamp-9"]["locationSource"] == "communeCentre"
    for kind in TYPES:
        assert all("location" in e for e in await all_of(web, kind, "keyValues")), kind
    lamp1 = (await web.get("/ngsi-ld/v1/entities/urn:ngsi-ld:Streetlight:gw-dijon-0001:lamp-1", headers=LD)).doc
    assert (lamp1["status"]["value"], lamp1["powerState"]["value"], lamp1["illuminanceLevel"]["value"]) == \
        ("ok", "low", 0.7)
    assert lamp1["powerConsumption"]["unitCode"] == "WTT" and lamp1["@context"] == [SDM_LIGHT, CORE]
    assert lamps["lamp-3"]["powerState"] == "off" and lamps["lamp-2"]["status"] == "defectiveLamp"
