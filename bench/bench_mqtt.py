"""Control plane: command round trip with 200 connected gateways, and presence after a gateway dies.

A real Mosquitto on loopback with the generated password and ACL files. One child process runs
N gateways' real control links (edge_agent.control.ControlService, each with its own SQLite
dedupe store); this process runs the collector's real link on its SQLite store.

- command round trip: the collector audits a command, publishes it, the gateway records its id
  (durable), runs it (agent.set_log_level), stores and publishes its ack, the collector records
  it. Sequential commands to random gateways: median and p99. Baseline, same run, same broker:
  a bare aiomqtt publish -> echo -> subscribe round trip between the same two processes.
- commune-wide command: one command to all N gateways, until every ack is recorded.
- presence: an agent process (`citygate-agent run`) killed with -9 (the kernel closes its socket:
  the broker publishes the Will at once), then one frozen with SIGSTOP (a cabinet losing power:
  only the keepalive notices), until the collector's presence table says offline. Ratio to the
  keepalive bound 1.5 x keepalive. Default keepalive of the frozen agent here: 5 s (the shipped
  default, 20 s, with --full).

    python bench/bench_mqtt.py [--gateways 200] [--commands 300] [--full]
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import random
import signal
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

import aiomqtt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from citygate_wire.mqtt import COLLECTOR_IDENTITY, Command, public_key_text
from collector.control.acl import acl_file, mosquitto_hash, password_file
from collector.control.link import NO_DELAY, ControlLink, LinkConfig
from collector.store_sqlite import SqliteStore
from collector.tokens import hash_token
from simulators.mosquitto import Mosquitto
from simulators.procs import Proc, bin_path

COMMUNE = "21231"
ECHO_USER, ECHO_PASSWORD = "bench-echo", "bench-echo-password"
READY = "fleet ready"
#: The collector's command key, fixed so that the fleet child and the agents hold its public half.
BENCH_KEY = Ed25519PrivateKey.from_private_bytes(b"citygate-bench-command-key-0000!")


def names(n: int) -> list[str]:
    return [f"gw-{i:04d}" for i in range(n)]


def token(name: str) -> str:
    return f"cgw_bench_{name}_{'x' * 20}"


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


# -- the child: N gateways' control links, and an echo responder -----------------------------------

async def fleet(port: int, n: int, state: Path) -> None:
    from edge_agent.clock import SystemClock
    from edge_agent.control import ControlService, MqttConfig
    from edge_agent.service import AgentContext

    logging.getLogger("bench").setLevel(logging.INFO)
    services = []
    async with asyncio.TaskGroup() as tg:
        for name in names(n):
            cfg = MqttConfig(url=f"mqtt://127.0.0.1:{port}", host="127.0.0.1", port=port, tls=False,
                             password=token(name), backoff_max_s=2.0, command_keys=(BENCH_KEY.public_key(),))
            svc = ControlService(cfg)
            ctx = AgentContext(name, COMMUNE, state / name, SystemClock(), {}, lambda record: None)
            services.append(svc)
            tg.create_task(svc.run(ctx))
        tg.create_task(echo(port))
        while not all(s.connected for s in services):
            await asyncio.sleep(0.05)
        print(READY, flush=True)


async def echo(port: int) -> None:
    async with aiomqtt.Client("127.0.0.1", port, username=ECHO_USER, password=ECHO_PASSWORD,
                              identifier="bench-echo-responder", protocol=aiomqtt.ProtocolVersion.V311,
                              socket_options=NO_DELAY) as c:
        await c.subscribe("bench/req", qos=1)
        async for m in c.messages:
            await c.publish("bench/resp", m.payload, qos=1)


# -- the parent: broker, collector side, measurements ------------------------------------------------

async def echo_round_trips(port: int, count: int) -> list[float]:
    out: list[float] = []
    async with aiomqtt.Client("127.0.0.1", port, username=ECHO_USER, password=ECHO_PASSWORD,
                              identifier="bench-echo-probe", protocol=aiomqtt.ProtocolVersion.V311,
                              socket_options=NO_DELAY) as c:
        await c.subscribe("bench/resp", qos=1)
        messages = aiter(c.messages)
        for i in range(count):
            body = str(i).encode()
            t0 = time.perf_counter()
            await c.publish("bench/req", body, qos=1)
            while (await anext(messages)).payload != body:
                pass
            out.append(time.perf_counter() - t0)
    return out


async def until_final(store: SqliteStore, link: ControlLink, command_id: str, timeout: float = 30) -> None:
    deadline = time.perf_counter() + timeout
    while True:
        change = link.next_change()
        row = await store.command(command_id)
        if row is not None and row.final:
            return
        left = deadline - time.perf_counter()
        if left <= 0:
            raise RuntimeError(f"command {command_id} not answered: {row}")
        try:
            async with asyncio.timeout(min(left, 0.5)):
                await change.wait()
        except TimeoutError:
            pass


async def send(store: SqliteStore, link: ControlLink, target: str, gateway_ids: list[int]) -> str:
    now = time.time_ns() // 1_000_000
    cmd = Command(uuid.uuid4().hex, "agent.set_log_level", {"level": "info", "logger": "bench"}, now, now + 60_000,
                  "bench")
    await store.add_command(cmd, target, gateway_ids)
    link.kick()
    return cmd.id


async def presence_change(store: SqliteStore, name: str, online: bool, timeout: float) -> float:
    t0 = time.perf_counter()
    while True:
        row = next(p for p in await store.presence() if p.gateway == name)
        if row.online is online:
            return time.perf_counter() - t0
        if time.perf_counter() - t0 > timeout:
            raise RuntimeError(f"{name} never turned online={online}")
        await asyncio.sleep(0.01)


def agent_process(tmp: Path, port: int, name: str, keepalive: int) -> Proc:
    config = tmp / f"{name}.toml"
    config.write_text(f"""
[gateway]
id = "{name}"
commune = "{COMMUNE}"
state_dir = "{tmp / name}"
[uplink]
url = "http://127.0.0.1:9"
token = "{token(name)}"
[local_api]
socket = "{tmp / name}.sock"
[mqtt]
url = "mqtt://127.0.0.1:{port}"
password = "{token(name)}"
keepalive_s = {keepalive}
command_key = "{public_key_text(BENCH_KEY.public_key())}"
""")
    return Proc(name, [bin_path("citygate-agent"), "run", "--config", str(config)])


async def main_async(args: argparse.Namespace, tmp: Path) -> None:
    gateways = names(args.gateways)
    dying = ["gw-kill", "gw-freeze"]
    entries = [(COLLECTOR_IDENTITY, mosquitto_hash("collector-pw")), (ECHO_USER, mosquitto_hash(ECHO_PASSWORD))]
    entries += [(g, mosquitto_hash(token(g))) for g in gateways + dying]
    (tmp / "passwd").write_text(password_file(entries))
    (tmp / "acl").write_text(acl_file(gateways + dying) + f"\nuser {ECHO_USER}\ntopic readwrite bench/#\n")
    broker = Mosquitto(tmp / "broker", password_file=tmp / "passwd", acl_file=tmp / "acl", persistence=False)
    broker.start()
    child: Proc | None = None
    try:
        async with SqliteStore(tmp / "collector.db") as store:
            ids = {}
            for g in gateways + dying:
                ids[g] = (await store.add_gateway(g, COMMUNE, hash_token(token(g)))).id
            link = ControlLink(store, LinkConfig(broker.url, "collector-pw", resend_s=5.0, command_key=BENCH_KEY))
            link_task = asyncio.create_task(link.run())
            t0 = time.perf_counter()
            child = Proc("fleet", [sys.executable, __file__, "--fleet-child", "--port", str(broker.port),
                                   "--gateways", str(args.gateways), "--state", str(tmp / "fleet")])
            await asyncio.to_thread(child.wait_for, READY, 120)
            connect_s = time.perf_counter() - t0
            while not link.connected:
                await asyncio.sleep(0.05)

            echo = await echo_round_trips(broker.port, args.commands)
            rtts = []
            for _ in range(args.commands):
                name = random.choice(gateways)
                t1 = time.perf_counter()
                await until_final(store, link, await send(store, link, f"gateway:{name}", [ids[name]]))
                rtts.append(time.perf_counter() - t1)
            t2 = time.perf_counter()
            await until_final(store, link, await send(store, link, f"commune:{COMMUNE}", [ids[g] for g in gateways]),
                              timeout=120)
            fanout = time.perf_counter() - t2

            kill = agent_process(tmp, broker.port, "gw-kill", 20)
            await presence_change(store, "gw-kill", True, 60)
            kill.popen.kill()
            killed = await presence_change(store, "gw-kill", False, 60)
            kill.kill9()
            keepalive = 20 if args.full else 5
            frozen_agent = agent_process(tmp, broker.port, "gw-freeze", keepalive)
            await presence_change(store, "gw-freeze", True, 60)
            os.killpg(frozen_agent.popen.pid, signal.SIGSTOP)
            frozen = await presence_change(store, "gw-freeze", False, 3 * keepalive + 30)
            os.killpg(frozen_agent.popen.pid, signal.SIGCONT)
            frozen_agent.kill9()
            link_task.cancel()
    finally:
        if child is not None:
            child.kill9()
        broker.kill()

    ms = 1000.0
    cmd_med, cmd_p99 = statistics.median(rtts) * ms, pct(rtts, 0.99) * ms
    echo_med, echo_p99 = statistics.median(echo) * ms, pct(echo, 0.99) * ms
    print(f"gateways connected: {args.gateways} in {connect_s:.1f} s (one process, each with its own dedupe store)")
    print(f"command round trip ({args.commands} sequential, random gateway): median {cmd_med:.1f} ms, "
          f"p99 {cmd_p99:.1f} ms   (target median < 50 ms)")
    print(f"baseline bare MQTT echo round trip (QoS 1, same broker): median {echo_med:.2f} ms, p99 {echo_p99:.2f} ms")
    print(f"ratio command / echo: median x{cmd_med / echo_med:.1f}, p99 x{cmd_p99 / echo_p99:.1f}")
    print(f"commune-wide command to {args.gateways} gateways, every ack recorded: {fanout * ms:.0f} ms "
          f"(x{fanout * ms / cmd_med:.1f} one command)")
    print(f"presence after kill -9 (socket closed by the kernel): offline in {killed * ms:.0f} ms; "
          f"ratio to the keepalive bound 1.5 x 20 s: {killed / 30:.5f}")
    print(f"presence after SIGSTOP (silent, keepalive {keepalive} s): offline in {frozen:.1f} s; bound 1.5 x "
          f"keepalive = {1.5 * keepalive:.1f} s (+ Mosquitto's keepalive sweep, about 6 s): ratio {frozen / (1.5 * keepalive):.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--gateways", type=int, default=200)
    parser.add_argument("--commands", type=int, default=300)
    parser.add_argument("--full", action="store_true", help="frozen agent with the shipped 20 s keepalive")
    parser.add_argument("--fleet-child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--state", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)
    if args.fleet_child:
        asyncio.run(fleet(args.port, args.gateways, args.state))
        return
    with tempfile.TemporaryDirectory(prefix="bench-mqtt-") as tmp:
        asyncio.run(main_async(args, Path(tmp)))


if __name__ == "__main__":
    main()
