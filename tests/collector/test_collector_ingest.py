"""Batch ingest over real HTTP into a real store: stored as sent, idempotent, and every bad
body refused with a problem body and nothing stored."""

from __future__ import annotations

import asyncio
import time

import aiohttp
import orjson
import pytest
from collector_testkit import TS0, Client, Running, assert_problem, batch_body, event, gzip, gzip_bomb, sample

from collector.app import create_app, start
from collector.model import RecordCounts
from collector.store import Store
from collector.tokens import hash_token, new_token


async def test_batch_is_stored_with_the_values_and_timestamps_sent(running: Running) -> None:
    gw, token = await running.add_gateway()
    records = [
        sample(1, "lamp-1", ts_ms=TS0 + 17, level_pct=70, power_w=61.25, lamp_on=True, status="ok", note=None),
        sample(2, "lamp-1", ts_ms=TS0 + 60_017, level_pct=100, power_w=88.0, lamp_on=True, status="ok", note=None),
        event(3, "lamp_failure", "major", "lamp-2", ts_ms=TS0 + 60_500, failures=3),
        sample(4, "meter-1", ts_ms=TS0 + 61_000, volume_m3=1234.567),
    ]
    status, ctype, doc = await running.client.post(batch_body(gw.name, records), token)
    assert (status, ctype) == (200, "application/json")
    assert doc == {"ack_seq": 4, "stored": 4, "duplicates": 0}

    status, _, doc = await running.client.get(f"/api/v1/gateways/{gw.name}/devices/lamp-1/samples")
    assert status == 200
    assert doc["samples"] == [  # newest first, values exactly as sent
        {"seq": 2, "ts_ms": TS0 + 60_017,
         "values": {"level_pct": 100, "power_w": 88.0, "lamp_on": True, "status": "ok", "note": None}},
        {"seq": 1, "ts_ms": TS0 + 17,
         "values": {"level_pct": 70, "power_w": 61.25, "lamp_on": True, "status": "ok", "note": None}},
    ]
    status, _, doc = await running.client.get(f"/api/v1/gateways/{gw.name}/events")
    assert doc["events"] == [{"seq": 3, "device": "lamp-2", "ts_ms": TS0 + 60_500, "code": "lamp_failure",
                              "severity": "major", "detail": {"failures": 3}}]
    status, _, doc = await running.client.get(f"/api/v1/gateways/{gw.name}/devices/meter-1/samples?limit=1")
    assert doc["samples"] == [{"seq": 4, "ts_ms": TS0 + 61_000, "values": {"volume_m3": 1234.567}}]


async def test_a_plain_uncompressed_batch_is_accepted_too(running: Running) -> None:
    gw, token = await running.add_gateway()
    status, _, doc = await running.client.post(batch_body(gw.name, [sample(1)]), token, gzipped=False)
    assert (status, doc) == (200, {"ack_seq": 1, "stored": 1, "duplicates": 0})


async def test_resent_batch_stores_nothing_twice(running: Running) -> None:
    gw, token = await running.add_gateway()
    first = [sample(s) for s in range(10, 20)] + [event(20)]
    assert (await running.client.post(batch_body(gw.name, first), token))[2] == \
        {"ack_seq": 20, "stored": 11, "duplicates": 0}
    # the ack was lost: the gateway sends the same batch again
    assert (await running.client.post(batch_body(gw.name, first), token))[2] == \
        {"ack_seq": 20, "stored": 0, "duplicates": 11}
    # and then a batch that overlaps the first one
    overlap = [sample(s) for s in range(15, 25)]
    assert (await running.client.post(batch_body(gw.name, overlap), token))[2] == \
        {"ack_seq": 24, "stored": 4, "duplicates": 6}
    assert await running.store.count_records(gw) == RecordCounts(samples=14, events=1)
    _, _, doc = await running.client.get(f"/api/v1/gateways/{gw.name}/devices/lamp-1/samples?limit=1000")
    assert [s["seq"] for s in doc["samples"]] == [24, 23, 22, 21, *range(19, 9, -1)]  # 20 is the event


async def test_the_same_seq_of_two_gateways_are_two_records(running: Running) -> None:
    a, token_a = await running.add_gateway("gw-a")
    b, token_b = await running.add_gateway("gw-b")
    assert (await running.client.post(batch_body(a.name, [sample(1)]), token_a))[2]["stored"] == 1
    assert (await running.client.post(batch_body(b.name, [sample(1)]), token_b))[2]["stored"] == 1
    assert await running.store.count_records() == RecordCounts(2, 0)


@pytest.fixture(scope="module")
def bomb() -> bytes:
    return gzip_bomb()


BAD_SCHEMA = [
    ({"v": 2, "gateway": "gw-dijon-0001", "records": []}, "/v"),
    ({"v": 1, "gateway": "gw-dijon-0001"}, "/records"),
    ({"v": 1, "gateway": "gw-dijon-0001", "records": [{"kind": "sample"}]}, "/records/0/seq"),
    ({"v": 1, "gateway": "gw-dijon-0001", "records": [sample(1), {**sample(2), "kind": "blob"}]}, "/records/1/kind"),
    ({"v": 1, "gateway": "gw-dijon-0001", "records": [{**sample(1), "values": []}]}, "/records/0/values"),
    ({"v": 1, "gateway": "gw-dijon-0001", "records": [{**sample(1), "ts_ms": 12}]}, "/records/0/ts_ms"),
    ({"v": 1, "gateway": "gw-dijon-0001", "records": [sample(5), sample(4)]}, "/records/1/seq"),
    ({"v": 1, "gateway": "gw-dijon-0001", "records": [event(1, severity="apocalyptic")]}, "/records/0/severity"),
    ({"v": 1, "gateway": "gw-dijon-0001", "records": []}, "/records"),
]


@pytest.mark.parametrize(("doc", "pointer"), BAD_SCHEMA)
async def test_wrong_schema_is_refused_with_a_pointer(running: Running, doc: dict[str, object], pointer: str) -> None:
    _, token = await running.add_gateway()
    status, ctype, problem = await running.client.post(orjson.dumps(doc), token)
    assert_problem(status, ctype, problem, 400)
    assert problem["pointer"] == pointer
    assert await running.store.count_records() == RecordCounts(0, 0)


@pytest.mark.parametrize("body", [b"", b"not json", b'{"v": 1, "gateway": ', b"[1, 2]", b"\xff\xfe"])
async def test_a_body_that_is_not_a_json_object_is_refused(running: Running, body: bytes) -> None:
    _, token = await running.add_gateway()
    status, ctype, problem = await running.client.post(body, token)
    assert_problem(status, ctype, problem, 400)
    assert await running.store.count_records() == RecordCounts(0, 0)


async def test_one_bad_record_refuses_the_whole_batch(running: Running) -> None:
    gw, token = await running.add_gateway()
    records = [sample(s) for s in range(1, 100)] + [{**sample(100), "values": {"x": [1]}}]
    status, ctype, problem = await running.client.post(batch_body(gw.name, records), token)
    assert_problem(status, ctype, problem, 400)
    assert problem["pointer"] == "/records/99/values/x"
    assert await running.store.count_records() == RecordCounts(0, 0)


async def test_too_large_a_body_is_refused(running: Running) -> None:
    gw, token = await running.add_gateway()  # the fixture's limit is 1,000,000 bytes
    records = [sample(s, device="d" * 100) for s in range(1, 20_000)]
    body = batch_body(gw.name, records)
    assert len(body) > 1_000_000
    for gzipped in (True, False):
        status, ctype, problem = await running.client.post(body, token, gzipped=gzipped)
        assert_problem(status, ctype, problem, 413)
        assert problem["limit"] == 1_000_000
    assert await running.store.count_records() == RecordCounts(0, 0)


async def test_gzip_bomb_is_refused_quickly(running: Running, bomb: bytes) -> None:
    _, token = await running.add_gateway()
    started = time.monotonic()
    status, ctype, problem = await running.client.post(bomb, token, gzipped=False,
                                                       headers={"Content-Encoding": "gzip"})
    assert_problem(status, ctype, problem, 413)
    assert time.monotonic() - started < 10  # inflating the whole GiB would take far longer
    assert await running.store.count_records() == RecordCounts(0, 0)


@pytest.mark.parametrize(
    "body",
    [
        b"\x1f\x8b\x08\x00garbage-after-a-gzip-magic",
        gzip(batch_body("gw-dijon-0001", [sample(1)]))[:-12],  # truncated
        gzip(batch_body("gw-dijon-0001", [sample(1)])) + b"trailing",
        b"plain text, not gzip at all",
    ],
    ids=["garbage", "truncated", "trailing-bytes", "not-gzip"],
)
async def test_bad_gzip_is_refused(running: Running, body: bytes) -> None:
    _, token = await running.add_gateway()
    status, ctype, problem = await running.client.post(body, token, gzipped=False,
                                                       headers={"Content-Encoding": "gzip"})
    assert_problem(status, ctype, problem, 400)
    assert problem["type"].endswith(":bad-encoding")
    assert await running.store.count_records() == RecordCounts(0, 0)


async def test_unknown_encoding_and_media_type_are_refused(running: Running) -> None:
    gw, token = await running.add_gateway()
    body = batch_body(gw.name, [sample(1)])
    status, ctype, problem = await running.client.post(body, token, gzipped=False, headers={"Content-Encoding": "br"})
    assert_problem(status, ctype, problem, 415)
    status, ctype, problem = await running.client.post(body, token, headers={"Content-Type": "text/csv"})
    assert_problem(status, ctype, problem, 415)
    assert await running.store.count_records() == RecordCounts(0, 0)


@pytest.mark.parametrize("token", [None, "", "cgw_not-a-real-token", "Basic dXNlcjpwYXNz"])
async def test_unknown_or_missing_token_is_refused(running: Running, token: str | None) -> None:
    gw, _ = await running.add_gateway()
    headers = {"Authorization": token} if token and token.startswith("Basic") else None
    status, ctype, problem = await running.client.post(
        batch_body(gw.name, [sample(1)]), None if headers else token, headers=headers)
    assert_problem(status, ctype, problem, 401)
    assert await running.store.count_records() == RecordCounts(0, 0)
    assert (await running.store.gateways())[0].last_seen_ms is None


async def test_a_gateway_cannot_send_another_gateways_data(running: Running) -> None:
    _, token_a = await running.add_gateway("gw-a")
    b, _ = await running.add_gateway("gw-b")
    status, ctype, problem = await running.client.post(batch_body(b.name, [sample(1)]), token_a)
    assert_problem(status, ctype, problem, 403)
    assert problem["pointer"] == "/gateway"
    assert await running.store.count_records() == RecordCounts(0, 0)
    assert all(info.last_seen_ms is None for info in await running.store.gateways())


async def test_every_error_route_answers_a_problem_body(running: Running) -> None:
    session, url = running.client.session, running.client.url
    for method, path, expected in [
        ("GET", "/nowhere", 404), ("GET", "/api/v1/batches", 405), ("DELETE", "/api/v1/gateways", 405),
        ("GET", "/api/v1/gateways/ghost/events", 404),
        ("GET", "/api/v1/gateways/ghost/devices/lamp-1/samples", 404),
    ]:
        async with session.request(method, url + path) as resp:
            assert_problem(resp.status, resp.content_type, orjson.loads(await resp.read()), expected)
            if expected == 405:
                assert "Allow" in resp.headers


async def test_read_limit_is_validated(running: Running) -> None:
    gw, _ = await running.add_gateway()
    for bad in ("0", "-1", "ten", "1000000"):
        status, ctype, problem = await running.client.get(f"/api/v1/gateways/{gw.name}/events?limit={bad}")
        assert_problem(status, ctype, problem, 400)
        assert problem["parameter"] == "limit"


async def test_gateway_list_tells_when_each_gateway_was_last_seen(running: Running) -> None:
    a, token_a = await running.add_gateway("gw-a")
    await running.add_gateway("gw-b", "21617")
    before = time.time_ns() // 1_000_000
    await running.client.post(batch_body(a.name, [sample(7), sample(9)]), token_a)
    status, _, doc = await running.client.get("/api/v1/gateways")
    assert status == 200
    by_name = {g["name"]: g for g in doc["gateways"]}
    assert by_name["gw-a"]["last_seq"] == 9
    assert before <= by_name["gw-a"]["last_seen_ms"] <= time.time_ns() // 1_000_000
    assert by_name["gw-b"] | {"created_ms": 0} == {
        "name": "gw-b", "commune": "21617", "cabinet": None, "lat": None, "lon": None,
        "created_ms": 0, "last_seen_ms": None, "last_seq": None}


async def test_concurrent_batches_of_many_gateways_are_all_stored_once(running: Running) -> None:
    gws = [await running.add_gateway(f"gw-{i}") for i in range(8)]

    async def upload(name: str, token: str) -> None:
        for first in range(1, 2001, 500):
            body = batch_body(name, [sample(s, device=f"lamp-{s % 7}") for s in range(first, first + 500)])
            # each batch twice, concurrently: the store must serialise them
            replies = await asyncio.gather(running.client.post(body, token), running.client.post(body, token))
            assert sorted(r[2]["stored"] for r in replies) == [0, 500]

    await asyncio.gather(*(upload(g.name, t) for g, t in gws))
    assert await running.store.count_records() == RecordCounts(8 * 2000, 0)


NUL_RECORDS = [  # one U+0000 anywhere a string goes: PostgreSQL cannot store it, so both stores refuse it
    (sample(1, device="lamp\x001"), "/records/0/device"),
    (event(1, code="door\x00open"), "/records/0/code"),
    (event(1, note="a\x00b"), "/records/0/detail/note"),
    (event(1, nested={"list": ["ok", "b\x00d"]}), "/records/0/detail/nested/list/1"),
    (event(1, **{"k\x00ey": 1}), "/records/0/detail"),
    (sample(1, **{"power\x00_w": 61.5}), "/records/0/values"),
    (sample(1, meter_id="05\x0000"), "/records/0/values/meter_id"),
]


@pytest.mark.parametrize(("record", "pointer"), NUL_RECORDS)
async def test_a_nul_character_in_any_string_is_refused_with_a_pointer(
    running: Running, record: dict[str, object], pointer: str
) -> None:
    gw, token = await running.add_gateway()
    records = [sample(s) for s in range(1, 5)] + [{**record, "seq": 5}]
    pointer = pointer.replace("/records/0/", "/records/4/")
    for _ in range(2):  # a resend is refused the same way, never a 500
        status, ctype, problem = await running.client.post(batch_body(gw.name, records), token)
        assert_problem(status, ctype, problem, 400)
        assert problem["pointer"] == pointer and "U+0000" in problem["detail"], problem
    assert await running.store.count_records() == RecordCounts(0, 0)
    # a backslash followed by "u0000" is no NUL: taken as it is
    status, _, doc = await running.client.post(batch_body(gw.name, [sample(1, note="C:\\u0000")]), token)
    assert status == 200, doc


async def test_a_record_dated_in_the_future_is_refused_with_a_pointer_and_the_collectors_time(
    running: Running,
) -> None:
    gw, token = await running.add_gateway()
    now = int(time.time() * 1000)
    ok = now + 60_000  # a minute ahead: within the default tolerance of 5 min
    records = [sample(1, ts_ms=now), sample(2, ts_ms=ok), sample(3, ts_ms=4_070_908_800_000)]  # 2099-01-01
    status, ctype, problem = await running.client.post(batch_body(gw.name, records), token)
    assert_problem(status, ctype, problem, 400)
    assert problem["type"].endswith(":future-timestamp") and problem["pointer"] == "/records/2/ts_ms"
    assert problem["ts_ms"] == 4_070_908_800_000 and abs(problem["collector_ms"] - now) < 60_000
    assert await running.store.count_records() == RecordCounts(0, 0)
    status, _, doc = await running.client.post(batch_body(gw.name, records[:2]), token)
    assert (status, doc["stored"]) == (200, 2)


async def test_the_future_tolerance_is_configurable(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CITYGATE_MAX_FUTURE_S", "10")
    runner, url = await start(create_app(store), "127.0.0.1", 0)
    try:
        async with aiohttp.ClientSession() as session:
            client = Client(url, session)
            token = new_token()
            gw = await store.add_gateway("gw-1", "21231", hash_token(token))
            now = int(time.time() * 1000)
            status, _, problem = await client.post(batch_body(gw.name, [sample(1, ts_ms=now + 60_000)]), token)
            assert status == 400 and problem["pointer"] == "/records/0/ts_ms", problem
            status, _, _ = await client.post(batch_body(gw.name, [sample(1, ts_ms=now + 1_000)]), token)
            assert status == 200
    finally:
        await runner.cleanup()
    monkeypatch.setenv("CITYGATE_MAX_FUTURE_S", "soon")
    with pytest.raises(ValueError, match="CITYGATE_MAX_FUTURE_S"):
        create_app(store)
