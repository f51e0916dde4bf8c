"""Prometheus metrics at GET /metrics, from a registry of the app's own (tests run several apps).

Ingest: batches accepted and refused (by status), records received by kind, stored and
duplicate records, batch handling time (body read, decode, store transaction; buckets fine around
the 50 ms a batch may take at p99). The event loop: how late a 0.1 s timer fires (a batch waits as
long for the loop), and on Linux the time its thread ran and waited for a CPU (schedstat): a
machine short of CPU, not the collector's own work, shows as that wait. Gateways
online (collector.online, computed at each scrape). Store errors: database failures that
reached a request handler. The MQTT link (read from it at each scrape): connected, messages
refused by kind and reason, database failures it waited out, sessions restarted after a failure.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import threading
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
from aiohttp import web
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from citygate_wire.batch import PATH, Batch
from citygate_wire.common import now_ms
from collector.appkeys import INGEST_LISTENERS, LINK
from collector.errors import StoreError
from collector.model import Gateway, IngestResult
from collector.online import fleet
from collector.problem import Handler

#: what a store raises when the database fails (the stores do not wrap driver errors on ingest)
STORE_FAILURES = (StoreError, sqlite3.Error, asyncpg.PostgresError, asyncpg.InterfaceError)


class LinkMetrics(Collector):
    """The MQTT link's own counts, read at each scrape (an app without a broker has none)."""

    def __init__(self, app: web.Application) -> None:
        self.app = app

    def collect(self) -> Iterator[Metric]:
        link = self.app.get(LINK)
        if link is None:
            return
        yield GaugeMetricFamily("citygate_mqtt_link_connected", "The MQTT link is connected (1) or not (0)",
                                value=int(link.connected))
        refused = CounterMetricFamily("citygate_mqtt_refused_messages",
                                      "MQTT messages refused, by kind and reason (invalid, unknown-gateway, unstorable)",
                                      labels=["kind", "reason"])
        for (kind, reason), n in sorted(link.refused.items()):
            refused.add_metric([kind, reason], n)
        yield refused
        yield CounterMetricFamily("citygate_mqtt_store_retries", "Database failures the MQTT link waited out",
                                  value=link.store_retries)
        yield CounterMetricFamily("citygate_mqtt_link_restarts", "MQTT sessions restarted after a failure",
                                  value=link.restarts)


#: how often the event loop's lag is probed (a timer's lateness); a wake-up 10 times a second costs nothing
LAG_PROBE_S = 0.1


class LoopThreadMetrics(Collector):
    """The event loop thread's CPU time and its wait for a CPU, from Linux's schedstat (none elsewhere)."""

    def __init__(self) -> None:
        self.path: Path | None = None

    def on_loop_thread(self) -> None:
        self.path = Path(f"/proc/self/task/{threading.get_native_id()}/schedstat")

    def collect(self) -> Iterator[Metric]:
        if self.path is None:
            return
        try:
            ran_ns, waited_ns, _ = (int(f) for f in self.path.read_text().split()[:3])
        except (OSError, ValueError):
            return
        yield CounterMetricFamily("citygate_event_loop_cpu_seconds", "CPU time of the event loop's thread",
                                  value=ran_ns / 1e9)
        yield CounterMetricFamily("citygate_event_loop_cpu_wait_seconds",
                                  "Time the event loop's thread was ready to run but waited for a CPU",
                                  value=waited_ns / 1e9)


async def probe_loop_lag(histogram: Histogram, interval_s: float = LAG_PROBE_S) -> None:
    """Observe for ever how late a timer of `interval_s` fires: the wait of anything ready on the loop."""
    loop = asyncio.get_running_loop()
    while True:
        start = loop.time()
        await asyncio.sleep(interval_s)
        histogram.observe(max(0.0, loop.time() - start - interval_s))


class Metrics:
    def __init__(self) -> None:
        r = self.registry = CollectorRegistry()
        self.batches = Counter("citygate_ingest_batches", "Batches stored", registry=r)
        self.refused = Counter("citygate_ingest_refused_batches", "Batches refused, by HTTP status", ["status"],
                               registry=r)
        self.records = Counter("citygate_ingest_records", "Records received in stored batches, by kind", ["kind"],
                               registry=r)
        self.stored = Counter("citygate_ingest_stored_records", "Records written (not duplicates)", registry=r)
        self.duplicates = Counter("citygate_ingest_duplicate_records", "Records already stored, skipped", registry=r)
        self.latency = Histogram("citygate_ingest_batch_seconds", "Time to handle a stored batch", registry=r,
                                 buckets=(0.0025, 0.005, 0.01, 0.015, 0.02, 0.025, 0.035, 0.05, 0.075, 0.1, 0.15,
                                          0.25, 0.5, 1, 2.5, 5, 10, 30))
        self.loop_lag = Histogram("citygate_event_loop_lag_seconds",
                                  f"How late a {LAG_PROBE_S:g} s timer of the event loop fires", registry=r,
                                  buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5))
        self.online = Gauge("citygate_gateways_online", "Gateways online now", registry=r)
        self.gateways = Gauge("citygate_gateways", "Gateways registered", registry=r)
        self.store_errors = Counter("citygate_store_errors", "Database failures met by request handlers", registry=r)

    def on_ingest(self, gateway: Gateway, batch: Batch, result: IngestResult) -> None:
        samples = sum(1 for r in batch.records if r.kind == "sample")
        self.records.labels("sample").inc(samples)
        self.records.labels("event").inc(len(batch.records) - samples)
        self.stored.inc(result.stored)
        self.duplicates.inc(result.duplicates)


METRICS = web.AppKey("metrics", Metrics)


def install_metrics(app: web.Application) -> Metrics:
    m = app[METRICS] = Metrics()
    m.registry.register(LinkMetrics(app))
    loop_thread = LoopThreadMetrics()
    m.registry.register(loop_thread)

    async def probing(_: web.Application) -> AsyncIterator[None]:
        loop_thread.on_loop_thread()
        task = asyncio.create_task(probe_loop_lag(m.loop_lag), name="loop-lag")
        yield
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    app.cleanup_ctx.append(probing)
    app[INGEST_LISTENERS].append(m.on_ingest)

    @web.middleware
    async def measure(request: web.Request, handler: Handler) -> web.StreamResponse:
        batch = request.method == "POST" and request.path == PATH
        start = time.perf_counter()
        try:
            response = await handler(request)
        except STORE_FAILURES:
            m.store_errors.inc()
            if batch:
                m.refused.labels("500").inc()
            raise
        except web.HTTPException as exc:
            if batch:
                m.refused.labels(str(exc.status)).inc()
            raise
        except Exception as exc:
            status = getattr(exc, "status", 500)  # a Problem carries its status
            if batch:
                m.refused.labels(str(status)).inc()
            raise
        if batch:
            if response.status == 200:
                m.batches.inc()
                m.latency.observe(time.perf_counter() - start)
            else:
                m.refused.labels(str(response.status)).inc()
        return response

    app.middlewares.append(measure)
    app.router.add_get("/metrics", get_metrics)
    return m


async def get_metrics(request: web.Request) -> web.Response:
    m = request.app[METRICS]
    try:
        _, gateways = await fleet(request.app, now_ms())
    except STORE_FAILURES:
        m.store_errors.inc()  # the counters still tell what happened before the database went away
    else:
        m.gateways.set(len(gateways))
        m.online.set(sum(1 for g in gateways if g.online))
    return web.Response(body=generate_latest(m.registry), headers={"Content-Type": CONTENT_TYPE_LATEST})
