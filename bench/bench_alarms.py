"""Operators' alarms at metropolis scale: what a lost bus costs to fold, and what the page's list costs,
with a year of history behind them, against a 20-cabinet city in the same run.

Each city: N gateways (1,500: the metropolis; 20: the baseline), a history of alarms already handled
(HISTORY_PER_GATEWAY cleared alarms a gateway, written as the fold leaves them, in bulk) and of events
the fold reads past (info events, uploaded through the store's ingest), and ACTIVE_SHARE of the
gateways with an open alarm. Then, measured (median of --rounds):

- fold: a cabinet's bus is lost (its 23 lamps raise communication_failure in one upload) and the fold
  makes it one alarm; then the restore clears it;
- list: GET /api/v1/alarms's query (the active alarms, the most severe first, with the counts per
  state, severity, commune and kind);
- commune: the same for one commune; cleared: the first page of cleared alarms.

The ratio metropolis / baseline is what to read (the machine is shared: absolute times move): near 1
means the cost does not grow with the city's size nor with its history.

    python bench/bench_alarms.py [--store sqlite|postgresql] [--gateways 1500] [--rounds 5]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

from citygate_wire.batch import WireRecord, decode_batch
from citygate_wire.common import now_ms
from collector.alarms.fold import Fold
from collector.alarms.model import Filters
from collector.model import Gateway
from collector.store import Store, open_store
from collector.tokens import hash_token

HISTORY_PER_GATEWAY = 40  # cleared alarms a cabinet: a year of faults
EVENTS_PER_GATEWAY = 200  # info events the fold reads past
ACTIVE_SHARE = 0.1
LAMPS = 23  # 34,000 lamps / 1,500 cabinets
COMMUNES = ["21231", "21166", "21617", "21515", "21263", "21003", "21054", "21278", "21355", "21485"]


def batch(gateway: str, commune: str, records: list[dict[str, object]]) -> list[WireRecord]:
    import orjson

    body = orjson.dumps({"v": 1, "gateway": gateway, "commune": commune, "records": records})
    return list(decode_batch(body).records)


async def build(store: Store, gateways: int) -> list[tuple[Gateway, str]]:
    now = now_ms()
    made = []
    for i in range(gateways):
        commune = COMMUNES[i % len(COMMUNES)]
        gw = await store.add_gateway(f"gw-{i:04d}", commune, hash_token(f"t{i}"))
        made.append((gw, commune))
        records = [{"seq": s + 1, "kind": "event", "device": f"lamp-{s % LAMPS}", "ts_ms": now - 3_600_000 + s,
                    "code": "group_level", "severity": "info", "detail": {"level_pct": 70}}
                   for s in range(EVENTS_PER_GATEWAY)]
        if i < gateways * ACTIVE_SHARE:
            records.append({"seq": EVENTS_PER_GATEWAY + 1, "kind": "event", "device": "lamp-1", "ts_ms": now - 600_000,
                            "code": "lamp_failure", "severity": "major", "detail": {}})
        await store.ingest(gw, batch(gw.name, commune, records))
    # the history: alarms handled before, as the fold leaves them (bulk: folding a year would take a year)
    rows = []
    for n, (gw, commune) in enumerate(made):
        for h in range(HISTORY_PER_GATEWAY):
            t = now - 400 * 86_400_000 + h * 86_400_000
            rows.append((f"h|{n}|{h}", gw.id, commune, t, t + 3_600_000))
    for start in range(0, len(rows), 500):
        await store._ctl_atomic([(  # type: ignore[attr-defined]
            "INSERT INTO alarm_cases (origin, gateway_id, commune, code, scope, severity, sev_rank, state, first_ts_ms,"
            " last_ts_ms, raised_ms, devices, active, detail, cleared_ms, cleared_how, ended_ts_ms)"
            " VALUES ($1, $2, $3, 'lamp_failure', '', 'major', 1, 'cleared', $4, $4, $4, 1, 0, '{}', $5, 'restored', $5)",
            r) for r in rows[start:start + 500]])
    await Fold(store, settle_s=0).catch_up()
    return made


def median_ms(times: list[float]) -> float:
    return statistics.median(times) * 1000


async def measure(store: Store, made: list[tuple[Gateway, str]], rounds: int) -> dict[str, float]:
    fold = Fold(store, settle_s=0)
    await fold.catch_up()
    out: dict[str, list[float]] = {"fold": [], "list": [], "commune": [], "cleared": []}
    gw, commune = made[-1]
    seq = 10_000
    for r in range(rounds):
        at = now_ms() - 60_000
        lost = [{"seq": seq + i, "kind": "event", "device": f"lamp-{i}", "ts_ms": at + i, "code": "communication_failure",
                 "severity": "major", "detail": {"failures": 3}} for i in range(LAMPS)]
        back = [{"seq": seq + LAMPS + i, "kind": "event", "device": f"lamp-{i}", "ts_ms": at + 30_000 + i,
                 "code": "communication_restored", "severity": "info", "detail": {}} for i in range(LAMPS)]
        seq += 2 * LAMPS
        await store.ingest(gw, batch(gw.name, commune, lost))
        t = time.perf_counter()
        await fold.catch_up()
        out["fold"].append(time.perf_counter() - t)
        for name, f in (("list", Filters()), ("commune", Filters(commune=commune)), ("cleared", Filters(states=("cleared",)))):
            t = time.perf_counter()
            await store.list_alarms(f, now_ms())
            out[name].append(time.perf_counter() - t)
        await store.ingest(gw, batch(gw.name, commune, back))
        await fold.catch_up()
        active = await store.list_alarms(Filters(gateway=gw.name, kind="communication_failure"), now_ms())
        assert active[1] == 0, f"round {r}: the lost bus did not clear"
    return {k: median_ms(v) for k, v in out.items()}


async def city(url: str, gateways: int, rounds: int) -> dict[str, float]:
    async with open_store(url) as store:
        made = await build(store, gateways)
        return await measure(store, made, rounds)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--gateways", type=int, default=1500)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        results = {}
        for label, n in (("baseline", 20), ("metropolis", args.gateways)):
            if args.store == "sqlite":
                url = str(Path(tmp) / f"{label}.db")
                results[label] = await city(url, n, args.rounds)
            else:
                sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
                from tests.store_testkit import new_pg_schema, pg_execute

                schema, url = new_pg_schema()
                await pg_execute(f"CREATE SCHEMA {schema}")
                try:
                    results[label] = await city(url, n, args.rounds)
                finally:
                    await pg_execute(f"DROP SCHEMA {schema} CASCADE")
    base, metro = results["baseline"], results["metropolis"]
    print(f"store {args.store}: baseline 20 cabinets, metropolis {args.gateways} cabinets "
          f"({args.gateways * HISTORY_PER_GATEWAY:,} cleared alarms, {args.gateways * EVENTS_PER_GATEWAY:,} events)")
    print(f"{'median of ' + str(args.rounds):<28}{'baseline ms':>12}{'metropolis ms':>15}{'ratio':>8}")
    for name, what in (("fold", "fold a lost bus (23 lamps)"), ("list", "list + counts, active"),
                       ("commune", "list + counts, one commune"), ("cleared", "first page of cleared")):
        print(f"{what:<28}{base[name]:>12.1f}{metro[name]:>15.1f}{metro[name] / base[name]:>8.2f}")


if __name__ == "__main__":
    asyncio.run(main())
