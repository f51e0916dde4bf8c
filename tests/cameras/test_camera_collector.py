"""Camera health at the collector, from what the real cameras bus emitted, on both stores and a real
server with operator login: per cabinet and commune, open faults, firmware, drift, places; operators
only, and nothing of it (ids, places, credentials) in open data or NGSI."""

from __future__ import annotations

import secrets
import zlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest

from collector.app import create_app, start
from collector.store import Store
from collector.tokens import hash_token, new_token
from drivers.model import Event, Record, Sample
from tests.cameras.camkit import PASSWORD, Cabinet, cabinet

GW = "gw-cams-jaures"
TOKEN = new_token()
COMMUNE = "21231"


def wire(records: list[Record], first_seq: int = 1) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for seq, r in enumerate(records, first_seq):
        if isinstance(r, Sample):
            out.append({"seq": seq, "kind": "sample", "device": r.device, "ts_ms": r.ts_ms, "values": dict(r.values)})
        elif isinstance(r, Event):
            out.append({"seq": seq, "kind": "event", "device": r.device, "ts_ms": r.ts_ms, "code": r.code,
                        "severity": str(r.severity), "detail": dict(r.detail)})
    return out


async def faulty_cabinet(tmp_path: Path) -> Cabinet:
    """Three cameras: one tampered with and its stream refused, one drifting, one gone dark."""
    async with cabinet(tmp_path, 3) as cab:
        await cab.until(lambda: all(cab.samples(c.id) for c in cab.cams)
                        and all(c.requests.get("PullMessages") for c in cab.cams))
        one, two, three = cab.cams
        one.raise_fault("tampering")
        one.rtsp_status = 503
        two.drift_s = 30.0
        await three.go_offline()
        await cab.until(lambda: cab.events("camera_tampering") and cab.events("camera_stream_unavailable")
                        and cab.events("camera_clock_drift") and cab.events("camera_unreachable"))
        await cab.until(lambda: len(cab.samples("cam-2")) >= 3)  # a sample with the drift in it
        return cab


@pytest.fixture
async def served(store: Store) -> AsyncIterator[tuple[str, aiohttp.ClientSession, Store]]:
    runner, url = await start(create_app(store, operator_login=True), "127.0.0.1", 0)
    try:
        async with aiohttp.ClientSession() as session:
            yield url, session, store
    finally:
        await runner.cleanup()


async def _upload(url: str, session: aiohttp.ClientSession, store: Store, records: list[Record],
                  first_seq: int = 1) -> None:
    if await store.gateway(GW) is None:
        await store.add_gateway(GW, COMMUNE, hash_token(TOKEN), cabinet="ARM-042")
    body = orjson.dumps({"v": 1, "gateway": GW, "commune": COMMUNE, "records": wire(records, first_seq)})
    c = zlib.compressobj(6, wbits=31)
    async with session.post(f"{url}/api/v1/batches", data=c.compress(body) + c.flush(), headers={
            "Content-Type": "application/json", "Content-Encoding": "gzip", "Authorization": f"Bearer {TOKEN}"}) as r:
        assert r.status == 200, await r.text()


async def test_operators_see_each_cameras_health_and_place_and_the_public_sees_none_of_it(
        tmp_path: Path, served: tuple[str, aiohttp.ClientSession, Store]) -> None:
    url, session, store = served
    cab = await faulty_cabinet(tmp_path)
    await _upload(url, session, store, cab.records)
    op = "cop_" + secrets.token_urlsafe(24)
    await store.add_operator("alice", hash_token(op), 0)
    auth = {"Authorization": f"Bearer {op}"}

    async with session.get(f"{url}/api/v1/cameras") as r:
        assert r.status == 401  # operators only
    async with session.put(f"{url}/api/v1/cameras/{GW}/cam-1/site", json={"location": "x"}) as r:
        assert r.status == 401
    place = {"location": "Carrefour Jaurès, mât 3", "lat": 47.3215, "lon": 5.0412}
    async with session.put(f"{url}/api/v1/cameras/{GW}/cam-1/site", json=place, headers=auth) as r:
        assert r.status == 200, await r.text()
    async with session.put(f"{url}/api/v1/cameras/{GW}/cam-1/site", json={"location": ""}, headers=auth) as r:
        assert r.status == 400
    async with session.put(f"{url}/api/v1/cameras/{GW}/cam-1/site", json={"location": "x", "lat": 91}, headers=auth) as r:
        assert r.status == 400 and "lat" in await r.text()
    async with session.put(f"{url}/api/v1/cameras/gw-none/cam-1/site", json={"location": "x"}, headers=auth) as r:
        assert r.status == 404
    async with session.get(f"{url}/api/v1/cameras?commune=99999", headers=auth) as r:
        assert r.status == 404
    async with session.get(f"{url}/api/v1/cameras?commune={COMMUNE}", headers=auth) as r:
        assert r.status == 200
        text = await r.text()
    doc = orjson.loads(text)
    cams = {c["device"]: c for c in doc["cameras"]}
    assert {k: c["status"] for k, c in cams.items()} == {"cam-1": "faulty", "cam-2": "faulty", "cam-3": "unreachable"}
    assert {f["code"] for f in cams["cam-1"]["faults"]} == {"camera_tampering", "camera_stream_unavailable"}
    refused = next(f for f in cams["cam-1"]["faults"] if f["code"] == "camera_stream_unavailable")
    assert (refused["stream"], refused["rtsp_status"]) == ("/stream1", 503)
    (drift,) = cams["cam-2"]["faults"]
    assert drift["code"] == "camera_clock_drift" and 28 <= drift["drift_s"] <= 32
    assert 28 <= cams["cam-2"]["clock_drift_s"] <= 32
    assert cams["cam-1"]["firmware"] == "V5.7.3 build 240612" and cams["cam-1"]["cabinet"] == "ARM-042"
    assert cams["cam-1"]["location"] == {"text": place["location"], "lat": place["lat"], "lon": place["lon"]}
    assert cams["cam-2"]["location"] is None
    assert doc["cabinets"] == [{"gateway": GW, "commune": COMMUNE, "cabinet": "ARM-042", "cameras": 3,
                                "dark_since_ms": None}]
    assert doc["communes"] == [{"commune": COMMUNE, "cameras": 3, "ok": 0, "faulty": 2, "unreachable": 1, "dark": 0}]
    assert PASSWORD not in text and "rtsp://" not in text

    # the public: open data and NGSI-LD answer without a login, and know nothing of cameras
    for path in ("/opendata/v1/communes/daily.json", "/opendata/v1/communes/daily.csv", "/ngsi-ld/v1/entities",
                 "/ngsi-ld/v1/types"):
        async with session.get(url + path, headers={"Accept": "application/json"}) as r:
            body = await r.text()
        assert r.status in (200, 400), (path, r.status)
        for secret in ("cam-1", "Jaurès, mât", "camera", PASSWORD):
            assert secret not in body, (path, secret)
    gateway = await store.gateway(GW)
    assert gateway is not None
    events = await store.recent_events(gateway, 10_000)
    assert {"camera_tampering", "camera_unreachable", "camera_identified"} <= {e.code for e in events}
    stored = repr(events)
    assert PASSWORD not in stored and "watch" not in stored and "Carrefour" not in stored


async def test_a_cabinet_gone_dark_shows_its_cameras_dark_then_back(
        tmp_path: Path, served: tuple[str, aiohttp.ClientSession, Store]) -> None:
    url, session, store = served
    async with cabinet(tmp_path, 2) as cab:
        await cab.until(lambda: all(cab.samples(c.id) for c in cab.cams))
        for cam in cab.cams:
            await cam.go_offline()
        await cab.until(lambda: cab.events("cameras_dark"))
        dark = list(cab.records)
        await cab.cams[0].go_online()
        first = cab.cams[0].id
        # the cabinet's light comes back with its first camera, and that camera's sample says it answers
        # (the page's status reads its newest sample): both before what is uploaded
        await cab.until(lambda: cab.events("cameras_dark_cleared")
                        and cab.samples(first)[-1].values.get("reachable") is True)
        back = list(cab.records)
    await _upload(url, session, store, dark)
    op = "cop_" + secrets.token_urlsafe(24)
    await store.add_operator("bob", hash_token(op), 0)
    auth = {"Authorization": f"Bearer {op}"}
    async with session.get(f"{url}/api/v1/cameras?gateway={GW}", headers=auth) as r:
        doc = await r.json()
    assert {c["status"] for c in doc["cameras"]} == {"dark"} and doc["cabinets"][0]["dark_since_ms"] is not None
    assert doc["communes"][0]["dark"] == 2
    await _upload(url, session, store, back[len(dark):], first_seq=len(dark) + 1)
    async with session.get(f"{url}/api/v1/cameras?gateway={GW}", headers=auth) as r:
        doc = await r.json()
    assert doc["cabinets"][0]["dark_since_ms"] is None
    assert {c["device"]: c["status"] for c in doc["cameras"]}["cam-1"] == "ok"
