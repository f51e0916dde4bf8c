"""Cellular: the bytes a 23-lamp cabinet's uplink carries in a day, with and without report-by-exception.

Everything real but the clock: `citygate-sim lamps` (23 LC100 controllers), `citygate-agent`'s
Agent polling them over Modbus TCP at the shipped settings (configs/gateways/dijon-cabinet.toml:
5 s poll, its lighting programme; the shipped register map and its report strategies), its
uploader over https to the real collector (aiohttp, SQLite store) served over TLS with a
certificate made here, and, with --control, its MQTT control link over TLS to Mosquitto. Each
cabinet's connections go through a counting TCP proxy written here: the figures are the bytes
that cross it (TCP payload both ways, so TLS records and handshakes, HTTP headers, MQTT
keep-alives and state messages included), plus an estimate of IP and TCP headers (52 bytes a
segment: the segments counted by the kernel on the proxy's side, large bodies cut at a 1448-byte
MSS as a cellular link would).

A day is compressed, not extrapolated: the agent runs in a child process whose clocks (time.time,
time.monotonic, the event loop's timers and the agent's Clock) run --speed times faster, as does
the lamp simulator and the collector's keep-alive timeout. So every timer the bytes depend on
(poll, report periods, batch age, MQTT keep-alive and state, the collector closing an idle
connection) keeps its ratio to the others; what the run covers (--hours, 24 by default) is
scaled to a day.

Cases (each a cabinet with its own agent, simulator and proxy, run side by side):
  every      every reading reported (`report = "every"` on each device): the same-run baseline
  exception  the shipped register map's report strategies
crossed with the batch ages (--batch-age) and encodings (--encoding) asked for.

    python bench/bench_uplink.py [--hours 24] [--speed 96] [--batch-age 0 --batch-age 300]
                                 [--encoding gzip --encoding zstd] [--control]
    python bench/bench_uplink.py --train-dictionary   # rewrites citygate_wire/zdict.py from a run's batches

Measured 2026-12-03 (2 shared cores under load; `--hours 24 --speed 24 --batch-age 300 --batch-age 900
--encoding gzip --encoding zstd --control`, the control link at its defaults: keep-alive 20 s, state
every 60 s), bytes per cabinet-day (TCP payload):
  every reading   gzip 300 s 7,762,116 | zstd 300 s 5,688,357 | gzip 900 s 7,302,007 | zstd 900 s 5,414,530
  report strategies gzip 300 s 1,407,224 | zstd 300 s 1,320,813 | gzip 900 s 1,239,010 | zstd 900 s 1,161,405
of which the MQTT link ~835,000 in every case and https 328,557 at zstd 900 s (0.072x every reading's
4,580,327). With `--mqtt-keepalive 300 --mqtt-state-interval 900` (2 h at 48x) the MQTT link costs
88,392: strategies + zstd + 900 s batches + that control link = 328,557 + 88,392 = 416,949 B a day,
under the 1 MB target; at the control link's defaults then (20 s / 60 s) it was not (1,161,405).

Measured 2026-12-04 (`--hours 24 --speed 96 --batch-age 900 --encoding zstd --control`, load 15-25 from
other work on the 2 cores), with the control link's new defaults (keep-alive 60 s, state every 300 s):
  report strategies 483,429 B/day (282,142 https + 201,287 mqtt), 842,697 with IP/TCP headers, 0.160x
  every reading's 3,022,874 (which the loaded agent polled only 54 % of: the ratio flatters it);
with `--mqtt-keepalive 120 --mqtt-state-interval 900`: 364,000 B/day (283,439 + 80,561), 580,944 with headers.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import math
import re
import selectors
import signal
import ssl
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
LAMPS = 23
SHIPPED = REPO / "configs" / "gateways" / "dijon-cabinet.toml"
MSS = 1448
HEADER = 52
DAY_S = 86_400
#: aiohttp's (and nginx's) default: an idle keep-alive connection is closed after this long
SERVER_KEEPALIVE_S = 75.0


# -- the agent child, in accelerated time -------------------------------------------------------------

def accelerate(speed: float, start_epoch: float) -> None:
    """From now on this process's wall clock starts at `start_epoch` and, with its monotonic clock, runs
    `speed` times faster. Done before the agent is imported, so whatever reads the time sees it."""
    real_mono = time.monotonic
    mono0 = real_mono()

    def monotonic() -> float:
        return mono0 + (real_mono() - mono0) * speed

    def wall() -> float:
        return start_epoch + (real_mono() - mono0) * speed

    time.monotonic = monotonic
    time.monotonic_ns = lambda: int(monotonic() * 1e9)
    time.time = wall
    time.time_ns = lambda: int(wall() * 1e9)


class ScaledSelector(selectors.EpollSelector):
    """The event loop computes its waits in accelerated seconds: wait that divided by the speed."""

    speed = 1.0

    def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
        return super().select(None if timeout is None else timeout / self.speed)


def run_agent_child(config: Path, speed: float, start_epoch: float, capture: Path | None) -> None:
    accelerate(speed, start_epoch)
    ScaledSelector.speed = speed
    if capture is not None:
        capture_bodies(capture)
    from edge_agent.agent import run_agent
    from edge_agent.clock import SystemClock
    from edge_agent.config import load_config
    from edge_agent.logs import setup_logging

    class ScaledClock(SystemClock):
        def now(self) -> dt.datetime:
            return dt.datetime.fromtimestamp(time.time(), dt.UTC)

    setup_logging("warning")
    cfg = load_config(config)
    with asyncio.Runner(loop_factory=lambda: asyncio.SelectorEventLoop(ScaledSelector())) as runner:
        runner.run(run_agent(cfg, ScaledClock()))


def capture_bodies(folder: Path) -> None:
    """Keep each batch's JSON as the uploader compresses it: the material of the shipped zstd dictionary."""
    from edge_agent import uploader

    compress = uploader.batch_body
    folder.mkdir(parents=True, exist_ok=True)
    count = iter(range(10**9))

    def capturing(compressor: Any, head: bytes, records: list[bytes]) -> bytes:
        (folder / f"{next(count):06d}.json").write_bytes(b"".join(uploader._pieces(head, records)))
        return compress(compressor, head, records)

    uploader.batch_body = capturing


# -- the counting proxy -----------------------------------------------------------------------------

@dataclass
class Count:
    up: int = 0  # gateway -> server, TCP payload
    down: int = 0
    connections: int = 0
    #: counted by the kernel on the gateway side while data flowed, then 4 to close (FIN and ACK each way)
    segments: int = 0
    extra_segments: int = 0  # a large write cut at a cellular link's MSS rather than loopback's 64 kB

    @property
    def payload(self) -> int:
        return self.up + self.down

    @property
    def ip(self) -> int:
        return self.payload + HEADER * (self.segments + self.extra_segments)


class CountingProxy:
    """Forwards every connection to `target`, counting what crosses."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.count = Count()
        self.port = 0
        self._server: asyncio.Server | None = None
        self._open: dict[asyncio.StreamWriter, int] = {}  # segments counted so far, by gateway-side connection

    async def start(self) -> int:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self.port

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.count.connections += 1
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.close()
            return
        self._open[writer] = 0
        try:
            await asyncio.gather(self._pump(reader, up_writer, writer, True),
                                 self._pump(up_reader, writer, writer, False))
        finally:
            self.count.segments += self._open.pop(writer) + 4
            for w in (writer, up_writer):
                w.close()

    def _segments(self, writer: asyncio.StreamWriter) -> None:
        """Note the segments the kernel has counted so far on the gateway's side (read while the socket is open)."""
        from edge_agent.uplink_usage import tcp_count

        sock = writer.get_extra_info("socket")
        got = tcp_count(sock) if sock is not None else None
        if got is not None and writer in self._open:
            self._open[writer] = got.segs_in + got.segs_out

    async def _pump(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, gateway: asyncio.StreamWriter,
                    up: bool) -> None:
        try:
            while data := await reader.read(65536):
                self._segments(gateway)
                if up:
                    self.count.up += len(data)
                else:
                    self.count.down += len(data)
                self.count.extra_segments += max(0, math.ceil(len(data) / MSS) - 1)
                writer.write(data)
                await writer.drain()
                self._segments(gateway)
        except (ConnectionError, OSError):
            pass
        finally:
            with contextlib.suppress(OSError, RuntimeError):
                writer.write_eof()

    def finish(self) -> None:
        """Count the segments of the connections still open (the MQTT link)."""
        for writer in list(self._open):
            self._segments(writer)
            self.count.segments += self._open.pop(writer)
        if self._server is not None:
            self._server.close()


# -- TLS --------------------------------------------------------------------------------------------

def make_certificates(folder: Path) -> tuple[Path, Path, Path]:
    """(root CA, server chain, server key): a P-256 leaf for 127.0.0.1 under an intermediate under a root, the
    shape of a public CA's (Let's Encrypt's ECDSA chain): the server sends leaf and intermediate, as in the field."""
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = dt.datetime.now(dt.UTC)

    def issue(subject: str, key: Any, issuer: str, issuer_key: Any, ca: bool) -> Any:
        builder = (x509.CertificateBuilder()
                   .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
                   .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer)]))
                   .public_key(key.public_key()).serial_number(x509.random_serial_number())
                   .not_valid_before(now - dt.timedelta(days=30)).not_valid_after(now + dt.timedelta(days=90))
                   .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
        if not ca:
            builder = builder.add_extension(x509.SubjectAlternativeName(
                [x509.DNSName("collector.citygate.test"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                critical=False)
        return builder.sign(issuer_key, hashes.SHA256())

    root_key, mid_key, leaf_key = (ec.generate_private_key(ec.SECP256R1()) for _ in range(3))
    root = issue("Bench Root X1", root_key, "Bench Root X1", root_key, True)
    mid = issue("Bench E1", mid_key, "Bench Root X1", root_key, True)
    leaf = issue("collector.citygate.test", leaf_key, "Bench E1", mid_key, False)
    pem = serialization.Encoding.PEM
    root_path, chain_path, key_path = folder / "root.pem", folder / "chain.pem", folder / "collector.key"
    root_path.write_bytes(root.public_bytes(pem))
    chain_path.write_bytes(leaf.public_bytes(pem) + mid.public_bytes(pem))
    key_path.write_bytes(leaf_key.private_bytes(pem, serialization.PrivateFormat.PKCS8,
                                                serialization.NoEncryption()))
    key_path.chmod(0o600)
    return root_path, chain_path, key_path


# -- the cabinets -----------------------------------------------------------------------------------

@dataclass
class Case:
    strategies: bool
    batch_age_s: float
    encoding: str
    gateway: str = ""
    token: str = ""
    folder: Path = Path()
    https: CountingProxy | None = None
    mqtt: CountingProxy | None = None
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)
    records: int = 0
    batches: int = 0
    bodies: list[bytes] = field(default_factory=list)

    @property
    def label(self) -> str:
        return (f"{'exception' if self.strategies else 'every    '}  {self.encoding:4}  batch age"
                f" {self.batch_age_s:>4.0f} s")


def cabinet_config(case: Case, sim_port: int, ca: Path, speed: float, args: argparse.Namespace) -> str:
    """dijon-cabinet.toml's bus and lighting settings, for 23 lamps; the uplink through the proxy."""
    import tomllib

    shipped = tomllib.loads(SHIPPED.read_text())
    bus = shipped["bus"][0]
    regmap = (SHIPPED.parent / bus["device"][0]["register_map"]).resolve()
    every = 'report = "every"\n' if not case.strategies else ""
    devices = "".join(f"""
[[bus.device]]
id = "lamp-{n:03d}"
unit = {n}
register_map = "{regmap}"
rated_power_w = {60 if n <= 14 else 90}
{every}""" for n in range(1, LAMPS + 1))
    light = shipped["lighting"]
    programs = [str((SHIPPED.parent / p).resolve()) for p in light["programs"]]
    groups = {"rue-de-la-liberte": (1, 14, 60), "place-darcy": (15, LAMPS, 90)}
    group_text = "".join(f"""
[[lighting.group]]
name = "{name}"
lamps = {[f"lamp-{n:03d}" for n in range(a, b + 1)]!r}
calendar = "dijon"
rated_power_w = {w}
""" for name, (a, b, w) in groups.items())
    assert case.https is not None
    mqtt = ""
    if args.control and case.mqtt is not None:
        mqtt = f"""
[mqtt]
url = "mqtts://127.0.0.1:{case.mqtt.port}"
ca_file = "{ca}"
username = "{case.gateway}"
password = "bench"
timeout_s = {min(120.0, 2.5 * speed)}
"""
        if args.mqtt_keepalive:
            mqtt += f"keepalive_s = {args.mqtt_keepalive}\n"
        if args.mqtt_state_interval:
            mqtt += f"state_interval_s = {args.mqtt_state_interval}\n"
    # timeouts are not byte settings: stretched so that the accelerated clock does not cut a reply short
    return f"""
[gateway]
id = "{case.gateway}"
commune = "{shipped['gateway']['commune']}"
state_dir = "{case.folder / 'state'}"

[uplink]
url = "https://127.0.0.1:{case.https.port}"
token = "{case.token}"
ca_file = "{ca}"
timeout_s = {min(600.0, 15 * speed)}
batch_max_age_s = {case.batch_age_s}
encoding = "{case.encoding}"

[local_api]
socket = "{case.folder / 'agent.sock'}"

[[bus]]
name = "{bus['name']}"
type = "{bus['type']}"
host = "127.0.0.1"
port = {sim_port}
interval_s = {bus['interval_s']}
timeout_s = {min(bus['interval_s'] / 2, bus['timeout_s'] * speed / 10)}
{devices}
[lighting]
programs = {programs!r}
timezone = "{light['timezone']}"
latitude = {light['latitude']}
longitude = {light['longitude']}
report_interval_s = {light['report_interval_s']}
{group_text}{mqtt}"""


def start_sim(speed: float, folder: Path) -> tuple[subprocess.Popen[bytes], int]:
    regmap = REPO / "configs" / "registermaps" / "lamp-lc100.toml"
    log = (folder / "sim.log").open("wb")
    from simulators.procs import bin_path

    proc = subprocess.Popen([bin_path("citygate-sim"), "lamps", "--tcp", "127.0.0.1:0",
                             "--units", f"1-{LAMPS}", "--register-map", str(regmap), "--level", "0",
                             "--speed", str(speed)], stdout=log, stderr=subprocess.STDOUT, cwd=REPO,
                            start_new_session=True)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        m = re.search(r"on modbus-tcp 127\.0\.0\.1:(\d+)", (folder / "sim.log").read_text())
        if m:
            return proc, int(m.group(1))
        if proc.poll() is not None:
            break
        time.sleep(0.1)
    raise RuntimeError(f"lamp simulator did not start: {(folder / 'sim.log').read_text()}")


# -- the run ----------------------------------------------------------------------------------------

async def serve_collector(folder: Path, cert: Path, key: Path, speed: float,
                          cases: list[Case]) -> tuple[int, Callable[[], Any]]:
    from aiohttp import web

    from collector.app import create_app
    from collector.appkeys import INGEST_LISTENERS
    from collector.store_sqlite import SqliteStore
    from collector.tokens import hash_token, new_token

    store = SqliteStore(folder / "collector.db")
    await store.__aenter__()
    by_name = {}
    for i, case in enumerate(cases):
        case.gateway = f"gw-bench-{i:02d}"
        case.token = new_token()
        await store.add_gateway(case.gateway, "21231", hash_token(case.token))
        by_name[case.gateway] = case
    # a 0-day tolerance would refuse nothing here: the agents' clocks run behind the collector's
    app = create_app(store)

    def listener(gateway: Any, batch: Any, result: Any) -> None:
        case = by_name[gateway.name]
        case.records += len(batch.records)
        case.batches += 1

    app[INGEST_LISTENERS].append(listener)
    tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    tls.load_cert_chain(cert, key)
    runner = web.AppRunner(app, auto_decompress=False, access_log=None, keepalive_timeout=SERVER_KEEPALIVE_S / speed)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=tls)
    await site.start()
    port = runner.addresses[0][1]

    async def close() -> None:
        await runner.cleanup()
        await store.__aexit__(None, None, None)

    return port, close


def start_broker(folder: Path, cert: Path, key: Path) -> Any:
    from simulators.mosquitto import Mosquitto, TlsFiles

    broker = Mosquitto(folder / "mosquitto", tls=TlsFiles(cert, key), persistence=False)
    broker.start()
    return broker


async def run(args: argparse.Namespace, folder: Path) -> list[Case]:
    root, cert, key = make_certificates(folder)
    cases = [Case(strategies, age, enc) for strategies in (False, True) for age in args.batch_age
             for enc in args.encoding]
    collector_port, close = await serve_collector(folder, cert, key, args.speed, cases)
    broker = start_broker(folder, cert, key) if args.control else None
    start_epoch = time.time() - args.hours * 3600 - 600
    try:
        for i, case in enumerate(cases):
            case.folder = folder / f"cabinet-{i:02d}"
            case.folder.mkdir()
            case.https = CountingProxy(("127.0.0.1", collector_port))
            await case.https.start()
            if broker is not None:
                case.mqtt = CountingProxy(("127.0.0.1", broker.port))
                await case.mqtt.start()
            sim, sim_port = start_sim(args.speed, case.folder)
            case.procs.append(sim)
            config = case.folder / "agent.toml"
            config.write_text(cabinet_config(case, sim_port, root, args.speed, args))
            log = (case.folder / "agent.log").open("wb")
            capture = ["--capture", str(case.folder / "bodies")] if args.train_dictionary else []
            case.procs.append(subprocess.Popen(
                [sys.executable, __file__, "--child-agent", str(config), "--speed", str(args.speed),
                 "--start-epoch", str(start_epoch), *capture], stdout=log, stderr=subprocess.STDOUT, cwd=REPO,
                start_new_session=True))
        real_s = args.hours * 3600 / args.speed
        print(f"{len(cases)} cabinets of {LAMPS} lamps, {args.hours:g} h at {args.speed:g}x: {real_s:.0f} s",
              flush=True)
        t0 = time.monotonic()
        while (left := real_s - (time.monotonic() - t0)) > 0:
            await asyncio.sleep(min(left, 30))
            for case in cases:
                if case.procs[-1].poll() is not None:
                    raise RuntimeError(f"agent of {case.label} exited:\n{(case.folder / 'agent.log').read_text()}")
    finally:
        for case in cases:
            for proc in reversed(case.procs):
                if proc.poll() is None:
                    proc.send_signal(signal.SIGTERM)
            for proc in case.procs:
                try:
                    proc.wait(20)
                except subprocess.TimeoutExpired:
                    proc.kill()
        await asyncio.sleep(0.5)
        for case in cases:
            for proxy in (case.https, case.mqtt):
                if proxy is not None:
                    proxy.finish()
        if broker is not None:
            broker.stop()
        await close()
    return cases


def per_day(n: float, hours: float) -> float:
    return n * 24 / hours


TARGET = 1_000_000


def report(cases: list[Case], args: argparse.Namespace) -> None:
    h = args.hours
    mqtt_settings = ("" if not args.control else
                     f"; MQTT keepalive {args.mqtt_keepalive or 'default'} s, state every"
                     f" {args.mqtt_state_interval or 'default'} s")
    print(f"per cabinet-day ({LAMPS} lamps, 5 s poll, shipped lamp-lc100 map; {h:g} h simulated at {args.speed:g}x,"
          f" scaled by 24/{h:g}{mqtt_settings}); bytes that cross the counting proxy (TCP payload: TLS, HTTP,"
          f" MQTT included); ratio to every reading sent at the same batching and encoding")
    baseline: dict[tuple[float, str], float] = {}
    for case in cases:
        assert case.https is not None
        https = case.https.count
        mqtt = case.mqtt.count if case.mqtt is not None else Count()
        total = per_day(https.payload + mqtt.payload, h)
        ip = per_day(https.ip + mqtt.ip, h)
        key = (case.batch_age_s, case.encoding)
        if not case.strategies:
            baseline[key] = total
        ratio = f"{total / baseline[key]:.3f}x every" if case.strategies and baseline.get(key) else "baseline"
        print(f"  {case.label}: {total:>12,.0f} B/day ({ratio}); with IP/TCP headers {ip:,.0f};"
              f" https {per_day(https.payload, h):,.0f} in {per_day(case.batches, h):,.0f} POSTs,"
              f" {per_day(https.connections, h):,.0f} connections; mqtt {per_day(mqtt.payload, h):,.0f};"
              f" {per_day(case.records, h):,.0f} records")
    polls = LAMPS * DAY_S / 5
    for case in cases:
        if not case.strategies:
            print(f"  every reading, {case.encoding} {case.batch_age_s:g} s: {per_day(case.records, h):,.0f} records a day"
                  f" for {polls:,.0f} polls ({per_day(case.records, h) / polls:.1%}: polls the accelerated agent kept up)")
            break
    best = min((c for c in cases if c.strategies), key=lambda c: per_day(c.https.count.payload, h) if c.https else 0)
    assert best.https is not None
    https_best = per_day(best.https.count.payload, h)
    mqtt_best = per_day(best.mqtt.count.payload, h) if best.mqtt else 0
    print(f"target <= {TARGET:,} B per cabinet-day: best with strategies is {best.label.strip()}:"
          f" {https_best + mqtt_best:,.0f} B ({https_best:,.0f} https + {mqtt_best:,.0f} mqtt):"
          f" {'met' if https_best + mqtt_best <= TARGET else 'NOT met'}")


DICTIONARY_SIZES = (4096, 8192, 16384, 32768)


def train_dictionary(cases: list[Case], dict_id: int) -> None:
    """Train on the first half of each cabinet's batches, compare on the second half, write the best size."""
    import base64
    import zlib

    import zstandard

    from citygate_wire.compression import ZSTD_LEVEL

    train: list[bytes] = []
    held: dict[str, list[bytes]] = {}
    for case in cases:
        bodies = [f.read_bytes() for f in sorted((case.folder / "bodies").glob("*.json"))]
        train += bodies[: len(bodies) // 2]
        held.setdefault("exception" if case.strategies else "every", []).extend(bodies[len(bodies) // 2:])

    def gz(b: bytes) -> int:
        c = zlib.compressobj(6, zlib.DEFLATED, 31)
        return len(c.compress(b) + c.flush())

    plain = zstandard.ZstdCompressor(level=ZSTD_LEVEL)
    print(f"dictionary: {len(train)} batches to train on, held out:", "; ".join(
        f"{kind} {len(bodies)} batches, {sum(map(len, bodies)):,} B of JSON, gzip {sum(map(gz, bodies)):,} B,"
        f" zstd {ZSTD_LEVEL} {sum(len(plain.compress(b)) for b in bodies):,} B" for kind, bodies in held.items()))
    best: tuple[int, Any] | None = None
    for size in DICTIONARY_SIZES:
        d = zstandard.train_dictionary(size, list[Any](train), dict_id=dict_id, level=ZSTD_LEVEL)
        c = zstandard.ZstdCompressor(level=ZSTD_LEVEL, dict_data=d)
        sizes = {kind: sum(len(c.compress(b)) for b in bodies) for kind, bodies in held.items()}
        print(f"  with a dictionary of {size:>6,} B:", "; ".join(
            f"{kind} {n:,} B ({n / sum(map(gz, held[kind])):.3f}x gzip)" for kind, n in sizes.items()))
        total = sizes.get("exception", sum(sizes.values()))  # what the field sends: the strategies' batches
        if best is None or total < best[0] * 0.97:  # a larger dictionary must earn 3 %
            best = (total, d)
    assert best is not None
    chosen = best[1].as_bytes()
    encoded = base64.b85encode(chosen).decode()
    lines = "\n".join(f'    "{encoded[i:i + 100]}"' for i in range(0, len(encoded), 100))
    target = REPO / "citygate_wire" / "zdict.py"
    target.write_text(ZDICT_TEMPLATE.format(dict_id=dict_id, lines=lines, size=len(chosen), batches=len(train)))
    print(f"wrote {target.relative_to(REPO)}: dictionary {dict_id} of {len(chosen):,} B")


ZDICT_TEMPLATE = '''"""The zstd dictionaries of upload bodies (citygate_wire.compression), by the id a frame names.

Generated by `python bench/bench_uplink.py --train-dictionary` from {batches} batches of simulated
23-lamp cabinets (every reading, and the shipped report strategies), measured on as many others.
A dictionary, once shipped, is never changed (a gateway may still send frames naming it); a new one
gets a new id, is added to DICTIONARIES, and becomes DICTIONARY_ID once every collector holds it.
"""

from __future__ import annotations

import base64

DICTIONARY_ID = {dict_id}
#: {size} bytes
DICTIONARY = base64.b85decode(
{lines}
)
DICTIONARIES: dict[int, bytes] = {{DICTIONARY_ID: DICTIONARY}}
'''


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--hours", type=float, default=24.0, help="simulated hours (default a day)")
    parser.add_argument("--speed", type=float, default=96.0, help="simulated seconds per real second")
    parser.add_argument("--batch-age", type=float, action="append", help="uplink batch_max_age_s (repeatable)")
    parser.add_argument("--encoding", action="append", choices=("gzip", "zstd"), help="uplink encoding (repeatable)")
    parser.add_argument("--control", action="store_true", help="with the MQTT control link (TLS, Mosquitto)")
    parser.add_argument("--mqtt-keepalive", type=int, help="[mqtt] keepalive_s (default: the control link's)")
    parser.add_argument("--mqtt-state-interval", type=float, help="[mqtt] state_interval_s (default: the control link's)")
    parser.add_argument("--keep", action="store_true", help="keep the run's folder and print it")
    parser.add_argument("--train-dictionary", action="store_true",
                        help="keep the batches' JSON, train a zstd dictionary on the first half of the run, measure it"
                             " on the second half, and write citygate_wire/zdict.py")
    parser.add_argument("--dictionary-id", type=int, default=0x63670002, help="the new dictionary's id")
    parser.add_argument("--child-agent", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--capture", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--start-epoch", type=float, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child_agent:
        run_agent_child(args.child_agent, args.speed, args.start_epoch, args.capture)
        return
    args.batch_age = args.batch_age or [0.0, 300.0]
    args.encoding = args.encoding or ["gzip"]
    sys.path.insert(0, str(REPO))
    folder = Path(tempfile.mkdtemp(prefix="bench-uplink-"))
    cases = asyncio.run(run(args, folder))
    report(cases, args)
    if args.train_dictionary:
        train_dictionary(cases, args.dictionary_id)
    if args.keep:
        print(f"run folder: {folder}")
    else:
        import shutil

        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
