"""Residents' reports as the operators' work queue, on a real collector and both stores: listing by
state, commune, service and assignee with paging; assigning; only the moves the lifecycle allows; a
public note without a move; a change someone else made meanwhile refused; every action audited; a
lamp report tied to its lamp's fault when the telemetry sees it, and closed when the lamp is restored."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from web_testkit import Web, event, now_ms, sample

DIJON, QUETIGNY = "21231", "21515"


def form(**fields: str) -> dict[str, str]:
    base = {"jurisdiction_id": DIJON, "service_code": "pothole", "lat": "47.3221", "long": "5.0415",
            "description": "Trou devant le 12 rue de la Liberté"}
    base.update(fields)
    return base


async def report(web: Web, **fields: str) -> int:
    reply = await web.request("POST", "/open311/v2/requests.json", data=form(**fields))
    assert reply.status == 201, reply.text
    return int(reply.doc[0]["service_request_id"])


async def move(web: Web, ops: dict[str, str], rid: int, **body: Any) -> Any:
    return await web.request("POST", f"/api/v1/reports/{rid}/state", json=body, headers=ops)


async def until(check: Callable[[], Awaitable[bool]], timeout: float = 30.0) -> None:
    """Wait for a condition the collector reaches by itself (its lamp follower), never a fixed sleep."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not await check():
        assert asyncio.get_running_loop().time() < deadline, "condition not reached in time"
        await asyncio.sleep(0.2)


async def test_the_queue_lists_by_state_commune_service_and_assignee_with_paging(web: Web) -> None:
    ops = await web.add_operator("alice")
    await web.add_operator("bruno")
    a = await report(web)
    b = await report(web, service_code="graffiti")
    c = await report(web, jurisdiction_id=QUETIGNY, lat="47.3131", long="5.1064")
    d = await report(web, service_code="graffiti")
    assert (await move(web, ops, b, state="dispatched")).status == 200
    assert (await web.request("POST", f"/api/v1/reports/{d}/assign", json={"operator": "bruno"},
                              headers=ops)).status == 200
    assert (await web.request("POST", f"/api/v1/reports/{a}/assign", json={"operator": "alice"},
                              headers=ops)).status == 200

    async def ids(query: str) -> tuple[list[int], int]:
        reply = await web.get("/api/v1/reports?" + query, headers=ops)
        assert reply.status == 200, reply.text
        return [int(r["service_request_id"]) for r in reply.doc["reports"]], reply.doc["total"]

    assert await ids("") == ([d, c, b, a], 4)  # newest first
    assert await ids("state=received") == ([d, c, a], 3)
    assert await ids("state=dispatched,in_progress") == ([b], 1)
    assert await ids(f"commune={QUETIGNY}") == ([c], 1)
    assert await ids(f"commune={DIJON}&service=graffiti") == ([d, b], 2)
    assert await ids("assigned=bruno") == ([d], 1)
    assert await ids("assigned=me") == ([a], 1)  # the operator asking: alice
    assert await ids("assigned=none") == ([c, b], 2)
    # pages: the total stays the whole selection's
    assert await ids("limit=2") == ([d, c], 4)
    assert await ids("limit=2&offset=2") == ([b, a], 4)
    assert await ids("limit=2&offset=4") == ([], 4)
    for query, parameter in (("state=lost", "state"), ("service=teleport", "service"), ("limit=0", "limit"),
                             ("offset=-1", "offset")):
        reply = await web.get("/api/v1/reports?" + query, headers=ops)
        assert (reply.status, reply.content_type) == (400, "application/problem+json"), query
        assert reply.doc["parameter"] == parameter
    assert (await web.get("/api/v1/reports?commune=Lyon", headers=ops)).status == 404
    # an operator that does not exist cannot be given work; nor can a report be assigned without a login
    reply = await web.request("POST", f"/api/v1/reports/{a}/assign", json={"operator": "zorro"}, headers=ops)
    assert (reply.status, reply.doc["type"]) == (404, "urn:citygate:problem:unknown-operator")
    assert (await web.request("POST", f"/api/v1/reports/{a}/assign", json={"operator": "alice"})).status == 401
    reply = await web.request("POST", f"/api/v1/reports/{a}/assign", json={"operator": None}, headers=ops)
    assert reply.status == 200 and reply.doc["assigned_to"] is None


async def test_only_the_lifecycle_moves_are_allowed_and_each_is_audited(web: Web) -> None:
    ops = await web.add_operator("alice")
    rid = await report(web)
    detail = (await web.get(f"/api/v1/reports/{rid}", headers=ops)).doc
    assert detail["next_states"] == ["dispatched", "in_progress", "resolved"]
    # in_progress cannot go back to received; a received report is not "received" again without a note
    assert (await move(web, ops, rid, state="in_progress")).status == 200
    reply = await move(web, ops, rid, state="received")
    assert (reply.status, reply.doc["type"]) == (409, "urn:citygate:problem:report-state")
    assert "in_progress" in reply.doc["detail"] and reply.doc["state"] == "in_progress"
    assert (await move(web, ops, rid, state="in_progress")).status == 409
    # the public note alone, staying in its state: the resident reads it
    reply = await move(web, ops, rid, state="in_progress", note="Pièce commandée, pose jeudi")
    assert reply.status == 200, reply.text
    [public] = (await web.get(f"/open311/v2/requests/{rid}.json")).doc
    assert (public["status"], public["status_notes"]) == ("open", "Pièce commandée, pose jeudi")
    # a move decided on a state that has changed meanwhile (another operator) is refused
    reply = await move(web, ops, rid, state="resolved", from_state="dispatched")
    assert reply.status == 409 and "no longer dispatched" in reply.doc["detail"]
    reply = await move(web, ops, rid, state="resolved", from_state="in_progress", note="Réparé")
    assert reply.status == 200 and reply.doc["next_states"] == ["received"]
    [public] = (await web.get(f"/open311/v2/requests/{rid}.json")).doc
    assert (public["status"], public["status_notes"]) == ("closed", "Réparé")
    # reopened
    assert (await move(web, ops, rid, state="received")).status == 200
    history = (await web.get(f"/api/v1/reports/{rid}", headers=ops)).doc["history"]
    assert [(h["state"], h["operator"]) for h in history] == [
        ("received", None), ("in_progress", "alice"), ("in_progress", "alice"), ("resolved", "alice"),
        ("received", "alice")]
    audit = [(a.actor, a.action, a.target, a.detail) for a in reversed(await web.store.audit_log(50))
             if a.target == f"report {rid}"]
    assert audit == [
        ("operator:alice", "report.state", f"report {rid}", "received -> in_progress"),
        ("operator:alice", "report.note", f"report {rid}", "in_progress -> in_progress: Pièce commandée, pose jeudi"),
        ("operator:alice", "report.state", f"report {rid}", "in_progress -> resolved: Réparé"),
        ("operator:alice", "report.state", f"report {rid}", "resolved -> received"),
    ]
    # refused moves left no trace
    assert len(history) == 5


async def test_two_operators_moving_one_report_at_once_make_one_move(web: Web) -> None:
    ops_a = await web.add_operator("alice")
    ops_b = await web.add_operator("bruno")
    rid = await report(web)
    replies = await asyncio.gather(move(web, ops_a, rid, state="dispatched", from_state="received"),
                                   move(web, ops_b, rid, state="resolved", from_state="received"))
    assert sorted(r.status for r in replies) == [200, 409]
    history = (await web.get(f"/api/v1/reports/{rid}", headers=ops_a)).doc["history"]
    assert len(history) == 2


async def test_a_lamp_report_follows_its_lamp_fault_and_closes_when_the_lamp_is_restored(web: Web) -> None:
    ops = await web.add_operator()
    now = now_ms()
    cab = await web.add_cabinet("gw-dijon-0042", DIJON, 47.3300, 5.0500)
    await web.upload(cab.gateway.name, [sample(0, "lamp-2", now - 120_000, lamp_on=True, power_w=60.0)])
    # a resident reports the lamp before the telemetry sees anything: no fault tied yet
    named = await report(web, service_code="lamp-out", lat="", long="", address_string="Place Darcy",
                         **{"attribute[lamp_id]": "gw-dijon-0042/lamp-2"})
    # another one reports a lamp-out nearby, without a number, about the other lamp of the cabinet
    placed = await report(web, service_code="lamp-out", lat="47.33012", long="5.05015")
    # an unrelated pothole is never tied to a lamp
    pothole = await report(web, lat="47.33012", long="5.05015")
    detail = (await web.get(f"/api/v1/reports/{named}", headers=ops)).doc
    assert (detail["lamp"], detail["fault_since_ms"], detail["lamp_fault"]) == (
        "gw-dijon-0042/lamp-2", None, {"open": False, "since_ms": None})

    # the telemetry sees lamp-2 and lamp-3 fail: each report is tied to its fault, by number and by place
    failed_at = now - 60_000
    await web.upload(cab.gateway.name, [
        event(0, "lamp-2", failed_at, "lamp_failure", commanded_pct=100, power_w=1.0),
    ])

    async def tied() -> bool:
        doc = (await web.get(f"/api/v1/reports/{named}", headers=ops)).doc
        return bool(doc["fault_since_ms"] == failed_at)

    await until(tied)
    await web.upload(cab.gateway.name, [
        event(0, "lamp-3", failed_at + 1000, "lamp_failure", commanded_pct=100, power_w=1.0),
    ])

    async def placed_tied() -> bool:
        doc = (await web.get(f"/api/v1/reports/{placed}", headers=ops)).doc
        return bool(doc["lamp"] == "gw-dijon-0042/lamp-3")

    await until(placed_tied)
    [public] = (await web.get(f"/open311/v2/requests/{named}.json")).doc
    assert public["service_notice"].startswith("Panne détectée par la télégestion")
    assert (await move(web, ops, named, state="dispatched", note="Équipe prévenue")).status == 200

    # the crew changes the lamp: the telemetry sees it restored, the request closes by itself
    await web.upload(cab.gateway.name, [
        event(0, "lamp-2", now - 10_000, "lamp_restored", "info", cleared="lamp_failure"),
    ])

    async def closed() -> bool:
        [doc] = (await web.get(f"/open311/v2/requests/{named}.json")).doc
        return bool(doc["status"] == "closed")

    await until(closed)
    [public] = (await web.get(f"/open311/v2/requests/{named}.json")).doc
    assert public["status_notes"] == "Lampadaire réparé : la télégestion le voit de nouveau fonctionner."
    [english] = (await web.get(f"/open311/v2/requests/{named}.json?lang=en")).doc
    assert english["status_notes"] == "Lamp repaired: the remote monitoring sees it working again."
    history = (await web.get(f"/api/v1/reports/{named}", headers=ops)).doc["history"]
    assert [(h["state"], h["operator"]) for h in history][-1] == ("resolved", None)
    audit = {(a.actor, a.action) for a in await web.store.audit_log(50) if a.target == f"report {named}"}
    assert {("collector", "report.link"), ("collector", "report.state")} <= audit
    # lamp-3 still out: its report stays open; the pothole never moved
    for rid, status in ((placed, "open"), (pothole, "open")):
        [doc] = (await web.get(f"/open311/v2/requests/{rid}.json")).doc
        assert doc["status"] == status
    assert (await web.get(f"/api/v1/reports/{pothole}", headers=ops)).doc["lamp"] is None
