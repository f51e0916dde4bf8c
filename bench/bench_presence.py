"""Presence of the whole fleet: a collector restart and a simultaneous Last Will of every gateway.

A real Mosquitto; N gateways (1,500 by default) in child processes, each with its Last Will (a
retained offline state) and its retained online state; the collector's real MQTT link
(collector.control.link) on a real store, SQLite or PostgreSQL. Two set-ups measured in the same run:

- baseline: the link as it was, one commit a state message, and Mosquitto at its defaults
  (max_queued_messages 1000, max_inflight_messages 20);
- now: presence written in batches (collector.presence) and the broker configured as docs/mqtt.md
  says (max_queued_messages 100000, max_inflight_messages 1000), as the tests' broker is.

Each set-up: (1) restart: while the link is stopped the fleet connects, loses power (Wills) and
comes back (three messages a gateway queue in the collector's persistent session); the link starts
(the queue and the retained states arrive at once): time until the presence table holds every
gateway's newest state; (2) mass power cut: the fleet's processes
are killed (the kernel closes 1,500 sockets, the broker fires 1,500 Wills): time until every
gateway is offline (target: within 10 s). "wrong after" counts the rows still not right when the
bench gives up waiting (`--limit-s`, 60 s): messages the collector never got; the
broker's log counts its "Outgoing messages are being dropped" lines for the collector's client.

    python bench/bench_presence.py [--gateways 1500] [--store sqlite|postgresql|both]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import aiomqtt
import orjson

from citygate_wire.common import now_ms
from citygate_wire.mqtt import State, decode_state, encode_state, parse_topic, topic
from collector.control.link import NO_DELAY, ControlLink, LinkConfig
from collector.store import Store, open_store
from collector.tokens import hash_token
from simulators.mosquitto import Mosquitto
from simulators.procs import Proc

COMMUNE = "21231"
READY = "fleet ready"
WORKERS = 3
EXACT_WITHIN_S = 10.0


def names(start: int, n: int) -> list[str]:
    return [f"gw-{i:05d}" for i in range(start, start + n)]


# -- the child: a slice of the fleet -----------------------------------------------------------------


async def fleet(port: int, first: int, n: int) -> None:
    clients: list[aiomqtt.Client] = []
    stack = contextlib.AsyncExitStack()
    session = now_ms()  # each connection's epoch, as an agent sends it (later for the fleet's next start)
    async with stack:
        for name in names(first, n):
            will = aiomqtt.Will(topic(COMMUNE, name, "state"),
                                encode_state(State(name, COMMUNE, False, reason="connection lost", session=session)),
                                qos=1, retain=True)
            client = aiomqtt.Client("127.0.0.1", port, identifier=name, protocol=aiomqtt.ProtocolVersion.V311,
                                    clean_session=False, keepalive=60, will=will, socket_options=NO_DELAY)
            await stack.enter_async_context(client)
            clients.append(client)
        ts = now_ms()
        await asyncio.gather(*(
            c.publish(topic(COMMUNE, name, "state"),
                      encode_state(State(name, COMMUNE, True, ts, interval_s=600, session=session)), qos=1, retain=True)
            for c, name in zip(clients, names(first, n), strict=True)))
        print(f"ts {ts}", flush=True)
        print(READY, flush=True)
        await asyncio.Event().wait()  # until killed: the kernel closes every socket, the broker fires the Wills


# -- the collector's side ---------------------------------------------------------------------------------


class OneCommitLink(ControlLink):
    """The link as it was: each state message written and committed before the next is read, and
    every message acknowledged by paho at its receipt."""

    def _client(self) -> aiomqtt.Client:
        client = super()._client()
        client._client.manual_ack_set(False)
        return client

    async def _handle(self, topic_name: str, payload: bytes, done: Callable[[], None] = lambda: None) -> bool:
        where = parse_topic(topic_name)
        if where.kind != "state":
            return await super()._handle(topic_name, payload, done)
        gateway = await self._gateway(where.gateway)
        if gateway is None:
            return False
        state = decode_state(payload)
        await self._stored("state", self.store.record_state, gateway.id, state.online, where.commune, payload,
                           now_ms())
        return False


class DefaultBroker(Mosquitto):
    """Mosquitto at its defaults for the collector's queue (what docs/mqtt.md said before)."""

    def config_text(self) -> str:
        return "\n".join(line for line in super().config_text().splitlines()
                         if not line.startswith(("max_queued_messages", "max_inflight_messages"))) + "\n"


@contextlib.asynccontextmanager
async def running(link: ControlLink) -> AsyncIterator[None]:
    task = asyncio.create_task(link.run())
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def until(store: Store, want: dict[str, tuple[bool, int | None]], limit_s: float) -> tuple[float | None, int]:
    """Seconds until presence equals `want` (gateway -> (online, state ts_ms)), or None; and how many
    rows are wrong at the end."""
    t0 = time.perf_counter()
    wrong = len(want)
    while time.perf_counter() - t0 < limit_s:
        rows = {p.gateway: (p.online, p.state.get("ts_ms")) for p in await store.presence()}
        wrong = sum(rows.get(g) != w for g, w in want.items())
        if not wrong:
            return time.perf_counter() - t0, 0
        await asyncio.sleep(0.5)  # reading the table parses every state: not too often, it shares the loop
    return None, wrong


def stamps(proc: Proc) -> list[int]:
    return [int(line.split()[1]) for line in proc.output().splitlines() if line.startswith("ts ")]


def dropped_lines(broker: Mosquitto) -> int:
    return sum("dropped" in line.lower() and "citygate-collector" in line for line in broker.log().splitlines())


async def scenario(label: str, db_url: str, tmp: Path, n: int, batched: bool,
                   args_limit_s: float) -> dict[str, object]:
    broker = (Mosquitto if batched else DefaultBroker)(tmp / f"broker-{label}")
    broker.start()
    kids: list[Proc] = []
    try:
        async with open_store(db_url) as store:
            for name in names(0, n):
                await store.add_gateway(name, COMMUNE, hash_token(f"token-{name}"))
            cfg = LinkConfig(broker.url, "unused", client_id=f"citygate-collector-{label}")
            link = (ControlLink if batched else OneCommitLink)(store, cfg)
            # the collector's session exists at the broker before the fleet comes, as in the field
            async with running(link):
                while not link.connected:
                    await asyncio.sleep(0.05)
            # (1) while the collector is stopped, the fleet comes up, loses power and comes back: three
            # messages a gateway queue for it, then it starts (and gets the retained states as well)
            per = -(-n // WORKERS)
            for _generation in range(2):
                for kid in kids:
                    kid.kill9()
                kids = [Proc(f"fleet-{k}", [sys.executable, __file__, "--fleet-child", "--port", str(broker.port),
                                            "--first", str(k * per), "--gateways", str(min(per, n - k * per))])
                        for k in range(WORKERS) if k * per < n]
                for kid in kids:
                    await asyncio.to_thread(kid.wait_for, READY, 300)
            want: dict[str, tuple[bool, int | None]] = {}
            for k, kid in enumerate(kids):
                ts = stamps(kid)[-1]
                for name in names(k * per, min(per, n - k * per)):
                    want[name] = (True, ts)
            t_start = time.perf_counter()
            async with running(link):
                restart_s, restart_wrong = await until(store, want, args_limit_s)
                drops_restart = dropped_lines(broker)
                # (2) every cabinet loses power at once: 1,500 Wills
                for kid in kids:
                    kid.kill9()
                kids = []
                offline: dict[str, tuple[bool, int | None]] = {name: (False, None) for name in want}
                will_s, will_wrong = await until(store, offline, args_limit_s)
                drops_will = dropped_lines(broker) - drops_restart
            total_s = time.perf_counter() - t_start
            flushes = link.presence.flushes if batched else None
    finally:
        for kid in kids:
            kid.kill9()
        broker.kill()
    return {"label": label, "load": Path("/proc/loadavg").read_text().split()[0], "restart_s": restart_s, "restart_wrong": restart_wrong, "will_s": will_s,
            "will_wrong": will_wrong, "broker_drop_lines": (drops_restart, drops_will), "flushes": flushes,
            "total_s": round(total_s, 1)}


async def fresh_url(kind: str, tmp: Path, label: str) -> str:
    if kind == "sqlite":
        return str(tmp / f"{label}.db")
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from tests.store_testkit import new_pg_schema, pg_execute

    schema, url = new_pg_schema()
    await pg_execute(f"CREATE SCHEMA {schema}")
    return url


def show(r: dict[str, object], n: int) -> str:
    def t(v: object) -> str:
        if not isinstance(v, float):
            return "never (in the time allowed)"
        return f"{v:.2f} s" + ("" if v <= EXACT_WITHIN_S else f" (over {EXACT_WITHIN_S:g} s)")

    return (f"{r['label']:<28} restart: exact in {t(r['restart_s'])}, {r['restart_wrong']} of {n} wrong after; "
            f"Wills: exact in {t(r['will_s'])}, {r['will_wrong']} wrong after; broker drop warnings "
            f"{r['broker_drop_lines']}; flushes {r['flushes']}; load average {r['load']}")


async def main_async(args: argparse.Namespace, tmp: Path) -> None:
    kinds = ["sqlite", "postgresql"] if args.store == "both" else [args.store]
    results = []
    for kind in kinds:
        for batched in ((True,) if args.no_baseline else (False, True)):
            label = f"{kind} {'batched+raised' if batched else 'baseline 1 commit/msg'}"
            url = await fresh_url(kind, tmp, label.replace(" ", "-").replace("/", "-"))
            r = await scenario(label.replace(" ", "-").replace("/", "-").replace("+", "-"), url, tmp, args.gateways,
                               batched, args.limit_s)
            r["label"] = label
            results.append(r)
            print(show(r, args.gateways), flush=True)
    print(orjson.dumps(results).decode())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--gateways", type=int, default=1500)
    parser.add_argument("--no-baseline", action="store_true",
                        help="only the batched set-up (for a larger fleet than the old path is worth running)")
    parser.add_argument("--limit-s", type=float, default=60.0, help="give up waiting for an exact table after this")
    parser.add_argument("--store", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--fleet-child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--first", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)
    if args.fleet_child:
        asyncio.run(fleet(args.port, args.first, args.gateways))
        return
    with tempfile.TemporaryDirectory(prefix="bench-presence-") as tmp:
        asyncio.run(main_async(args, Path(tmp)))


if __name__ == "__main__":
    main()
