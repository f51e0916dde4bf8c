"""Open311 GeoReport v2 as the spec writes it, on a real collector and both stores: each document
in JSON and in XML has the spec's element names, nesting and types, both formats say the same,
and the spec's arguments (jurisdiction_id, attribute[code], tokens, the 90-day window) work.

The reference is the spec itself, not our own code: SPEC below gives each document's elements
in the order and nesting of the spec's example responses and field tables, and their types as
the Open311 project's JSON Schemas give them (ids and codes are strings). Sources, read at:
- GeoReport v2: http://wiki.open311.org/GeoReport_v2 (source: github.com/open311/open311.github.io,
  GeoReport/v2/index.md, commit d65f0b9a6fb527bcb1836b1f986c5375c39541e1)
- Service Discovery: http://wiki.open311.org/Service_Discovery (same commit, Service_Discovery.md)
- JSON Schemas: github.com/open311/schema-validation, schema/georeport-v2/*.json (commit 47e06a44)
No Open311 client library is used: the maintained one on PyPI (georeport 0.3.1) only reads
services and requests through requests/xmltodict and checks nothing about them; the others
(open311 1.1, three 0.8) were last released in 2011 and 2013.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from jsonschema import Draft202012Validator
from web_testkit import Reply, Web, event, now_ms, sample

from collector.reports.model import parse_new_report
from collector.territory import load_territory

DIJON = "21231"
GEOREPORT_V2 = "http://wiki.open311.org/GeoReport_v2"
#: the spec's element for each item of a list element (Spark convention: the JSON array)
ITEMS = {"services": "service", "service_requests": "request", "errors": "error", "attributes": "attribute",
         "values": "value", "endpoints": "endpoint", "formats": "format"}
#: "Date/time format ... ISO 8601 as per the w3 note. Timezone information ... must be included."
W3C_DATETIME = r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2})$"

STRING = {"type": "string"}
TEXT = {"type": ["string", "null"]}  # "may not be returned": an empty element, null in JSON
DATETIME = {"type": "string", "pattern": W3C_DATETIME}
BOOLEAN = {"type": "boolean"}


def fields(*names: str, **types: dict[str, Any]) -> dict[str, Any]:
    """An element with exactly these children, in this order (the order is the spec's, checked in XML)."""
    return {"type": "object", "properties": {n: types.get(n, STRING) for n in names}, "required": list(names),
            "additionalProperties": False, "order": list(names)}


def items(schema: dict[str, Any], **more: Any) -> dict[str, Any]:
    return {"type": "array", "items": schema, **more}


SERVICE = fields("service_code", "service_name", "description", "metadata", "type", "keywords", "group",
                 metadata=BOOLEAN, type={"enum": ["realtime", "batch", "blackbox"]}, description=TEXT,
                 keywords=TEXT, group=TEXT)
ATTRIBUTE = fields("variable", "code", "datatype", "required", "datatype_description", "order", "description",
                   "values", variable=BOOLEAN, required=BOOLEAN, datatype_description=TEXT,
                   datatype={"enum": ["string", "number", "datetime", "text", "singlevaluelist", "multivaluelist"]},
                   order={"type": "integer", "minimum": 1}, values=items(fields("key", "name")))
REQUEST = fields("service_request_id", "status", "status_notes", "service_name", "service_code", "description",
                 "agency_responsible", "service_notice", "requested_datetime", "updated_datetime",
                 "expected_datetime", "address", "address_id", "zipcode", "lat", "long", "media_url",
                 status={"enum": ["open", "closed"]}, status_notes=TEXT, description=TEXT, agency_responsible=TEXT,
                 service_notice=TEXT, requested_datetime=DATETIME, updated_datetime=DATETIME,
                 expected_datetime={"anyOf": [DATETIME, {"type": "null"}]}, address=TEXT, address_id=TEXT,
                 zipcode=TEXT, lat={"type": ["number", "null"]}, long={"type": ["number", "null"]}, media_url=TEXT)
SPEC: dict[str, dict[str, Any]] = {
    "services": items(SERVICE, minItems=1),
    "service_definition": fields("service_code", "attributes", attributes=items(ATTRIBUTE)),
    # POST: "service_request_id ... should not be returned if token is returned" (and the other way round)
    "created": items(fields("service_request_id", "service_notice", "account_id", service_notice=TEXT,
                            account_id=TEXT), minItems=1, maxItems=1),
    "token": items(fields("service_request_id", "token"), minItems=1, maxItems=1),
    "service_requests": items(REQUEST),
    "errors": items(fields("code", "description", code={"type": "integer"}), minItems=1),
    "discovery": fields("changeset", "contact", "key_service", "endpoints", endpoints=items(fields(
        "specification", "url", "changeset", "type", "formats", specification={"const": GEOREPORT_V2},
        url={"type": "string", "pattern": "^https?://"}, type={"enum": ["production", "test"]},
        formats=items({"enum": ["text/xml", "application/json"]}, minItems=2, uniqueItems=True)), minItems=1)),
}
ROOTS = {"created": "service_requests", "token": "service_requests"}


def _nullable(schema: dict[str, Any]) -> bool:
    kinds = schema.get("type", [])
    return "null" in kinds or any(_nullable(s) for s in schema.get("anyOf", []))


def spark(element: ET.Element, schema: dict[str, Any], where: str) -> Any:
    """The JSON the spec's Spark convention makes of `element`, asserting its XML structure on the way:
    the item elements' names, the children's names and order, leaves with no children."""
    if schema.get("type") == "array":
        assert not (element.text or "").strip(), where
        item = ITEMS[element.tag]
        assert all(c.tag == item for c in element), f"{where}: {[c.tag for c in element]} are not all <{item}>"
        return [spark(c, schema["items"], f"{where}/{item}[{i}]") for i, c in enumerate(element)]
    if schema.get("type") == "object":
        assert [c.tag for c in element] == schema["order"], f"{where}: {[c.tag for c in element]}"
        return {c.tag: spark(c, schema["properties"][c.tag], f"{where}/{c.tag}") for c in element}
    assert len(element) == 0, f"{where} is a value, not a container"
    text = element.text
    if not text:
        assert _nullable(schema), f"{where} is empty"
        return None
    kinds = schema.get("type", "string")
    if "boolean" in kinds:
        assert text in ("true", "false"), f"{where}: {text!r}"
        return text == "true"
    if "integer" in kinds:
        return int(text)
    if "number" in kinds:
        return float(text)
    return text


async def get_both(web: Web, path: str, kind: str, status: int = 200) -> Any:
    """`path` (the part before .json/.xml, then the query) in both formats: each has the spec's
    structure and content type, and the XML says what the JSON says. Returns the JSON."""
    base, _, query = path.partition("?")
    query = "?" + query if query else ""
    as_json = await web.get(f"{base}.json{query}")
    as_xml = await web.get(f"{base}.xml{query}")
    return check_both(as_json, as_xml, kind, status)


def check_both(as_json: Reply, as_xml: Reply, kind: str, status: int) -> Any:
    schema = SPEC[kind]
    assert as_json.status == status, as_json.text
    assert as_json.headers["Content-Type"] == "application/json; charset=utf-8"
    Draft202012Validator(schema).validate(as_json.doc)
    assert as_xml.status == status, as_xml.text
    assert as_xml.headers["Content-Type"] == "text/xml; charset=utf-8"
    raw = as_xml.text.encode()
    assert raw.startswith(b'<?xml version="1.0" encoding="utf-8"?>'), raw[:60]
    root = ET.fromstring(raw)
    assert root.tag == ROOTS.get(kind, kind) and not root.attrib, root.tag  # no namespace, no attribute
    from_xml = spark(root, schema, root.tag)
    assert from_xml == as_json.doc
    return as_json.doc


async def seed(web: Web) -> dict[str, str]:
    """Reports of every kind of content: a lamp report tied to a fault, a closed one with an expected
    date, one with only an address, one with text that needs escaping."""
    ops = await web.add_operator()
    cab = await web.add_cabinet("gw-dijon-0001", DIJON, 47.3221, 5.0415)
    now = now_ms()
    await web.upload(cab.gateway.name, [sample(0, "lamp-3", now - 60_000, lamp_on=True, power_w=0.5),
                                        event(0, "lamp-3", now - 50_000, "lamp_failure")])
    base = {"jurisdiction_id": DIJON, "lat": "47.3221", "long": "5.0415"}
    lamp = await web.request("POST", "/open311/v2/requests.json", data={
        **base, "service_code": "lamp-out", "attribute[lamp_id]": "gw-dijon-0001/lamp-3"})
    closed = await web.request("POST", "/open311/v2/requests.json", data={
        **base, "service_code": "pothole", "description": 'Trou <profond> & "dangereux"\r\nau 12 rue'})
    address = await web.request("POST", "/open311/v2/requests.json", data={
        "jurisdiction_id": DIJON, "service_code": "graffiti", "address_string": "Place Darcy, Dijon",
        "zipcode": "21000", "media_url": "https://example.org/tag.jpg?a=1&b=2"})
    ids = {name: r.doc[0]["service_request_id"] for name, r in (("lamp", lamp), ("closed", closed),
                                                                ("address", address))}
    moved = await web.request("POST", f"/api/v1/reports/{ids['closed']}/state", headers=ops, json={
        "state": "resolved", "note": "Rebouché", "expected_datetime": "2026-12-01T09:00:00+01:00"})
    assert moved.status == 200, moved.text
    ids["token"] = lamp.headers["Citygate-Follow-Token"]
    return ids


async def test_every_document_has_the_spec_structure_in_xml_and_json(web: Web) -> None:
    ids = await seed(web)
    for path in ("/open311/discovery", "/open311/v2/discovery"):
        doc = await get_both(web, path, "discovery")
        [endpoint] = doc["endpoints"]
        assert endpoint["url"] == web.url + "/open311/v2" and endpoint["type"] == "production"
        assert set(endpoint["formats"]) == {"text/xml", "application/json"}
        assert endpoint["changeset"] == doc["changeset"] and re.match(W3C_DATETIME, doc["changeset"])
    services = await get_both(web, "/open311/v2/services", "services")
    choices = []
    for service in services:
        definition = await get_both(web, f"/open311/v2/services/{service['service_code']}", "service_definition")
        choices += [v for a in definition["attributes"] for v in a["values"]]
        assert definition["service_code"] == service["service_code"]
        assert bool(definition["attributes"]) == service["metadata"]  # metadata=true: there are attributes
        assert [a["order"] for a in definition["attributes"]] == list(range(1, len(definition["attributes"]) + 1))
    assert choices, "no singlevaluelist: <values><value><key/><name/></value></values> went unchecked"
    listed = await get_both(web, "/open311/v2/requests", "service_requests")
    assert {r["service_request_id"] for r in listed} == {ids["lamp"], ids["closed"], ids["address"]}
    by_id = {r["service_request_id"]: r for r in listed}
    # the form's CRLF comes back as sent, from the XML too (a parser reads a raw CR as LF)
    assert by_id[ids["closed"]]["description"] == 'Trou <profond> & "dangereux"\r\nau 12 rue'
    assert (by_id[ids["closed"]]["status"], by_id[ids["closed"]]["status_notes"]) == ("closed", "Rebouché")
    assert by_id[ids["closed"]]["expected_datetime"] == "2026-12-01T09:00:00+01:00"
    assert by_id[ids["address"]]["media_url"] == "https://example.org/tag.jpg?a=1&b=2"
    assert (by_id[ids["address"]]["lat"], by_id[ids["address"]]["address"]) == (None, "Place Darcy, Dijon")
    assert by_id[ids["lamp"]]["service_notice"].startswith("Panne détectée")
    for rid in (ids["lamp"], ids["closed"], ids["address"]):
        [one] = await get_both(web, f"/open311/v2/requests/{rid}", "service_requests")
        assert one == by_id[rid]
    pair = await get_both(web, f"/open311/v2/requests?service_request_id={ids['lamp']},{ids['address']}",
                          "service_requests")
    assert {r["service_request_id"] for r in pair} == {ids["lamp"], ids["address"]}
    assert await get_both(web, f"/open311/v2/tokens/{ids['token']}", "token") == [
        {"service_request_id": ids["lamp"], "token": ids["token"]}]
    # errors: the spec's list in the format asked for, with the status as code
    for path, status in (("/open311/v2/services/teleport", 404), ("/open311/v2/requests/424242", 404),
                         ("/open311/v2/tokens/cgf_nobody", 404), ("/open311/v2/requests?status=pending", 400),
                         ("/open311/v2/services?jurisdiction_id=75056", 404)):
        errors = await get_both(web, path, "errors", status)
        assert {e["code"] for e in errors} == {status}, path


async def test_a_report_sent_with_every_argument_of_the_spec_is_answered_in_the_format_asked_for(web: Web) -> None:
    # the spec's example request, with our commune, service and lamp: every optional argument at once
    await web.add_cabinet("gw-dijon-0001", DIJON, 47.3221, 5.0415)
    await web.upload("gw-dijon-0001", [sample(0, "lamp-3", now_ms(), lamp_on=True, power_w=60.0)])
    body = ("api_key=xyz&jurisdiction_id=21231&service_code=lamp-out&lat=47.3221&long=5.0415"
            "&address_string=12+rue+de+la+Libert%C3%A9&email=smit333%40example.org&device_id=tt222111"
            "&account_id=123456&first_name=john&last_name=smith&phone=111111111"
            "&description=A+lamp+is+out&media_url=http%3A%2F%2Fexample.org%2F2212426634.jpg"
            "&attribute[lamp_id]=gw-dijon-0001%2Flamp-3&attribute[symptom]=flashing")
    headers = {"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"}
    as_xml = await web.request("POST", "/open311/v2/requests.xml", data=body, headers=headers)
    as_json = await web.request("POST", "/open311/v2/requests.json", data=body, headers=headers)
    assert as_xml.status == as_json.status == 201, (as_xml.text, as_json.text)
    root = ET.fromstring(as_xml.text.encode())
    [created] = spark(root, SPEC["created"], root.tag)
    Draft202012Validator(SPEC["created"]).validate(as_json.doc)
    assert as_xml.headers["Content-Type"] == "text/xml; charset=utf-8"
    assert created["account_id"] is None and "token" not in created
    rid = created["service_request_id"]
    # the second one, about the same lamp, joined the first one's request
    assert as_json.doc[0]["service_request_id"] == rid and "rattaché" in as_json.doc[0]["service_notice"]
    assert as_xml.headers["Location"] == f"/open311/v2/requests/{rid}.xml"
    # the token of each reporter leads to the request, as the spec's tokens resource does
    for reply in (as_xml, as_json):
        token = reply.headers["Citygate-Follow-Token"]
        assert (await web.get(f"/open311/v2/tokens/{token}.json")).doc[0]["service_request_id"] == rid
    [public] = (await web.get(f"/open311/v2/requests/{rid}.json")).doc
    assert (public["address"], public["description"]) == ("12 rue de la Liberté", "A lamp is out")
    assert "smith" not in str(public) and "123456" not in str(public)


async def test_errors_of_xml_paths_are_xml_and_list_every_problem(web: Web) -> None:
    reply = await web.request("POST", "/open311/v2/requests.xml", data={
        "jurisdiction_id": DIJON, "service_code": "", "email": "x", "phone": "call me"})
    root = ET.fromstring(reply.text.encode())
    errors = spark(root, SPEC["errors"], "errors")
    assert reply.status == 400 and reply.headers["Content-Type"] == "text/xml; charset=utf-8"
    assert len(errors) == 4 and {e["code"] for e in errors} == {400}, errors
    for method, path, status in (("DELETE", "/open311/v2/requests.xml", 405), ("GET", "/open311/v2/nope.xml", 404),
                                 ("GET", "/open311/v2/requests/abc.xml", 404),
                                 ("PUT", "/open311/discovery.xml", 405)):
        reply = await web.request(method, path)
        assert (reply.status, reply.content_type) == (status, "text/xml"), (path, reply.text)
        assert spark(ET.fromstring(reply.text.encode()), SPEC["errors"], "errors")[0]["code"] == status
    # .json paths and bare ones keep the JSON list
    reply = await web.request("DELETE", "/open311/v2/requests")
    assert (reply.status, reply.content_type, reply.doc[0]["code"]) == (405, "application/json", 405)


async def test_jurisdiction_id_is_taken_by_every_resource(web: Web) -> None:
    ids = await seed(web)
    for path in ("/open311/v2/services", "/open311/v2/services/lamp-out", "/open311/v2/requests",
                 f"/open311/v2/requests/{ids['lamp']}", f"/open311/v2/tokens/{ids['token']}"):
        same = (await web.get(f"{path}.json")).doc
        # the commune's code, a former commune's code it absorbed, or empty (an optional argument)
        assert (await web.get(f"{path}.json?jurisdiction_id={DIJON}")).doc == same, path
        assert (await web.get(f"{path}.json?jurisdiction_id=")).doc == same, path
        errors = await get_both(web, f"{path}?jurisdiction_id=99999", "errors", 404)
        assert "99999" in errors[0]["description"]
    # a report is not found under another commune
    for path in (f"/open311/v2/requests/{ids['lamp']}", f"/open311/v2/tokens/{ids['token']}"):
        await get_both(web, f"{path}?jurisdiction_id=21452", "errors", 404)
    assert (await web.get("/open311/v2/requests.json?jurisdiction_id=21452")).doc == []


async def test_the_search_window_is_the_last_90_days_by_default_in_both_formats(web: Web) -> None:
    now = datetime.now(UTC)
    report = parse_new_report({"jurisdiction_id": DIJON, "service_code": "pothole", "address_string": "ici"},
                              load_territory())
    ids = {}
    for days in (1, 89, 91):
        done = await web.store.submit_report(report, f"hash-{days}", int((now - timedelta(days=days)).timestamp()
                                                                          * 1000))
        ids[days] = str(done.request.id)

    async def found(query: str) -> set[str]:
        return {r["service_request_id"] for r in await get_both(web, "/open311/v2/requests" + query,
                                                                "service_requests")}

    assert await found("") == {ids[1], ids[89]}
    # only a start: the 90 days after it
    assert await found("?start_date=" + (now - timedelta(days=95)).strftime("%Y-%m-%dT%H:%M:%SZ")) == \
        {ids[89], ids[91]}


@pytest.mark.parametrize("text", ["\ufffe", "\uffff", "a\x0bb", "\x1b[31m"])
async def test_text_xml_cannot_carry_is_refused(web: Web, text: str) -> None:
    reply = await web.request("POST", "/open311/v2/requests.json", data={
        "jurisdiction_id": DIJON, "service_code": "pothole", "address_string": "ici", "description": text})
    assert reply.status == 400 and "caractères de contrôle" in reply.doc[0]["description"], reply.text


async def test_a_stored_text_xml_cannot_carry_is_shown_replaced(web: Web) -> None:
    # stored before such characters were refused: the XML still parses, the character shows as U+FFFD
    report = parse_new_report({"jurisdiction_id": DIJON, "service_code": "pothole", "address_string": "ici"},
                              load_territory())
    report = type(report)(**{**{f: getattr(report, f) for f in report.__slots__}, "description": "a\x01b\ufffec"})
    done = await web.store.submit_report(report, "hash-old", now_ms())
    reply = await web.get(f"/open311/v2/requests/{done.request.id}.xml")
    [one] = spark(ET.fromstring(reply.text.encode()), SPEC["service_requests"], "service_requests")
    assert one["description"] == "a\ufffdb\ufffdc"
