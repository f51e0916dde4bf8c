"""The NGSI-LD API behaves as ETSI GS CIM 009 v1.6 says, on a real collector and both stores: a
conformance subset written from the specification (query language, geo-queries, attrs, pagination
with Link rel=next, NGSILD-Results-Count, types and attributes, content negotiation, problem types),
checked with a plain HTTP client that knows only the specification.

Not ngsildclient (PyPI): its latest release, 0.5.2 (for Python 3.9-3.10), pins rich<13, httpx<0.24
and networkx<3, and citygate's own rich>=15 excludes the first."""

from __future__ import annotations

import re
from urllib.parse import quote

import pytest
from ngsi_testkit import CORE, ERRORS, seed_city
from web_testkit import Reply, Web, sample

from collector.ngsi_entities import CONTEXTS, iso

LD = {"Accept": "application/ld+json"}
CONTEXT_REL = "http://www.w3.org/ns/json-ld#context"
LAMP = "urn:ngsi-ld:Streetlight:gw-dijon-0001:"
SQUARE = "[[[5.0414,47.3220],[5.0416,47.3220],[5.0416,47.3222],[5.0414,47.3222],[5.0414,47.3220]]]"


def links(reply: Reply) -> dict[str, str]:
    """rel -> target of the Link header (RFC 8288), as any client of the specification reads it."""
    out = {}
    for target, params in re.findall(r"<([^>]*)>\s*((?:;\s*[^,;]+)*)", reply.headers.get("Link", "")):
        rel = re.search(r'rel="?([^";]+)"?', params)
        if rel:
            out[rel.group(1)] = target
    return out


async def ids(web: Web, query: str) -> list[str]:
    reply = await web.get("/ngsi-ld/v1/entities?" + query)
    assert reply.status == 200, reply.text
    return sorted(e["id"] for e in reply.doc)


def assert_problem(reply: Reply, status: int, kind: str) -> None:
    assert reply.status == status, reply.text
    assert reply.content_type == "application/problem+json", reply.content_type
    assert reply.doc["type"] == ERRORS + kind and reply.doc["title"] and reply.doc["detail"], reply.text


async def test_query_language_filters_the_entities(web: Web) -> None:
    t = await seed_city(web)
    lamps = "type=Streetlight&q="
    assert await ids(web, lamps + quote('powerState=="on"')) == ["urn:ngsi-ld:Streetlight:gw-dijon-0002:lamp-9"]
    assert await ids(web, lamps + quote('powerState=="low"')) == [LAMP + "lamp-1", LAMP + "lamp-2"]
    assert await ids(web, lamps + quote("powerConsumption>=40")) == [
        LAMP + "lamp-1", "urn:ngsi-ld:Streetlight:gw-dijon-0002:lamp-9"]
    assert await ids(web, lamps + quote("powerConsumption==40..50")) == [LAMP + "lamp-1"]
    assert await ids(web, lamps + quote('powerConsumption<1;status=="defectiveLamp"')) == [LAMP + "lamp-2"]
    assert await ids(web, lamps + quote('(powerState=="off"|powerState=="on");powerConsumption<1')) == \
        [LAMP + "lamp-3"]
    assert await ids(web, lamps + quote('powerState!="low"')) == [
        LAMP + "lamp-3", "urn:ngsi-ld:Streetlight:gw-dijon-0002:lamp-9"]
    assert await ids(web, lamps + quote('powerState=="on","off"')) == [
        LAMP + "lamp-3", "urn:ngsi-ld:Streetlight:gw-dijon-0002:lamp-9"]
    assert await ids(web, lamps + quote("refStreetlightGroup==urn:ngsi-ld:StreetlightGroup:gw-dijon-0001:street")) == \
        [LAMP + "lamp-2"]
    assert await ids(web, lamps + quote("voltage")) == [LAMP + "lamp-1"]  # has the attribute
    assert await ids(web, lamps + quote('status~="^defect"')) == [LAMP + "lamp-2"]
    # a date-time range, whatever the offset it is written with
    sensor = "urn:ngsi-ld:Device:gw-dijon-0001:ble%3Aruuvi%20AA%3ABB"
    window = f"{iso(t)}..{iso(t + 2_000)}"
    assert sensor in await ids(web, "type=Device&q=" + quote(f"dateLastValueReported=={window}"))
    assert sensor not in await ids(web, "type=Device&q=" + quote(f"dateLastValueReported>{iso(t + 2_000)}"))
    # an array matches when one member does; a query without type reads every type
    assert await ids(web, "q=" + quote('controlledProperty=="humidity"')) == [sensor]
    for bad in ('powerState=="on', "powerState==on", "(powerState", "powerState>>1", "==1", "a==2026-13-45",
                "powerConsumption>1,2", 'status~="("'):
        assert_problem(await web.get("/ngsi-ld/v1/entities?type=Streetlight&q=" + quote(bad)), 400, "BadRequestData")


async def test_attrs_keep_the_attributes_asked_for(web: Web) -> None:
    await seed_city(web)
    doc = (await web.get("/ngsi-ld/v1/entities?type=Streetlight&attrs=powerState,voltage&limit=100")).doc
    assert {tuple(sorted(e)) for e in doc} == {("id", "powerState", "type"), ("id", "powerState", "type", "voltage")}
    assert (await web.get("/ngsi-ld/v1/entities?type=Streetlight&attrs=nothingLikeThat")).doc == []
    one = (await web.get(f"/ngsi-ld/v1/entities/{LAMP}lamp-1?attrs=status&options=keyValues")).doc
    assert one == {"id": LAMP + "lamp-1", "type": "Streetlight", "status": "ok"}


async def test_geo_queries(web: Web) -> None:
    await seed_city(web)
    near = "type=Streetlight&georel=" + quote("near;maxDistance==20") + "&geometry=Point&coordinates=" + \
        quote("[5.0415,47.3221]")
    assert await ids(web, near) == [LAMP + "lamp-1", LAMP + "lamp-2", LAMP + "lamp-3"]
    far = "type=Streetlight&georel=" + quote("near;minDistance==20") + "&geometry=Point&coordinates=" + \
        quote("[5.0415,47.3221]")
    assert await ids(web, far) == ["urn:ngsi-ld:Streetlight:gw-dijon-0002:lamp-9"]
    centre = "type=Streetlight&georel=" + quote("near;maxDistance==10") + "&geometry=Point&coordinates=" + \
        quote("[5.042,47.322]")  # Dijon's centre, where a cabinet registered without coordinates stands
    assert await ids(web, centre) == ["urn:ngsi-ld:Streetlight:gw-dijon-0002:lamp-9"]
    within = "type=Streetlight&georel=within&geometry=Polygon&coordinates=" + quote(SQUARE)
    assert await ids(web, within) == [LAMP + "lamp-1", LAMP + "lamp-2", LAMP + "lamp-3"]
    assert await ids(web, within + "&q=" + quote('powerState=="off"')) == [LAMP + "lamp-3"]
    disjoint = "type=Streetlight&georel=disjoint&geometry=Polygon&coordinates=" + quote(SQUARE)
    assert await ids(web, disjoint) == ["urn:ngsi-ld:Streetlight:gw-dijon-0002:lamp-9"]
    for bad in ("georel=near&geometry=Point&coordinates=[5,47]", "georel=within&geometry=Point&coordinates=[5,47]",
                "georel=near;maxDistance==-1&geometry=Point&coordinates=[5,47]",
                "georel=within&geometry=Polygon&coordinates=[[[5,47],[6,47],[5,47]]]",
                "georel=near;maxDistance==1&geometry=Point&coordinates=[5,",
                "georel=near;maxDistance==1&geometry=Point", "georel=touches&geometry=Point&coordinates=[5,47]"):
        reply = await web.get("/ngsi-ld/v1/entities?type=Streetlight&" + bad.replace(";", "%3B").replace("[", "%5B")
                              .replace("]", "%5D"))
        assert_problem(reply, 400, "BadRequestData")


async def test_pages_follow_link_next_and_count(web: Web) -> None:
    await seed_city(web)
    await web.upload("gw-dijon-0002", [sample(0, f"lamp-{n:02d}", 1_775_000_000_000, lamp_on=True, level_pct=100)
                                       for n in range(10, 40)])
    everything = await ids(web, "type=Streetlight&limit=1000")
    assert len(everything) == 34
    first = await web.get("/ngsi-ld/v1/entities?type=Streetlight")
    assert len(first.doc) == 20  # the specification's default page size
    seen, reply, pages = [], first, 0
    while True:
        pages += 1
        seen += [e["id"] for e in reply.doc]
        nxt = links(reply).get("next")
        if nxt is None:
            break
        assert nxt.startswith("/ngsi-ld/v1/entities?")
        reply = await web.get(nxt)
    assert pages == 2 and sorted(seen) == everything and len(set(seen)) == 34
    page = await web.get("/ngsi-ld/v1/entities?type=Streetlight&limit=5&offset=10&count=true")
    assert page.headers["NGSILD-Results-Count"] == "34" and len(page.doc) == 5
    assert set(links(page)) >= {"next", "prev"}
    counted = await web.get("/ngsi-ld/v1/entities?type=Streetlight&limit=0&count=true&q=" + quote('powerState=="on"'))
    assert (counted.doc, counted.headers["NGSILD-Results-Count"]) == ([], "31")
    assert "next" not in links(counted)
    last = await web.get("/ngsi-ld/v1/entities?type=Streetlight&limit=4&offset=30")
    assert len(last.doc) == 4 and "next" not in links(last)
    for bad in ("limit=0", "limit=1001", "offset=-1", "count=yes"):
        assert_problem(await web.get("/ngsi-ld/v1/entities?type=Streetlight&" + bad), 400, "BadRequestData")


async def test_types_and_attributes(web: Web) -> None:
    await seed_city(web)
    types = await web.get("/ngsi-ld/v1/types")
    assert types.doc["type"] == "EntityTypeList" and "Streetlight" in types.doc["typeList"]
    detailed = (await web.get("/ngsi-ld/v1/types?details=true")).doc
    assert {d["typeName"] for d in detailed} == set(types.doc["typeList"])
    assert all(d["type"] == "EntityType" and d["attributeNames"] for d in detailed)
    info = (await web.get("/ngsi-ld/v1/types/Streetlight")).doc
    assert (info["type"], info["typeName"], info["entityCount"]) == ("EntityTypeInfo", "Streetlight", 4)
    details = {a["attributeName"]: a["attributeTypes"] for a in info["attributeDetails"]}
    assert details["location"] == ["GeoProperty"] and details["refStreetlightControlCabinet"] == ["Relationship"]
    assert details["powerState"] == ["Property"]
    assert_problem(await web.get("/ngsi-ld/v1/types/Lamp"), 404, "ResourceNotFound")
    attributes = (await web.get("/ngsi-ld/v1/attributes")).doc
    assert attributes["type"] == "AttributeList" and "powerState" in attributes["attributeList"]
    power = (await web.get("/ngsi-ld/v1/attributes/powerState")).doc
    assert power["type"] == "Attribute" and set(power["typeNames"]) == {"Streetlight", "StreetlightGroup"}
    assert_problem(await web.get("/ngsi-ld/v1/attributes/colour"), 404, "ResourceNotFound")


async def test_content_negotiation(web: Web) -> None:
    await seed_city(web)
    path = "/ngsi-ld/v1/entities?type=Streetlight"
    for accept in (None, "application/json", "*/*", "text/html;q=0.9, application/json"):
        reply = await web.get(path, headers={"Accept": accept} if accept else None)
        assert reply.content_type == "application/json", accept
        assert all("@context" not in e for e in reply.doc)
        assert links(reply)[CONTEXT_REL] == CONTEXTS["Streetlight"]
    for accept in ("application/ld+json", "application/json;q=0.5, application/ld+json"):
        reply = await web.get(path, headers={"Accept": accept})
        assert reply.content_type == "application/ld+json", accept
        assert all(e["@context"] == [CONTEXTS["Streetlight"], CORE] for e in reply.doc)
        assert CONTEXT_REL not in links(reply)
    one = await web.get(f"/ngsi-ld/v1/entities/{LAMP}lamp-1")
    assert one.content_type == "application/json" and "@context" not in one.doc
    assert links(one)[CONTEXT_REL] == CONTEXTS["Streetlight"]
    mixed = await web.get("/ngsi-ld/v1/entities?type=Streetlight,WaterConsumptionObserved&limit=100")
    assert {e["type"] for e in mixed.doc} == {"Streetlight", "WaterConsumptionObserved"}
    assert links(mixed)[CONTEXT_REL] == "https://smartdatamodels.org/context.jsonld"
    types = await web.get("/ngsi-ld/v1/types", headers=LD)
    assert types.content_type == "application/ld+json" and types.doc["@context"] == CORE
    assert_problem(await web.get(path, headers={"Accept": "text/html"}), 406, "InvalidRequest")


@pytest.mark.parametrize(("path", "status", "kind"), [
    ("/ngsi-ld/v1/entities", 400, "BadRequestData"),  # no type, id, attrs, q nor geo-query
    ("/ngsi-ld/v1/entities?type=Streetlight&options=sparse", 400, "BadRequestData"),
    ("/ngsi-ld/v1/entities?type=Streetlight&options=keyValues,concise", 400, "BadRequestData"),
    ("/ngsi-ld/v1/entities/lamp-1", 400, "BadRequestData"),  # not a URI
    ("/ngsi-ld/v1/entities/" + quote(LAMP + "lamp-99", safe=""), 404, "ResourceNotFound"),
    ("/ngsi-ld/v1/entities/urn:ngsi-ld:Car:x:y", 404, "ResourceNotFound"),
    ("/ngsi-ld/v1/entities/urn:ngsi-ld:StreetlightControlCabinet:gw-neuilly-0001", 404, "ResourceNotFound"),
    ("/ngsi-ld/v1/types?details=maybe", 400, "BadRequestData"),
])
async def test_errors_use_the_ngsi_ld_problem_types(web: Web, path: str, status: int, kind: str) -> None:
    await seed_city(web)
    assert_problem(await web.get(path), status, kind)


async def test_unknown_type_and_ids(web: Web) -> None:
    await seed_city(web)
    assert (await web.get("/ngsi-ld/v1/entities?type=Lamp")).doc == []  # no entity of that type: none
    assert await ids(web, f"id={LAMP}lamp-1,{LAMP}lamp-3") == [LAMP + "lamp-1", LAMP + "lamp-3"]
    ok = quote('deviceState=="ok"')
    kv = (await web.get(f"/ngsi-ld/v1/entities?type=Device&options=keyValues&q={ok}&limit=100")).doc
    assert kv and all(isinstance(e["dateLastValueReported"], str) for e in kv)
    concise = (await web.get(f"/ngsi-ld/v1/entities/{LAMP}lamp-1?options=concise")).doc
    assert concise["powerState"] == {"value": "low", "observedAt": concise["powerState"]["observedAt"]}
    assert concise["refStreetlightControlCabinet"] == {"object": "urn:ngsi-ld:StreetlightControlCabinet:gw-dijon-0001"}
    assert concise["location"] == {"type": "Point", "coordinates": [5.0415, 47.3221]}
