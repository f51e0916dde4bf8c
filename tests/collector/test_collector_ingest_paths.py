"""The ingest paths tuned for speed keep their meaning: every sample lands whatever month it
falls in, values come back as sent, and duplicates inside a mixed batch are skipped exactly."""

from __future__ import annotations

from collector_testkit import TS0, Running, batch_body, event, sample

from collector.model import RecordCounts

DAY_MS = 86_400_000


async def test_a_batch_across_month_boundaries_stores_every_sample(running: Running) -> None:
    gw, token = await running.add_gateway()
    # 2025-11-30 23:59:59.999 UTC, 2025-12-01 00:00 UTC, and 40 days later (January 2026)
    stamps = [TS0 - 1, TS0, TS0 + 40 * DAY_MS]
    records = [sample(i + 1, "lamp-1", ts_ms=ts, level_pct=10 * (i + 1)) for i, ts in enumerate(stamps)]
    status, _, doc = await running.client.post(batch_body(gw.name, records), token)
    assert (status, doc) == (200, {"ack_seq": 3, "stored": 3, "duplicates": 0})
    _, _, doc = await running.client.get(f"/api/v1/gateways/{gw.name}/devices/lamp-1/samples")
    assert [(s["ts_ms"], s["values"]) for s in doc["samples"]] == [
        (TS0 + 40 * DAY_MS, {"level_pct": 30}), (TS0, {"level_pct": 20}), (TS0 - 1, {"level_pct": 10})]


async def test_duplicates_inside_a_mixed_batch_are_skipped_and_the_rest_stored(running: Running) -> None:
    gw, token = await running.add_gateway()
    first = [sample(1), sample(2), event(3, "door_open", "minor"), sample(4)]
    assert (await running.client.post(batch_body(gw.name, first), token))[2] == \
        {"ack_seq": 4, "stored": 4, "duplicates": 0}
    # resent with new records between and after the old ones
    second = [sample(2), event(3, "door_open", "minor"), sample(4), event(5, "door_closed", "info"), sample(6)]
    assert (await running.client.post(batch_body(gw.name, second), token))[2] == \
        {"ack_seq": 6, "stored": 2, "duplicates": 3}
    assert await running.store.count_records(gw) == RecordCounts(samples=4, events=2)
    _, _, doc = await running.client.get(f"/api/v1/gateways/{gw.name}/events")
    assert [(e["seq"], e["code"]) for e in doc["events"]] == [(5, "door_closed"), (3, "door_open")]
    day = await running.store.rollups("gateway", "day", gw.name, "2025-12-01", "2025-12-01")
    assert [(r.samples, r.events) for r in day] == [(4, 2)]


async def test_large_batches_of_any_size_are_stored_whole(running: Running) -> None:
    # the SQLite store writes samples in multi-row INSERTs of 500: sizes around and across that
    gw, token = await running.add_gateway()
    seq = 0
    for size in (1, 499, 500, 501, 1234):
        records = [sample(seq + k + 1, f"lamp-{(seq + k) % 7}", ts_ms=TS0 + (seq + k) * 1000, level_pct=(seq + k) % 101)
                   for k in range(size)]
        status, _, doc = await running.client.post(batch_body(gw.name, records), token)
        assert (status, doc) == (200, {"ack_seq": seq + size, "stored": size, "duplicates": 0})
        seq += size
    assert await running.store.count_records(gw) == RecordCounts(samples=seq, events=0)
    _, _, doc = await running.client.get(f"/api/v1/gateways/{gw.name}/devices/lamp-3/samples?limit=10000")
    expected = [(s, TS0 + (s - 1) * 1000, (s - 1) % 101) for s in range(seq, 0, -1) if (s - 1) % 7 == 3]
    assert [(s["seq"], s["ts_ms"], s["values"]["level_pct"]) for s in doc["samples"]] == expected


async def test_the_states_of_hundreds_of_devices_in_one_batch_are_all_kept(running: Running) -> None:
    # device states and rollups are written in multi-row statements of 500 rows: 600 lamps take two
    gw, token = await running.add_gateway()
    for b, energy in enumerate((1000, 1010)):
        records = [sample(b * 600 + k + 1, f"lamp-{k}", ts_ms=TS0 + b * 60_000 + k, energy_wh=energy, lamp_on=True)
                   for k in range(600)]
        status, _, doc = await running.client.post(batch_body(gw.name, records), token)
        assert (status, doc["stored"]) == (200, 600)
    hour = await running.store.rollups("gateway", "hour", gw.name, TS0, TS0)
    # every lamp's second reading adds 10 Wh to the first, which only a kept state can know
    assert [(r.samples, r.energy_wh, r.lamps_on) for r in hour] == [(1200, 6000.0, 600)]
