"""Every bad request is a 4xx with a problem body (the Open311 error list under /open311/), never
a 500 and a traceback, on a real collector and both stores: the requests that once failed, and
arbitrary text in every path and query parameter of every route /openapi.json documents."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import aiohttp
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from web_testkit import Reply, Web, event, now_ms, sample
from yarl import URL

from citygate_wire.mqtt import Alarm
from collector.app import create_app, start
from collector.reports.model import parse_new_report
from collector.store import Store
from collector.territory import load_territory

DIJON = "21231"
BIG = "99999999999999999999"  # past 64 bits: neither SQLite INTEGER nor PostgreSQL bigint holds it


def assert_error(path: str, reply: Reply, status: int, *fragments: str, parameter: str | None = None) -> None:
    """A 4xx in the shape of its part of the API, whose text holds each fragment."""
    assert reply.status == status, (path, reply.status, reply.text)
    if path.startswith("/open311/"):
        assert reply.content_type == "application/json", (path, reply.content_type)
        assert isinstance(reply.doc, list) and reply.doc, reply.text
        assert all(set(e) == {"code", "description"} and e["code"] == status for e in reply.doc), reply.text
    else:
        assert reply.content_type == "application/problem+json", (path, reply.content_type)
        assert reply.doc["status"] == status and reply.doc["title"] and reply.doc["detail"], reply.text
        if parameter is not None:
            assert reply.doc["parameter"] == parameter, reply.text
    for fragment in fragments:
        assert fragment in reply.text, (path, reply.text)


@pytest.mark.parametrize(("method", "path", "status", "fragment", "parameter"), [
    ("GET", f"/open311/v2/requests/{BIG}.json", 404, BIG, None),
    ("GET", f"/open311/v2/requests/{BIG}/events?token=x", 404, BIG, None),
    ("GET", "/open311/v2/requests.json?service_request_id=%C2%B2", 400, "'²' n'est pas un numéro de demande", None),
    ("GET", f"/open311/v2/requests.json?service_request_id=1,{BIG}", 400, BIG, None),
    ("GET", "/open311/v2/requests.json?status=%00", 400, "caractère NUL", None),  # French: the resident's default
    ("GET", "/opendata/v1/communes/daily.json?to=0001-01-05", 400, "before year 1", "to"),
    ("GET", "/opendata/v1/communes/daily.csv?from=0001-01-01&to=0001-01-02&commune=%00", 400, "NUL", "commune"),
    ("GET", "/ngsi-ld/v1/entities/urn:ngsi-ld:Device:%00:x", 400, "NUL", "entity_id"),
    ("GET", "/ngsi-ld/v1/entities/urn:ngsi-ld:Device:gw:%2500", 400, "NUL", "entity_id"),  # %00 once decoded
    ("GET", "/ngsi-ld/v1/entities?type=Device&limit=%D9%A2", 400, "limit", "limit"),  # an Arabic-Indic 2
    ("POST", f"/api/v1/control/alarms/{BIG}/acknowledge", 404, BIG, None),
    ("POST", "/api/v1/control/alarms/%D9%A2/acknowledge", 404, "no alarm", None),
    ("GET", f"/api/v1/reports/{BIG}", 404, BIG, None),
    ("POST", f"/api/v1/reports/{BIG}/state", 404, BIG, None),
    ("GET", "/api/v1/gateways/%00/events", 400, "NUL", "gateway"),
    ("GET", "/api/v1/control/alarms?gateway=%00", 400, "NUL", "gateway"),
    ("GET", "/api/v1/control/commands/%00", 400, "NUL", "command"),
    ("GET", "/control/api/cabinets/%00", 400, "NUL", "gateway"),
    ("GET", "/api/v1/gateways/gw-dijon-0001/events?limit=1_0", 400, "limit", "limit"),
    ("GET", "/api/v1/rollups/day?from=0001-01-01&to=99999-01-01", 400, "to", "to"),
])
async def test_a_request_that_once_failed_is_a_4xx_problem(
    web: Web, method: str, path: str, status: int, fragment: str, parameter: str | None
) -> None:
    headers = await web.add_operator()
    reply = await web.request(method, path, headers=headers)
    assert_error(path, reply, status, fragment, parameter=parameter)


async def test_day_rollups_read_a_compact_date_as_the_same_day(web: Web) -> None:
    await web.add_cabinet("gw-dijon-0001", DIJON)
    await web.upload("gw-dijon-0001", [sample(0, "lamp-1", 1_775_000_000_000, energy_wh=10, lamp_on=True)])
    day = (await web.get("/api/v1/rollups/day?from=2026-03-31&to=2026-04-01")).doc["buckets"]
    assert day and (await web.get("/api/v1/rollups/day?from=20260331&to=20260401")).doc["buckets"] == day


async def test_every_error_under_open311_is_the_open311_error_list(web: Web) -> None:
    for method, path, status in (("GET", "/open311/v2/nothing.json", 404),
                                 ("GET", "/open311/v2/requests/abc.json", 404),
                                 ("DELETE", "/open311/v2/requests.json", 405),
                                 ("PUT", "/open311/v2/services.json", 405)):
        assert_error(path, await web.request(method, path), status)
    path = "/open311/v2/requests.json"
    fields = {"jurisdiction_id": DIJON, "service_code": "pothole", "lat": "47.3221", "long": "5.0415"}
    # a declared body over the limit, and a chunked one that declares nothing
    reply = await web.request("POST", path, data={**fields, "description": "x" * 70_000})
    assert_error(path, reply, 413, "65536 octets")  # French by default (collector.i18n)

    async def chunks() -> AsyncIterator[bytes]:
        yield b"jurisdiction_id=21231&description="
        for _ in range(40):
            yield b"x" * 32_768

    reply = await web.request("POST", path, data=chunks(),
                              headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert_error(path, reply, 413)
    reply = await web.request("POST", path, data="&".join(f"f{i}=1" for i in range(200)),
                              headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert_error(path, reply, 400, "100 champs au plus")
    reply = await web.request("POST", path, data=b"jurisdiction_id=\xff", headers={
        "Content-Type": "application/x-www-form-urlencoded"})
    assert_error(path, reply, 400, "pas en UTF-8")
    # the rest of the API keeps problem+json for the same errors
    assert_error("/api/v1/nothing", await web.request("GET", "/api/v1/nothing"), 404)
    assert_error("/api/v1/gateways", await web.request("DELETE", "/api/v1/gateways"), 405)


# -- arbitrary text in every parameter of every documented route ------------------------------------

METHODS = ("get", "post", "put", "patch", "delete")


async def _seed(web: Web) -> list[str]:
    """Data the values can name, so that parameters reach past the 404s; the names, for the values."""
    now = now_ms()
    cab = await web.add_cabinet("gw-dijon-0001", DIJON, 47.3221, 5.0415, cabinet="DIJ-001")
    await web.upload("gw-dijon-0001", [
        sample(0, "lamp-1", now - 120_000, energy_wh=1000, lamp_on=True, level_pct=70, power_w=1.0),
        event(0, "lamp-1", now - 100_000, "lamp_failure"),
        sample(0, "water-1", now - 60_000, volume_m3=12.5),
    ])
    await web.store.record_alarm(cab.gateway.id, Alarm("al-1", "door", now, "door_open", "major"), now)
    [alarm] = await web.store.alarms()
    fields = {"jurisdiction_id": DIJON, "service_code": "lamp-out", "lat": "47.3221", "long": "5.0415"}
    report = await web.store.submit_report(parse_new_report(fields, load_territory()), "hash-seed", now)
    return ["gw-dijon-0001", "lamp-1", "water-1", DIJON, "21213", "hour", "day", "keyValues", "normalized",
            "Streetlight", "StreetlightControlCabinet", "WaterConsumptionObserved", "Device",
            "urn:ngsi-ld:Streetlight:gw-dijon-0001:lamp-1", "urn:ngsi-ld:StreetlightControlCabinet:gw-dijon-0001",
            str(report.request.id), str(alarm.id), "acknowledge", "clear", "open", "closed", "received",
            "lamp-out", "pothole", "app.js"]


#: values at the edges of what parsers and databases take
EDGES = ["", "\x00", "gw\x00", "²", "١٢", " 1", "1_0", "-1", "0", str(2**63 - 1), str(2**63), BIG, "1e3", "NaN",
         "0001-01-01", "0001-01-05", "9999-12-31", "0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00",
         "20260329", "2026-W13-7", "..", "%00", "a/b"]


def _values(seeds: list[str]) -> st.SearchStrategy[str]:
    return st.one_of(
        st.text(),  # every code point but surrogates: control characters, NUL, "²", other scripts' digits
        st.sampled_from(seeds),
        st.sampled_from(EDGES),
        st.integers().map(str) | st.integers(2**62, 2**70).map(str),
        st.dates().map(lambda d: d.isoformat()),
        st.datetimes().map(lambda d: d.isoformat() + "+14:00"),
    )


def _error_types(op: dict[str, Any], status: int) -> set[str]:
    """The content types the document gives for that status other than the problem shapes ($ref)."""
    return set(op["responses"].get(str(status), {}).get("content", {}))


@dataclass
class Served:
    web: Web
    operator: dict[str, str]  # the Authorization header: the operators' routes parse their parameters too
    openapi: dict[str, Any]  # the document this collector serves
    values: st.SearchStrategy[str]


@pytest.fixture(params=[False, True], ids=["open", "operator-login"])
async def served(request: pytest.FixtureRequest, store: Store) -> AsyncIterator[Served]:
    runner, url = await start(create_app(store, operator_login=request.param), "127.0.0.1", 0)
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as session:
            web = Web(url, store, session)
            operator = await web.add_operator()
            yield Served(web, operator, (await web.get("/openapi.json")).doc, _values(await _seed(web)))
    finally:
        await runner.cleanup()


@settings(max_examples=600, deadline=None,
          # one server and store for every example, on purpose: the examples only read or are refused
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
async def test_arbitrary_parameters_never_get_a_5xx(served: Served, data: st.DataObject) -> None:
    web, doc, values = served.web, served.openapi, served.values
    operations = sorted((path, method) for path, item in doc["paths"].items() for method in item if method in METHODS)
    template, method = data.draw(st.sampled_from(operations), label="route")
    op = doc["paths"][template][method]
    path = template
    query: list[tuple[str, str]] = []
    for param in op.get("parameters", []):
        if param["in"] == "path":
            path = path.replace("{" + param["name"] + "}", quote(data.draw(values, label=param["name"]), safe=""))
        elif data.draw(st.booleans(), label=f"with {param['name']}"):
            query.append((param["name"], data.draw(values, label=param["name"])))
    query += data.draw(st.lists(st.tuples(st.text(max_size=8), values), max_size=2), label="other parameters")
    url = URL(web.url + path, encoded=True).update_query(query) if query else URL(web.url + path, encoded=True)
    async with web.session.request(method, url, headers=served.operator, allow_redirects=False) as resp:
        reply = Reply(resp.status, resp.content_type,
                      "" if resp.content_type == "text/event-stream" else await resp.text(), resp.headers)
    where = f"{method.upper()} {url}"
    if reply.status == 503 and "503" in op["responses"]:
        # the one kind of 5xx the document gives: what this collector runs without (here, an MQTT broker)
        assert_error(url.path, reply, 503)
        return
    assert reply.status < 500, f"{where} -> {reply.status} {reply.text}"
    if reply.status >= 400 and reply.content_type not in _error_types(op, reply.status):
        assert_error(url.path, reply, reply.status)
