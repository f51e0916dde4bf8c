"""Residents' reports over Open311 GeoReport v2, on a real collector and both stores: validation,
privacy of the reporter, the 90-day window, filters, states, dedupe onto an open lamp fault,
and the reporter following the report live."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import orjson
import pytest
from web_testkit import Reply, Web, event, now_ms, sample

from collector.reports.model import NewReport, parse_new_report
from collector.reports.routes import FOLLOW_TOKEN_HEADER, FOLLOW_URL_HEADER
from collector.reports.services import SERVICES
from collector.reports.store import Lamp
from collector.territory import load_territory

DIJON = "21231"
NAME, SURNAME, EMAIL, PHONE = "Zéphirine", "Quatrebarbes", "zephirine.q@example.org", "+33 6 12 34 56 78"


def form(**fields: str) -> dict[str, str]:
    base = {"jurisdiction_id": DIJON, "service_code": "pothole", "lat": "47.3221", "long": "5.0415",
            "description": "Trou profond devant le 12 rue de la Liberté"}
    base.update(fields)
    return {k: v for k, v in base.items() if v != ""}


async def send(web: Web, **fields: str) -> Reply:
    return await web.request("POST", "/open311/v2/requests.json", data=form(**fields))


async def post(web: Web, **fields: str) -> tuple[int, Any]:
    reply = await send(web, **fields)
    return reply.status, reply.doc


def follow_token(reply: Reply) -> str:
    """The reporter's private follow token: a response header, the body being the spec's own."""
    return reply.headers[FOLLOW_TOKEN_HEADER]


def assert_errors(status: int, doc: Any, expected: int, *fragments: str) -> None:
    """The spec's error shape: a list of {code, description}; each fragment found in some description."""
    assert status == expected, doc
    assert isinstance(doc, list) and doc
    for err in doc:
        assert set(err) == {"code", "description"} and err["code"] == expected and err["description"]
    text = " | ".join(e["description"] for e in doc)
    for fragment in fragments:
        assert fragment in text, text


async def test_services_list_and_lamp_out_definition(web: Web) -> None:
    for path in ("/open311/v2/services.json", "/open311/v2/services"):
        reply = await web.get(path)
        assert (reply.status, reply.content_type) == (200, "application/json")
        codes = {s["service_code"]: s for s in reply.doc}
        assert {"lamp-out", "pothole", "fallen-branch", "manhole-cover", "bus-shelter", "graffiti",
                "bulky-waste"} <= codes.keys()
        assert codes["lamp-out"]["metadata"] is True and codes["pothole"]["metadata"] is False
        assert codes["lamp-out"]["service_name"] == "Lampadaire éteint ou défectueux"
    definition = (await web.get("/open311/v2/services/lamp-out.json")).doc
    assert [(a["code"], a["datatype"], a["required"]) for a in definition["attributes"]] == [
        ("lamp_id", "string", False), ("symptom", "singlevaluelist", False)]
    assert [v["key"] for v in definition["attributes"][1]["values"]] == ["off", "flashing", "day_on", "damaged"]
    assert_errors(*(lambda r: (r.status, r.doc))(await web.get("/open311/v2/services/teleport.json")), 404,
                  "teleport")
    reply = await web.get("/open311/v2/services.json?jurisdiction_id=99999")
    assert_errors(reply.status, reply.doc, 404, "99999")


@pytest.mark.parametrize(("fields", "status", "fragments"), [
    ({"jurisdiction_id": ""}, 400, ["jurisdiction_id was not provided"]),
    ({"jurisdiction_id": "75056"}, 404, ["75056"]),
    ({"service_code": ""}, 400, ["service_code was not provided"]),
    ({"service_code": "teleport"}, 404, ["'teleport' was not found"]),  # the spec: an unknown service is a 404
    ({"service_code": "teleport", "email": "x"}, 404, ["'teleport' was not found", "email"]),
    ({"lat": "", "long": ""}, 400, ["a location is required"]),
    ({"lat": "north", "long": "5.04"}, 400, ["lat 'north' is not a number"]),
    ({"lat": "95", "long": "5.04"}, 400, ["out of range"]),
    ({"lat": "47.32", "long": ""}, 400, ["lat and long go together"]),
    ({"lat": "48.8566", "long": "2.3522"}, 400, ["outside Dijon Métropole"]),
    ({"email": "not-an-address"}, 400, ["email"]),
    ({"phone": "call me maybe"}, 400, ["phone"]),
    ({"media_url": "file:///etc/passwd"}, 400, ["media_url"]),
    ({"description": "x" * 4001}, 400, ["description is longer than 4000"]),
    ({"colour": "blue"}, 400, ["'colour' is not a field"]),
    ({"attribute[lamp_id]": "gw/lamp-1"}, 400, ["not an attribute of pothole"]),
    ({"service_code": "lamp-out", "attribute[lamp_id]": "no slash"}, 400, ["expected cabinet/lamp"]),
    ({"service_code": "lamp-out", "attribute[lamp_id]": "gw-nowhere/lamp-1"}, 400, ["no lamp cabinet named"]),
    ({"service_code": "lamp-out", "attribute[symptom]": "exploded"}, 400,
     ["attribute[symptom] 'exploded': one of off, flashing, day_on, damaged"]),
    ({"service_code": "lamp-out", "attribute[lamp_id]": "gw/" + "x" * 600}, 400, ["at most 500 characters"]),
    # every problem at once, not the first one only
    ({"service_code": "", "email": "x", "lat": "", "long": ""}, 400,
     ["service_code was not provided", "email", "a location is required"]),
])
async def test_a_bad_report_is_refused_with_the_open311_error_list(
    web: Web, fields: dict[str, str], status: int, fragments: list[str]
) -> None:
    # in English as asked (French by default: the other tests, and tests/collector_web/test_web_reports_i18n.py)
    reply = await web.request("POST", "/open311/v2/requests.json?lang=en", data=form(**fields))
    assert_errors(reply.status, reply.doc, status, *fragments)
    assert (await web.get("/open311/v2/requests.json")).doc == []  # nothing stored


async def test_bodies_other_than_fields_are_refused(web: Web) -> None:
    reply = await web.request("POST", "/open311/v2/requests.json", data=b"<xml/>",
                              headers={"Content-Type": "text/xml"})
    assert_errors(reply.status, reply.doc, 400, "application/x-www-form-urlencoded")
    reply = await web.request("POST", "/open311/v2/requests.json", data=b"[1, 2]",
                              headers={"Content-Type": "application/json"})
    assert_errors(reply.status, reply.doc, 400, "objet")
    reply = await web.request("POST", "/open311/v2/requests.json", json={**form(), "lat": None})
    assert_errors(reply.status, reply.doc, 400, "lat")


async def test_a_report_is_stored_and_read_back_publicly(web: Web) -> None:
    reply = await send(web, address_string="12 rue de la Liberté", zipcode="21000")
    assert reply.status == 201
    [created] = reply.doc
    rid = created["service_request_id"]
    # the spec's reply: the id (known at once, so no token), the notice, no account
    assert created == {"service_request_id": rid, "service_notice": None, "account_id": None}
    token = follow_token(reply)
    assert token.startswith("cgf_") and reply.headers["Location"] == f"/open311/v2/requests/{rid}.json"
    assert reply.headers[FOLLOW_URL_HEADER] == f"/open311/v2/requests/{rid}/events?token={token}"
    for path in (f"/open311/v2/requests/{rid}.json", f"/open311/v2/requests/{rid}"):
        reply = await web.get(path)
        assert reply.status == 200
        [req] = reply.doc
        assert req["service_request_id"] == rid
        assert (req["status"], req["service_code"], req["service_name"]) == ("open", "pothole", "Nid-de-poule")
        assert req["status_notes"] == "Signalement reçu."
        assert (req["lat"], req["long"], req["address"], req["zipcode"]) == (47.3221, 5.0415,
                                                                             "12 rue de la Liberté", "21000")
        requested = datetime.fromisoformat(req["requested_datetime"])
        assert requested.tzinfo is not None and abs(requested.timestamp() * 1000 - now_ms()) < 60_000
        assert req["updated_datetime"] == req["requested_datetime"]
    reply = await web.get("/open311/v2/requests/999999.json")
    assert_errors(reply.status, reply.doc, 404, "999999")


async def test_a_former_commune_code_files_the_report_in_the_commune_it_merged_into(web: Web) -> None:
    status, doc = await post(web, jurisdiction_id="21213", lat="47.279", long="5.105")  # Crimolois
    assert status == 201
    listed = (await web.get("/open311/v2/requests.json?jurisdiction_id=21452")).doc
    assert [r["service_request_id"] for r in listed] == [doc[0]["service_request_id"]]
    assert (await web.get(f"/open311/v2/requests.json?jurisdiction_id={DIJON}")).doc == []
    # and searching with the former code finds it as well
    assert len((await web.get("/open311/v2/requests.json?jurisdiction_id=21213")).doc) == 1


async def test_the_reporter_never_appears_in_a_public_answer(web: Web) -> None:
    ops = await web.add_operator()
    cab = await web.add_cabinet("gw-dijon-0001", DIJON, 47.3221, 5.0415)
    await web.upload(cab.gateway.name, [sample(0, "lamp-3", now_ms() - 60_000, lamp_on=True, power_w=0.5)])
    contact = {"first_name": NAME, "last_name": SURNAME, "email": EMAIL, "phone": PHONE,
               "device_id": "device-7731", "account_id": "acct-5511"}
    sent = await send(web, **contact)
    created = sent.doc
    _, lamp = await post(web, service_code="lamp-out", **{"attribute[lamp_id]": "gw-dijon-0001/lamp-3"}, **contact)
    rid = created[0]["service_request_id"]
    token = follow_token(sent)
    public = [orjson.dumps(created), orjson.dumps(lamp)]
    for path in ("/open311/v2/requests.json", f"/open311/v2/requests/{rid}.json",
                 f"/open311/v2/requests.json?service_request_id={rid},{lamp[0]['service_request_id']}",
                 "/open311/v2/requests.json?status=open", "/open311/v2/services.json"):
        reply = await web.get(path)
        assert reply.status == 200
        public.append(reply.text.encode())
    async with web.session.get(f"{web.url}/open311/v2/requests/{rid}/events?token={token}") as resp:
        public.append(await resp.content.readuntil(b"\n\n"))
    blob = b"\n".join(public).decode()
    assert "Trou profond" in blob  # the search does see the report itself
    for secret in (*contact.values(), "Zéphirine", "zephirine", "12 34 56 78"):
        assert secret not in blob
    # ...while the operators do see who reported it
    detail = (await web.get(f"/api/v1/reports/{rid}", headers=ops)).doc
    assert [(r["first_name"], r["last_name"], r["email"], r["phone"]) for r in detail["reporters"]] == \
        [(NAME, SURNAME, EMAIL, PHONE)]


async def _report_at(web: Web, when: datetime, service: str = "pothole") -> int:
    report: NewReport = parse_new_report(form(service_code=service), load_territory())
    done = await web.store.submit_report(report, f"hash-{when.timestamp()}-{service}", int(when.timestamp() * 1000))
    return done.request.id


async def test_searches_cover_90_days_at_most(web: Web) -> None:
    now = datetime.now(UTC)
    recent = await _report_at(web, now - timedelta(days=2))
    old = await _report_at(web, now - timedelta(days=100))
    ids = lambda doc: [int(r["service_request_id"]) for r in doc]  # noqa: E731
    assert ids((await web.get("/open311/v2/requests.json")).doc) == [recent]  # default: the last 90 days

    def window(start: datetime, end: datetime | None = None) -> str:
        q = {"start_date": start.isoformat()}
        if end is not None:
            q["end_date"] = end.isoformat()
        return "/open311/v2/requests.json?" + "&".join(f"{k}={v.replace('+', '%2B')}" for k, v in q.items())

    assert ids((await web.get(window(now - timedelta(days=101), now - timedelta(days=12)))).doc) == [old]
    reply = await web.get(window(now - timedelta(days=101), now))
    assert_errors(reply.status, reply.doc, 400, "plus de 90 jours")
    reply = await web.get(window(now, now - timedelta(days=1)))
    assert_errors(reply.status, reply.doc, 400, "est avant start_date")
    # only a start: the 90 days after it
    assert ids((await web.get(window(now - timedelta(days=101)))).doc) == [old]
    reply = await web.get("/open311/v2/requests.json?start_date=2026-01-01T00:00:00")
    assert_errors(reply.status, reply.doc, 400, "n'a pas de fuseau horaire")
    reply = await web.get("/open311/v2/requests.json?end_date=yesterday")
    assert_errors(reply.status, reply.doc, 400, "ISO 8601")


async def test_filters_by_id_service_and_status(web: Web) -> None:
    ops = await web.add_operator()
    _, a = await post(web)
    _, b = await post(web, service_code="graffiti")
    _, c = await post(web, service_code="graffiti")
    a_id, b_id, c_id = (x[0]["service_request_id"] for x in (a, b, c))
    reply = await web.request("POST", f"/api/v1/reports/{c_id}/state", headers=ops, json={"state": "resolved"})
    assert reply.status == 200, reply.text

    async def ids(query: str) -> set[str]:
        reply = await web.get("/open311/v2/requests.json?" + query)
        assert reply.status == 200, reply.text
        return {r["service_request_id"] for r in reply.doc}

    assert await ids("service_code=graffiti") == {b_id, c_id}
    assert await ids("service_code=graffiti,pothole") == {a_id, b_id, c_id}
    assert await ids("status=closed") == {c_id}
    assert await ids("status=open") == {a_id, b_id}
    assert await ids("status=open&service_code=graffiti") == {b_id}
    assert await ids(f"service_request_id={a_id},{c_id}") == {a_id, c_id}
    # the id list wins over every other filter, as the spec says
    assert await ids(f"service_request_id={a_id}&service_code=graffiti&status=closed") == {a_id}
    for query, fragment in (("status=pending", "open ou closed"), ("service_code=teleport", "teleport"),
                            ("service_request_id=12,abc", "abc"), ("jurisdiction_id=00000", "00000")):
        reply = await web.get("/open311/v2/requests.json?" + query)
        assert_errors(reply.status, reply.doc, 404 if "jurisdiction" in query else 400, fragment)


async def test_operators_move_a_report_through_its_states(web: Web) -> None:
    ops = await web.add_operator("bernard")
    _, created = await post(web)
    rid = created[0]["service_request_id"]
    path = f"/api/v1/reports/{rid}/state"
    assert (await web.request("POST", path, json={"state": "dispatched"})).status == 401
    bad_token = {"Authorization": "Bearer cop_not-a-real-one"}
    assert (await web.request("POST", path, json={"state": "dispatched"}, headers=bad_token)).status == 401
    reply = await web.request("POST", path, json={"state": "teleported"}, headers=ops)
    assert (reply.status, reply.content_type) == (400, "application/problem+json")
    assert (await web.request("POST", path, json={"state": "dispatched", "colour": 1}, headers=ops)).status == 400
    assert (await web.request("POST", "/api/v1/reports/424242/state", json={"state": "resolved"},
                              headers=ops)).status == 404

    seen: list[dict[str, Any]] = [(await web.get(f"/open311/v2/requests/{rid}.json")).doc[0]]
    steps = [("dispatched", "Équipe voirie prévenue", "2026-12-01T09:00:00+01:00"),
             ("in_progress", None, None), ("resolved", "Trou rebouché", None)]
    for state, note, expected in steps:
        await asyncio.sleep(1.1)  # date-times are to the second: let each step have its own
        body: dict[str, Any] = {"state": state}
        if note:
            body["note"] = note
        if expected:
            body["expected_datetime"] = expected
        reply = await web.request("POST", path, json=body, headers=ops)
        assert reply.status == 200, reply.text
        assert reply.doc["state"] == state and reply.doc["history"][-1]["operator"] == "bernard"
        seen.append((await web.get(f"/open311/v2/requests/{rid}.json")).doc[0])
    assert [s["status"] for s in seen] == ["open", "open", "open", "closed"]
    assert [s["status_notes"] for s in seen] == ["Signalement reçu.", "Équipe voirie prévenue",
                                                 "Intervention en cours.", "Trou rebouché"]
    updated = [datetime.fromisoformat(s["updated_datetime"]) for s in seen]
    assert updated == sorted(updated) and len(set(updated)) == 4  # moves at each step
    assert datetime.fromisoformat(seen[1]["expected_datetime"]) == datetime.fromisoformat("2026-12-01T09:00:00+01:00")
    detail = (await web.get(f"/api/v1/reports/{rid}", headers=ops)).doc
    assert [h["state"] for h in detail["history"]] == ["received", "dispatched", "in_progress", "resolved"]
    listed = (await web.get("/api/v1/reports?state=resolved", headers=ops)).doc["reports"]
    assert [r["service_request_id"] for r in listed] == [rid]


async def test_a_report_about_a_lamp_with_an_open_fault_joins_it(web: Web) -> None:
    ops = await web.add_operator()
    now = now_ms()
    cab = await web.add_cabinet("gw-dijon-0042", DIJON, 47.3300, 5.0500)
    other = await web.add_cabinet("gw-dijon-0043", DIJON, 47.3100, 5.0300)
    await web.upload(cab.gateway.name, [
        sample(0, "lamp-1", now - 120_000, lamp_on=True, power_w=60.0),
        sample(0, "lamp-2", now - 120_000, lamp_on=True, power_w=1.0),
        event(0, "lamp-2", now - 100_000, "lamp_failure", group="rue-a", commanded_pct=100, power_w=1.0),
    ])
    await web.upload(other.gateway.name, [sample(0, "lamp-9", now - 60_000, lamp_on=True, power_w=60.0)])

    # a resident names the lamp: the report is tied to the fault the telemetry already saw
    first_reply = await send(web, service_code="lamp-out", lat="47.3301", long="5.0501",
                             **{"attribute[lamp_id]": "gw-dijon-0042/lamp-2", "attribute[symptom]": "off"})
    first = first_reply.doc
    assert first_reply.status == 201
    rid = first[0]["service_request_id"]
    assert "télégestion" in first[0]["service_notice"]
    # another resident, no lamp number, standing 20 m from that cabinet: attached, not a duplicate
    sent = await send(web, service_code="lamp-out", lat="47.33015", long="5.05022",
                      **{"attribute[symptom]": "flashing"})
    assert sent.status == 201
    second = sent.doc
    assert second[0]["service_request_id"] == rid
    assert "rattaché" in second[0]["service_notice"]
    # each reporter follows with a token of their own
    assert follow_token(sent) != follow_token(first_reply)
    # and a third one naming the lamp again
    _, third = await post(web, service_code="lamp-out", **{"attribute[lamp_id]": "gw-dijon-0042/lamp-2"})
    assert third[0]["service_request_id"] == rid
    detail = (await web.get(f"/api/v1/reports/{rid}", headers=ops)).doc
    assert detail["lamp"] == "gw-dijon-0042/lamp-2" and detail["reports"] == 3
    assert [r["attached"] for r in detail["reporters"]] == [False, True, True]
    # each reporter's own answers, the attached ones' too
    assert [r["attributes"] for r in detail["reporters"]] == [
        {"lamp_id": "gw-dijon-0042/lamp-2", "symptom": "off"}, {"symptom": "flashing"},
        {"lamp_id": "gw-dijon-0042/lamp-2"}]
    [public] = (await web.get(f"/open311/v2/requests/{rid}.json")).doc
    assert public["service_notice"].startswith("Panne détectée par la télégestion")

    # a working lamp of another cabinet is its own request; a lamp-out far from any fault is not attached
    _, fine = await post(web, service_code="lamp-out", **{"attribute[lamp_id]": "gw-dijon-0043/lamp-9"})
    assert fine[0]["service_request_id"] != rid and fine[0]["service_notice"] is None
    _, far = await post(web, service_code="lamp-out", lat="47.3200", long="5.0400")
    assert far[0]["service_request_id"] not in (rid, fine[0]["service_request_id"])
    # a lamp that cabinet does not have is refused
    status, doc = await post(web, service_code="lamp-out", **{"attribute[lamp_id]": "gw-dijon-0042/lamp-77"})
    assert_errors(status, doc, 400, "n'a pas de lampadaire 'lamp-77'")

    # once the request is resolved, a new failure report opens a new request
    assert (await web.request("POST", f"/api/v1/reports/{rid}/state", json={"state": "resolved"},
                              headers=ops)).status == 200
    _, again = await post(web, service_code="lamp-out", **{"attribute[lamp_id]": "gw-dijon-0042/lamp-2"})
    assert again[0]["service_request_id"] != rid
    # reopening the old one while the new one is open would make two: refused
    reply = await web.request("POST", f"/api/v1/reports/{rid}/state", json={"state": "received"}, headers=ops)
    assert reply.status == 409


async def test_only_lamp_reports_join_a_faulty_lamp_every_other_kind_keeps_its_own_request(web: Web) -> None:
    ops = await web.add_operator()
    now = now_ms()
    cab = await web.add_cabinet("gw-dijon-0042", DIJON, 47.3300, 5.0500)
    await web.upload(cab.gateway.name, [
        sample(0, "lamp-2", now - 120_000, lamp_on=True, power_w=1.0),
        event(0, "lamp-2", now - 100_000, "lamp_failure", group="rue-a", commanded_pct=100, power_w=1.0),
    ])
    _, opened = await post(web, service_code="lamp-out", **{"attribute[lamp_id]": "gw-dijon-0042/lamp-2"})
    lamp_rid = opened[0]["service_request_id"]
    assert {s.code for s in SERVICES.values() if s.lamp} == {"lamp-out"}
    joined = 1
    for code, service in SERVICES.items():
        # every kind of report, 20 m from the cabinet whose lamp has an open fault and an open request
        status, doc = await post(web, service_code=code, lat="47.33015", long="5.05022", description=f"about {code}")
        assert status == 201, (code, doc)
        rid = doc[0]["service_request_id"]
        [public] = (await web.get(f"/open311/v2/requests/{rid}.json")).doc
        if service.lamp:
            joined += 1
            assert rid == lamp_rid and "rattaché" in doc[0]["service_notice"], code
            assert public["service_code"] == code
            continue
        assert rid != lamp_rid and doc[0]["service_notice"] is None, code
        assert (public["service_code"], public["description"], public["service_notice"]) == \
            (code, f"about {code}", None)
        detail = (await web.get(f"/api/v1/reports/{rid}", headers=ops)).doc
        assert (detail["lamp"], detail["reports"]) == (None, 1), code
        # the same kind again at the same place: a request of its own too, never merged
        _, again = await post(web, service_code=code, lat="47.33015", long="5.05022")
        assert again[0]["service_request_id"] not in (rid, lamp_rid), code
    lamp_detail = (await web.get(f"/api/v1/reports/{lamp_rid}", headers=ops)).doc
    assert lamp_detail["reports"] == joined and lamp_detail["service_code"] == "lamp-out"
    # the store refuses to tie a report of another kind to a lamp at all
    report = parse_new_report(form(service_code="graffiti"), load_territory())
    with pytest.raises(ValueError, match="graffiti"):
        await web.store.submit_report(report, "hash-x", now, lamp=Lamp("gw-dijon-0042", "lamp-2"))


async def test_a_restored_lamp_has_no_open_fault_left(web: Web) -> None:
    now = now_ms()
    cab = await web.add_cabinet("gw-dijon-0050", DIJON, 47.3300, 5.0500)
    await web.upload(cab.gateway.name, [
        sample(0, "lamp-1", now - 120_000, lamp_on=True, power_w=1.0),
        event(0, "lamp-1", now - 100_000, "lamp_failure"),
        event(0, "lamp-1", now - 50_000, "lamp_restored", "info", cleared="lamp_failure"),
    ])
    assert await web.store.open_lamp_faults() == []
    _, doc = await post(web, service_code="lamp-out", **{"attribute[lamp_id]": "gw-dijon-0050/lamp-1"})
    assert doc[0]["service_notice"] is None


async def _next_event(resp: aiohttp.ClientResponse) -> tuple[str, dict[str, Any]]:
    """The next SSE event (keepalive comments skipped)."""
    while True:
        block = (await resp.content.readuntil(b"\n\n")).decode()
        fields = dict(line.split(": ", 1) for line in block.strip().splitlines() if not line.startswith(":"))
        if "data" in fields:
            return fields["event"], orjson.loads(fields["data"])


async def test_the_reporter_follows_the_report_live(web: Web) -> None:
    ops = await web.add_operator()
    sent = await send(web)
    rid, token = sent.doc[0]["service_request_id"], follow_token(sent)
    someone_else = follow_token(await send(web))

    events = f"{web.url}/open311/v2/requests/{rid}/events"
    async with web.session.get(events) as resp:
        assert resp.status == 401 and (await resp.json())[0]["code"] == 401
    async with web.session.get(events, params={"token": someone_else}) as resp:
        assert resp.status == 403
    async with web.session.get(f"{web.url}/open311/v2/requests/999999/events", params={"token": token}) as resp:
        assert resp.status == 404

    async with web.session.get(events, params={"token": token}) as resp:
        assert resp.status == 200 and resp.content_type == "text/event-stream"
        name, doc = await asyncio.wait_for(_next_event(resp), 30)
        assert (name, doc["service_request_id"], doc["state"], doc["status"]) == ("status", rid, "received", "open")
        for state in ("dispatched", "resolved"):
            reply = await web.request("POST", f"/api/v1/reports/{rid}/state", json={"state": state}, headers=ops)
            assert reply.status == 200
            _, doc = await asyncio.wait_for(_next_event(resp), 30)
            assert doc["state"] == state
        assert doc["status"] == "closed"
    # a bearer header works as well as ?token=
    async with web.session.get(events, headers={"Authorization": f"Bearer {token}"}) as resp:
        _, doc = await asyncio.wait_for(_next_event(resp), 30)
        assert doc["state"] == "resolved"
