"""What the gateway spends on its uplink, counted by the kernel on the uploader's connection and kept
across a restart; the monthly budget warning; records waiting to share a batch, an alarm not waiting.

A real collector on 127.0.0.1 (uplink_kit), a real journal and uploader; FakeClock where a month passes."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
from uplink_kit import COMMUNE, GATEWAY, Collector, real_collector

from citygate_wire.common import now_ms
from drivers.model import Event, Sample, Severity
from edge_agent.clock import FakeClock, SystemClock
from edge_agent.config import GatewayConfig, UplinkConfig
from edge_agent.journal import Journal
from edge_agent.uplink_usage import FILE, UsageMeter
from edge_agent.uploader import Uploader, batch_body


def samples(n: int) -> list[Sample]:
    ts = now_ms() - 10_000
    return [Sample(f"lamp-{i % 23:03d}", ts + i, {"level_pct": 70, "power_w": 41.9, "voltage_v": 231.2})
            for i in range(n)]


async def until(cond: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not cond():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        await asyncio.sleep(0.02)


def uploader(collector: Collector, journal: Journal, state: Path, **uplink: float | str) -> Uploader:
    cfg = UplinkConfig(collector.url, collector.token, interval_s=0.1, timeout_s=5, **uplink)  # type: ignore[arg-type]
    return Uploader(GatewayConfig(GATEWAY, COMMUNE, state), cfg, journal, SystemClock())


async def drain(up: Uploader, journal: Journal) -> None:
    """Run the uploader until the journal is empty, then stop it as the agent does (cancelled)."""
    task = asyncio.create_task(up.run())
    try:
        await until(lambda: journal.backlog == 0, 10, "the journal to drain")
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_uplink_bytes_of_today_and_the_month_are_kept_across_a_restart(tmp_path: Path) -> None:
    state = tmp_path / "state"
    async with real_collector(tmp_path) as collector, Journal(tmp_path / "journal.db") as journal:
        journal.append_many(samples(200))
        await journal.flush()
        body = batch_body(uploader(collector, journal, state)._compressor, b"{}", [b"x"])  # an empty-ish floor
        await drain(uploader(collector, journal, state), journal)
        first = orjson.loads((state / FILE).read_bytes())
        # the 200 records went up gzip-compressed, over one TLS-less TCP connection: the kernel's counts
        records = (await collector.store.count_records()).samples
        assert records == 200
        assert first["sent_today"] == first["sent_month"] > len(body) + 200  # headers and a body of 200 records
        assert first["received_today"] == first["received_month"] > 100  # at least the answer's status line
        assert first["day"] == datetime.now(UTC).strftime("%Y-%m-%d")

        # the agent restarts: a new uploader on the same state dir goes on from the saved counts
        again = uploader(collector, journal, state)
        assert again.usage.counts.sent_today == first["sent_today"]
        journal.append_many(samples(50))
        await journal.flush()
        await drain(again, journal)
        second = orjson.loads((state / FILE).read_bytes())
        assert second["sent_month"] > first["sent_month"] and second["received_month"] > first["received_month"]
        assert second["sent_today"] == second["sent_month"]
        assert again.usage.doc()["uplink_month"] == {"sent": second["sent_month"],
                                                    "received": second["received_month"]}


async def test_the_counts_match_what_crossed_the_connection(tmp_path: Path) -> None:
    """The kernel's counts against the bytes a relay in front of the collector saw, both ways."""
    crossed = [0, 0]

    async with real_collector(tmp_path) as collector, Journal(tmp_path / "journal.db") as journal:
        target = collector.url.rsplit(":", 1)[1]

        async def relay(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", int(target))

            async def pump(src: asyncio.StreamReader, dst: asyncio.StreamWriter, way: int) -> None:
                while data := await src.read(65536):
                    crossed[way] += len(data)
                    dst.write(data)
                    await dst.drain()
                dst.close()

            await asyncio.gather(pump(reader, up_writer, 0), pump(up_reader, writer, 1), return_exceptions=True)

        server = await asyncio.start_server(relay, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        via = Collector(f"http://127.0.0.1:{port}", collector.token, collector.store, collector.session)
        journal.append_many(samples(300))
        await journal.flush()
        up = uploader(via, journal, tmp_path / "state", batch_max_records=100)
        await drain(up, journal)
        server.close()
        counts = up.usage.counts
        # payload exactly, plus 52 bytes of IP and TCP headers per segment: a few dozen segments each way
        assert crossed[0] < counts.sent_today < crossed[0] + 52 * 40, (crossed, counts)
        assert crossed[1] < counts.received_today < crossed[1] + 52 * 40, (crossed, counts)


async def test_records_wait_for_the_batch_age_and_an_alarm_does_not(tmp_path: Path) -> None:
    async with real_collector(tmp_path) as collector, Journal(tmp_path / "journal.db") as journal:
        up = uploader(collector, journal, tmp_path / "state", batch_max_age_s=1.5)
        task = asyncio.create_task(up.run())
        try:
            await asyncio.sleep(0.3)  # the empty journal was looked at: the uploader waits for records
            journal.append_many(samples(3))
            await journal.flush()
            loop = asyncio.get_running_loop()
            started = loop.time()
            stored = lambda: up.state.uploaded_records  # noqa: E731
            await asyncio.sleep(0.8)
            assert stored() == 0, "sent before the batch's age"
            await until(lambda: stored() == 3, 5, "the batch at its age")
            assert 1.4 <= loop.time() - started < 3.0
            # more samples wait, until a major event takes them along at once
            journal.append_many(samples(5))
            await journal.flush()
            await asyncio.sleep(0.3)
            assert stored() == 3
            started = loop.time()
            journal.append(Event("lamp-004", now_ms(), "lamp_failure", Severity.MAJOR, {"level_pct": 70}))
            await until(lambda: stored() == 9, 5, "the alarm's batch")
            assert loop.time() - started < 0.8
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        assert (await collector.store.count_records()).events == 1


def test_a_budget_the_month_will_pass_at_the_current_rate_is_warned_of(tmp_path: Path) -> None:
    clock = FakeClock(datetime(2026, 12, 1, tzinfo=UTC))
    meter = UsageMeter(tmp_path, clock, budget_bytes=50_000_000)
    assert meter.warning() is None  # nothing counted, no time passed
    clock._now += timedelta(minutes=30)
    meter.add_uplink(1_000_000, 0)
    assert meter.projected_month_bytes() is None and meter.warning() is None  # too early to judge a rate
    clock._now += timedelta(days=1, minutes=-30)
    meter.add_uplink(500_000, 500_000)  # 2 MB a day: 62 MB by the end of December
    assert meter.projected_month_bytes() == 62_000_000
    warning = meter.warning()
    assert warning == ("uplink data budget will be exceeded: 62.0 MB of uplink data by the end of the month at the current rate,"
                       " budget 50.0 MB"), warning
    assert UsageMeter(tmp_path, clock, budget_bytes=70_000_000).warning() is None  # (nothing saved yet: a new meter)
    meter.budget_bytes = 70_000_000
    assert meter.warning() is None
    meter.budget_bytes = 1_000_000
    assert meter.warning() == "uplink data budget exceeded: 2.0 MB sent and received this month, budget 1.0 MB"
    meter.budget_bytes = None
    assert meter.warning() is None and meter.doc()["warning"] is None


def test_today_and_the_month_start_again_at_their_turn_and_the_file_keeps_them(tmp_path: Path) -> None:
    clock = FakeClock(datetime(2026, 11, 30, 23, 0, tzinfo=UTC))
    meter = UsageMeter(tmp_path, clock)
    meter.add_uplink(1000, 200)
    meter.save()
    clock._now = datetime(2026, 12, 1, 0, 30, tzinfo=UTC)
    restarted = UsageMeter(tmp_path, clock)  # after midnight, on the 1st: a new day and a new month
    doc = restarted.doc()
    assert doc["uplink_today"] == doc["uplink_month"] == {"sent": 0, "received": 0}
    assert (doc["day"], doc["month"]) == ("2026-12-01", "2026-12")
    restarted.add_uplink(3000, 1000)
    clock._now = datetime(2026, 12, 2, 0, 30, tzinfo=UTC)
    restarted.add_uplink(10, 5)
    doc = restarted.doc()
    assert doc["uplink_today"] == {"sent": 10, "received": 5}
    assert doc["uplink_month"] == {"sent": 3010, "received": 1005}
    # counted since the 1st at midnight (the file existed), not since this meter started: 4015 B in 24.5 h
    assert doc["projected_month_bytes"] == 4015 + int(4015 * (29 * 24 + 23.5) / 24.5)


def test_the_control_links_bytes_count_in_the_totals_and_apart_and_start_again_at_their_turn(tmp_path: Path) -> None:
    clock = FakeClock(datetime(2026, 11, 30, 23, 0, tzinfo=UTC))
    meter = UsageMeter(tmp_path, clock, budget_bytes=999)
    meter.add_uplink(400, 100)  # an upload
    meter.add_uplink(300, 200, control=True)  # pings and a state message
    doc = meter.doc()
    assert doc["uplink_today"] == {"sent": 700, "received": 300} and doc["control_today"] == 500
    assert doc["control_month"] == 500
    assert doc["warning"] == "uplink data budget exceeded: 1.0 kB sent and received this month, budget 999 B"
    meter.save()
    clock._now = datetime(2026, 12, 1, 0, 30, tzinfo=UTC)
    restarted = UsageMeter(tmp_path, clock)
    assert (restarted.doc()["control_today"], restarted.doc()["control_month"]) == (0, 0)
    clock._now = datetime(2026, 11, 30, 23, 30, tzinfo=UTC)  # the same day: the file kept the control link's share
    assert UsageMeter(tmp_path, clock).doc()["control_today"] == 500


def test_an_unreadable_usage_file_starts_the_counts_again(tmp_path: Path) -> None:
    (tmp_path / FILE).write_bytes(b"{not json")
    meter = UsageMeter(tmp_path, SystemClock())
    assert meter.doc()["uplink_month"] == {"sent": 0, "received": 0}
