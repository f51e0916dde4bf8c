"""A GNSS receiver driving along a route, writing NMEA 0183 (GGA, GSA, RMC, VTG) into a pty once an epoch.

The route is a list of points (lat, lon, optional name) or a GPX file (its track, route or
waypoints, in that order of preference). The vehicle drives at `speed_kmh` from point to point
and, on a round, waits `stop_s` at every named point (a refuse truck emptying the bins of a
street). One epoch is one second of GNSS time; `period_s` is the real time between epochs (1.0 is
the receiver's 1 Hz; tests run faster, and the time the sentences carry still moves by 1 s).

Faults, each for a number of epochs (`inject(kind, epochs)`):
- `no-fix`: RMC status V, GGA quality 0, GSA fix type 1, no position;
- `bad-checksum`: every sentence with a wrong checksum;
- `jump`: the position reported kilometres away (the vehicle itself drives on);
- `tunnel`: nothing at all is written;
- `cold-start`: no time and no fix, then a few low-quality fixes (3 satellites, HDOP 9) before a good one.

`IoModule` is the vehicle's Modbus TCP I/O module: one input register (and the same holding
register) whose bits are the digital inputs (ignition, bin lift ...).

    async with GpsReceiver(route, period_s=0.05) as gps:
        ... open gps.port at 9600 8N1 ...
        gps.inject("tunnel", 30)
"""

from __future__ import annotations

import asyncio
import datetime as _dt
import math
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

import click

from drivers.gnss.nmea import KNOT_KMH, encode
from drivers.gnss.track import distance_m
from simulators.pty import LINK_OPTION, RUN_OPTION, PtyPair, serve_on_pty

FAULTS = ("no-fix", "bad-checksum", "jump", "tunnel", "cold-start")
JUMP_DEG = 0.05  # about 5.5 km north: a multipath or a receiver glitch
COLD_LOW_EPOCHS = 3  # low-quality fixes at the end of a cold start


@dataclass(frozen=True, slots=True)
class Point:
    lat: float
    lon: float
    name: str | None = None


def load_gpx(path: Path) -> list[Point]:
    """The track points of a GPX file, or its route points, or its waypoints (ValueError if none)."""
    try:
        root = ET.parse(path).getroot()
    except ET.ParseError as exc:
        raise ValueError(f"{path}: not XML ({exc})") from None
    for tag in ("trkpt", "rtept", "wpt"):
        found = [e for e in root.iter() if e.tag.rsplit("}", 1)[-1] == tag]
        if found:
            points = []
            for e in found:
                name = next((c.text for c in e if c.tag.rsplit("}", 1)[-1] == "name"), None)
                points.append(Point(float(e.attrib["lat"]), float(e.attrib["lon"]), name))
            return points
    raise ValueError(f"{path}: no trkpt, rtept or wpt")


def _dm(value: float, degree_digits: int, hemis: str) -> tuple[str, str]:
    a = abs(value)
    deg = int(a)
    minutes = (a - deg) * 60
    if round(minutes, 5) >= 60:
        deg, minutes = deg + 1, 0.0
    return f"{deg:0{degree_digits}d}{minutes:08.5f}", hemis[0] if value >= 0 else hemis[1]


def sentences(talker: str, when: _dt.datetime | None, pos: tuple[float, float] | None, *, speed_kmh: float,
              course: float, satellites: int, hdop: float, altitude_m: float = 245.0) -> list[str]:
    """The bodies of one epoch's GGA, GSA, RMC and VTG (`pos` None: no fix; `when` None: no time either)."""
    t = when.strftime("%H%M%S.") + f"{when.microsecond // 10000:02d}" if when else ""
    d = when.strftime("%d%m%y") if when else ""
    kn = speed_kmh / KNOT_KMH
    if pos is None:
        return [f"{talker}GGA,{t},,,,,0,00,99.99,,,,,,", f"{talker}GSA,A,1,,,,,,,,,,,,,99.99,99.99,99.99",
                f"{talker}RMC,{t},V,,,,,,,{d},,,N", f"{talker}VTG,,T,,M,,N,,K,N"]
    lat, ns = _dm(pos[0], 2, "NS")
    lon, ew = _dm(pos[1], 3, "EW")
    used = [f"{p:02d}" for p in range(1, min(satellites, 12) + 1)]
    prns = ",".join(used + [""] * (12 - len(used)))
    return [
        f"{talker}GGA,{t},{lat},{ns},{lon},{ew},1,{satellites:02d},{hdop:.1f},{altitude_m:.1f},M,47.6,M,,",
        f"{talker}GSA,A,3,{prns},{hdop * 1.6:.1f},{hdop:.1f},{hdop * 1.2:.1f}",
        f"{talker}RMC,{t},A,{lat},{ns},{lon},{ew},{kn:.2f},{course:.1f},{d},,,A",
        f"{talker}VTG,{course:.1f},T,,M,{kn:.2f},N,{speed_kmh:.2f},K,A",
    ]


class Route:
    """Where the vehicle is after each second: along the points at `speed_kmh`, `stop_s` at named points."""

    def __init__(self, points: Sequence[Point], speed_kmh: float, stop_s: int, loop: bool) -> None:
        if len(points) < 2:
            raise ValueError("a route needs at least two points")
        # a round drives back from its last point to its first
        self.points = list(points) + ([points[0]] if loop and points[0] != points[-1] else [])
        self.speed_ms = speed_kmh / 3.6
        self.stop_s = stop_s
        self.loop = loop
        self.leg = 0
        self.along = 0.0
        self.waiting = 0
        self.finished = False
        self.course = 0.0

    @property
    def position(self) -> tuple[float, float]:
        a, b = self.points[self.leg], self.points[min(self.leg + 1, len(self.points) - 1)]
        length = distance_m(a.lat, a.lon, b.lat, b.lon)
        f = 0.0 if length == 0 else min(1.0, self.along / length)
        return a.lat + (b.lat - a.lat) * f, a.lon + (b.lon - a.lon) * f

    @property
    def speed_kmh(self) -> float:
        return 0.0 if self.waiting or self.finished else self.speed_ms * 3.6

    def step(self) -> None:
        """One second later."""
        if self.finished:
            return
        if self.waiting:
            self.waiting -= 1
            return
        left = self.speed_ms
        while left > 0 and not self.finished:
            a, b = self.points[self.leg], self.points[self.leg + 1]
            length = distance_m(a.lat, a.lon, b.lat, b.lon)
            self.course = math.degrees(math.atan2(
                math.radians(b.lon - a.lon) * math.cos(math.radians(a.lat)), math.radians(b.lat - a.lat))) % 360
            if self.along + left < length:
                self.along += left
                return
            left -= length - self.along
            self.leg, self.along = self.leg + 1, 0.0
            if self.points[self.leg].name and self.stop_s:
                self.waiting = self.stop_s
                left = 0
            if self.leg == len(self.points) - 1:
                if self.loop:
                    self.leg = 0
                else:
                    self.finished = True


class GpsReceiver:
    def __init__(self, route: Sequence[Point] | Path, *, speed_kmh: float = 30.0, stop_s: int = 0,
                 period_s: float = 1.0, start: _dt.datetime | None = None, talker: str = "GN",
                 satellites: int = 9, hdop: float = 0.9, loop: bool = False, link: Path | None = None) -> None:
        points = load_gpx(route) if isinstance(route, Path) else list(route)
        self.route = Route(points, speed_kmh, stop_s, loop)
        self.period_s = period_s
        self.time = (start or _dt.datetime.now(_dt.UTC)).replace(microsecond=0)
        self.talker = talker
        self.satellites, self.hdop = satellites, hdop
        self._faults: dict[str, int] = {}
        self._cold = 0
        self.epochs = 0
        self.written: dict[str, int] = {f: 0 for f in ("sentences", *FAULTS)}
        self._link = link
        self._pty: PtyPair | None = None
        self._task: asyncio.Task[None] | None = None
        self._tick = asyncio.Event()

    @property
    def port(self) -> str:
        if self._pty is None:
            raise RuntimeError("the receiver is not running: use `async with GpsReceiver(...)`")
        return self._pty.port

    def inject(self, kind: str, epochs: int = 10) -> None:
        """Start fault `kind` for `epochs` epochs (a cold start: that many without a fix, then a few poor ones)."""
        if kind not in FAULTS:
            raise ValueError(f"unknown fault {kind!r}; known: {', '.join(FAULTS)}")
        self._faults[kind] = epochs
        if kind == "cold-start":
            self._cold = epochs + COLD_LOW_EPOCHS

    def park(self) -> None:
        """Stop where the vehicle is and stay there (the receiver keeps sending its fixes)."""
        self.route.finished = True

    def active(self) -> set[str]:
        return {k for k, n in self._faults.items() if n > 0}

    def epoch(self) -> bytes:
        """The bytes of the next epoch (and move on by one second)."""
        faults = self.active()
        for k in faults:
            self._faults[k] -= 1
            self.written[k] += 1
        when: _dt.datetime | None = self.time
        pos: tuple[float, float] | None = self.route.position
        sats, hdop = self.satellites, self.hdop
        if "cold-start" in faults:
            when = pos = None
        elif self._cold > 0:
            sats, hdop = 3, 9.0
        self._cold = max(0, self._cold - 1)
        if "no-fix" in faults:
            pos = None
        if "jump" in faults and pos is not None:
            pos = (pos[0] + JUMP_DEG, pos[1])
        out = b""
        if "tunnel" not in faults:
            for body in sentences(self.talker, when, pos, speed_kmh=self.route.speed_kmh, course=self.route.course,
                                  satellites=sats, hdop=hdop):
                line = encode(body)
                if "bad-checksum" in faults:
                    line = line[:-4] + (b"00" if line[-4:-2] != b"00" else b"FF") + b"\r\n"
                out += line
                self.written["sentences"] += 1
        self.time += _dt.timedelta(seconds=1)
        self.route.step()
        self.epochs += 1
        return out

    async def wait_epochs(self, n: int) -> None:
        """Return after `n` more epochs were written."""
        target = self.epochs + n
        while self.epochs < target:
            self._tick.clear()
            await self._tick.wait()

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        next_at = loop.time()
        # faster than 100 epochs a second, several epochs go in one write every 10 ms (a timer is not finer)
        per_tick = max(1, int(0.01 / self.period_s))
        while True:
            data = b"".join(self.epoch() for _ in range(per_tick))
            if data and self._pty is not None:
                self._pty.write(data)
            self._tick.set()
            next_at += self.period_s * per_tick
            await asyncio.sleep(max(0.0, next_at - loop.time()))

    async def __aenter__(self) -> GpsReceiver:
        self._pty = PtyPair(self._link)
        self._task = asyncio.create_task(self._run())
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        if self._pty is not None:
            self._pty.close()
            self._pty = None


class IoModule:
    """A Modbus TCP I/O module: `inputs` (bit n = digital input n) answered to FC3 and FC4 at register 0."""

    def __init__(self, unit: int = 1) -> None:
        self.unit = unit
        self.inputs = 0
        self.requests = 0
        self._server: asyncio.Server | None = None
        self._conns: set[asyncio.StreamWriter] = set()

    def set_input(self, bit: int, on: bool) -> None:
        self.inputs = self.inputs | 1 << bit if on else self.inputs & ~(1 << bit)

    async def start(self, port: int = 0) -> int:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", port)
        return int(self._server.sockets[0].getsockname()[1])

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        from pymodbus.constants import ExcCodes
        from pymodbus.framer import FramerSocket
        from pymodbus.pdu import DecodePDU, ExceptionResponse, ModbusPDU
        from pymodbus.pdu.register_message import ReadHoldingRegistersResponse, ReadInputRegistersResponse

        self._conns.add(writer)
        framer, buf = FramerSocket(DecodePDU(True)), b""
        try:
            while data := await reader.read(1024):
                buf += data
                used, pdu = framer.handleFrame(buf, 0, 0)
                buf = buf[used:]
                if pdu is None:
                    continue
                self.requests += 1
                kinds: dict[int, Any] = {3: ReadHoldingRegistersResponse, 4: ReadInputRegistersResponse}
                addr, count = getattr(pdu, "address", 0), getattr(pdu, "count", 0)
                answer: ModbusPDU
                if pdu.dev_id != self.unit or pdu.function_code not in kinds:
                    answer = ExceptionResponse(pdu.function_code, ExcCodes.ILLEGAL_FUNCTION)
                elif addr != 0 or count != 1:
                    answer = ExceptionResponse(pdu.function_code, ExcCodes.ILLEGAL_ADDRESS)
                else:
                    answer = kinds[pdu.function_code](registers=[self.inputs])
                answer.dev_id, answer.transaction_id = pdu.dev_id, pdu.transaction_id
                writer.write(framer.buildFrame(answer))
        except (ConnectionError, OSError):
            pass
        finally:
            self._conns.discard(writer)
            writer.close()

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            for w in list(self._conns):
                w.close()
            await self._server.wait_closed()
            self._server = None


def _parse_points(text: str) -> list[Point]:
    points = []
    for part in text.split(";"):
        bits = part.strip().split(",")
        if len(bits) not in (2, 3):
            raise click.BadParameter(f"{part!r}: expected LAT,LON or LAT,LON,NAME")
        try:
            points.append(Point(float(bits[0]), float(bits[1]), bits[2].strip() if len(bits) == 3 else None))
        except ValueError:
            raise click.BadParameter(f"{part!r}: LAT and LON are numbers") from None
    return points


#: a round in Dijon's centre (rue de la Liberté to place de la République), the default route
DIJON_ROUND = [
    Point(47.32190, 5.04150, "Rue de la Liberté"), Point(47.32290, 5.03800, "Place Darcy"),
    Point(47.32470, 5.03980, "Boulevard de Sévigné"), Point(47.32600, 5.04450, "Rue de la Préfecture"),
    Point(47.32660, 5.04830, "Place de la République"),
]


@click.command("gps")
@click.option("--route", "route_text", default=None, help="Points LAT,LON[,NAME];LAT,LON[,NAME]... (default: a Dijon round).")
@click.option("--gpx", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="A GPX file: its track, route or waypoints.")
@click.option("--speed", "speed_kmh", type=click.FloatRange(1, 200), default=30.0, show_default=True, help="km/h.")
@click.option("--stop", "stop_s", type=click.IntRange(0, 3600), default=20, show_default=True,
              help="Seconds waited at each named point.")
@click.option("--period", "period_s", type=click.FloatRange(0.01, 10), default=1.0, show_default=True,
              help="Real seconds between epochs (1 Hz receiver: 1).")
@click.option("--talker", type=click.Choice(["GP", "GN", "GL", "GA"]), default="GN", show_default=True)
@click.option("--fault", "faults", multiple=True, metavar="KIND@EPOCH:COUNT",
              help=f"Inject KIND ({', '.join(FAULTS)}) at epoch EPOCH for COUNT epochs; repeatable.")
@LINK_OPTION
@RUN_OPTION
def gps_command(route_text: str | None, gpx: Path | None, speed_kmh: float, stop_s: int, period_s: float,
                talker: str, faults: tuple[str, ...], link: Path | None, run_s: float | None) -> None:
    """A GNSS receiver writing NMEA along a route into a pty."""
    points: list[Point] | Path = gpx if gpx else (_parse_points(route_text) if route_text else DIJON_ROUND)
    plan = [_parse_fault(f) for f in faults]

    def make() -> GpsReceiver:
        gps = GpsReceiver(points, speed_kmh=speed_kmh, stop_s=stop_s, period_s=period_s, talker=talker,
                          loop=True, link=link)
        if plan:
            asyncio.get_running_loop().create_task(_play(gps, plan))
        return gps

    serve_on_pty(make, "GNSS receiver (NMEA 0183, 9600 8N1)", link, run_s)


def _parse_fault(text: str) -> tuple[str, int, int]:
    try:
        kind, rest = text.split("@")
        at, count = rest.split(":")
        if kind not in FAULTS:
            raise ValueError
        return kind, int(at), int(count)
    except ValueError:
        raise click.BadParameter(f"{text!r}: expected KIND@EPOCH:COUNT, KIND one of {', '.join(FAULTS)}") from None


async def _play(gps: GpsReceiver, plan: list[tuple[str, int, int]]) -> None:
    for kind, at, count in sorted(plan, key=lambda p: p[1]):
        await gps.wait_epochs(max(0, at - gps.epochs))
        gps.inject(kind, count)
        click.echo(f"epoch {gps.epochs}: {kind} for {count} epochs")
