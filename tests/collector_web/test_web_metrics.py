"""/metrics on a real collector and both stores: the ingest counters, the batch latency histogram
and the online gauge move with what is posted; store errors are counted; each app has its own registry."""

from __future__ import annotations

import asyncio
import sqlite3

import aiohttp
import orjson
from prometheus_client.parser import text_string_to_metric_families
from web_testkit import Web, event, now_ms, sample

from collector.app import create_app, start
from collector.online import UPLOAD_WINDOW_MS
from collector.store import Store
from tests.store_testkit import pg_execute


async def scrape(web: Web) -> dict[str, float]:
    reply = await web.get("/metrics")
    assert reply.status == 200 and reply.content_type == "text/plain"
    out: dict[str, float] = {}
    for family in text_string_to_metric_families(reply.text):
        for s in family.samples:
            labels = ",".join(f"{k}={v}" for k, v in sorted(s.labels.items()))
            out[f"{s.name}{{{labels}}}" if labels else s.name] = s.value
    return out


async def test_ingest_counters_latency_and_online_gauge_follow_the_batches(web: Web) -> None:
    before = await scrape(web)
    assert before["citygate_ingest_batches_total"] == 0
    assert before["citygate_gateways_online"] == 0
    a = await web.add_cabinet("gw-a", "21231", 47.32, 5.04)
    await web.add_cabinet("gw-b", "21515", 47.31, 5.11)
    t = now_ms() - 10_000
    await web.upload(a.gateway.name, [sample(0, "lamp-1", t, lamp_on=True), sample(0, "lamp-2", t, lamp_on=True),
                                      event(0, "lamp-2", t + 1, "lamp_failure")])
    await web.upload(a.gateway.name, [sample(0, "lamp-1", t + 5000, lamp_on=True)])
    m = await scrape(web)
    assert m["citygate_ingest_batches_total"] == 2
    assert m["citygate_ingest_records_total{kind=sample}"] == 3
    assert m["citygate_ingest_records_total{kind=event}"] == 1
    assert m["citygate_ingest_stored_records_total"] == 4
    assert m["citygate_ingest_batch_seconds_count"] == 2
    assert m["citygate_ingest_batch_seconds_sum"] > 0
    assert m["citygate_gateways"] == 2 and m["citygate_gateways_online"] == 1  # gw-b never sent anything

    # a refused batch is counted as refused, with its status, and not as a stored one
    async with web.session.post(f"{web.url}/api/v1/batches", data=b"{}",
                                headers={"Authorization": "Bearer cgw_wrong", "Content-Type": "application/json"}):
        pass
    m = await scrape(web)
    assert m["citygate_ingest_refused_batches_total{status=401}"] == 1
    assert m["citygate_ingest_batches_total"] == 2
    assert m["citygate_store_errors_total"] == 0


async def test_a_gateway_silent_longer_than_the_upload_window_is_offline(store: Store) -> None:
    app = create_app(store)
    app[UPLOAD_WINDOW_MS] = 50
    runner, url = await start(app, "127.0.0.1", 0)
    try:
        async with aiohttp.ClientSession() as session:
            web = Web(url, store, session)
            a = await web.add_cabinet("gw-a", "21231")
            await web.upload(a.gateway.name, [sample(0, "lamp-1", now_ms(), lamp_on=True)])
            await asyncio.sleep(0.2)
            m = await scrape(web)
            assert (m["citygate_gateways"], m["citygate_gateways_online"]) == (1, 0)
    finally:
        await runner.cleanup()


async def test_each_app_has_its_own_registry(store: Store) -> None:
    runners = []
    try:
        urls = []
        for _ in range(2):
            runner, url = await start(create_app(store), "127.0.0.1", 0)
            runners.append(runner)
            urls.append(url)
        async with aiohttp.ClientSession() as session:
            first = Web(urls[0], store, session)
            a = await first.add_cabinet("gw-a", "21231")
            await first.upload(a.gateway.name, [sample(0, "lamp-1", now_ms(), lamp_on=True)])
            assert (await scrape(first))["citygate_ingest_batches_total"] == 1
            assert (await scrape(Web(urls[1], store, session)))["citygate_ingest_batches_total"] == 0
    finally:
        for r in runners:
            await r.cleanup()


async def drop_table(db_url: str, table: str) -> None:
    """Break the database under the running collector, from another connection."""
    if db_url.startswith("postgresql://"):
        schema = db_url.rsplit("schema=", 1)[1]
        await pg_execute(f"DROP TABLE {schema}.{table}")
        return
    db = sqlite3.connect(db_url)
    try:
        db.execute(f"DROP TABLE {table}")
        db.commit()
    finally:
        db.close()


async def test_store_failures_are_counted_and_metrics_still_answer(web: Web, db_url: str) -> None:
    a = await web.add_cabinet("gw-a", "21231")
    await web.upload(a.gateway.name, [sample(0, "lamp-1", now_ms(), lamp_on=True)])
    await drop_table(db_url, "device_state")  # the ingest transaction needs it
    c = web.cabinets["gw-a"]
    body = orjson.dumps({"v": 1, "gateway": "gw-a", "commune": "21231",
                         "records": [sample(c.seq + 1, "lamp-1", now_ms(), lamp_on=True)]})
    async with web.session.post(f"{web.url}/api/v1/batches", data=body, headers={
            "Authorization": f"Bearer {c.token}", "Content-Type": "application/json"}) as resp:
        assert resp.status == 500 and resp.content_type == "application/problem+json"
    m = await scrape(web)
    assert m["citygate_store_errors_total"] == 1
    assert m["citygate_ingest_refused_batches_total{status=500}"] == 1
    assert m["citygate_ingest_batches_total"] == 1
    assert m["citygate_gateways_online"] == 1


async def test_the_event_loops_lag_and_its_wait_for_a_cpu_are_measured(web: Web) -> None:
    """Where a batch's tail comes from: the loop's timer lateness (probed every 0.1 s while the app
    serves), and on Linux its thread's CPU time and its wait for a CPU, both counters that only grow."""
    first = await scrape(web)
    assert first["citygate_event_loop_cpu_seconds_total"] > 0
    assert first["citygate_event_loop_cpu_wait_seconds_total"] >= 0
    m = first
    for _ in range(200):  # until two probes were observed (each 0.1 s), whatever the machine's load
        if m["citygate_event_loop_lag_seconds_count"] >= 2:
            break
        await asyncio.sleep(0.05)
        m = await scrape(web)
    assert m["citygate_event_loop_lag_seconds_count"] >= 2
    assert m['citygate_event_loop_lag_seconds_bucket{le=+Inf}'] == m["citygate_event_loop_lag_seconds_count"]
    assert m["citygate_event_loop_cpu_seconds_total"] >= first["citygate_event_loop_cpu_seconds_total"]
    assert m["citygate_event_loop_cpu_wait_seconds_total"] >= first["citygate_event_loop_cpu_wait_seconds_total"]
    # the batch histogram has bounds fine enough to say whether a p99 is within 50 ms
    assert {"citygate_ingest_batch_seconds_bucket{le=0.035}", "citygate_ingest_batch_seconds_bucket{le=0.05}",
            "citygate_ingest_batch_seconds_bucket{le=0.075}"} <= m.keys()
