"""The city's other assets at the wire level: signalised junctions, cameras, service vehicles and
on-street parking, in the record formats the real drivers journal and the collector reads.

Each is planned over the territory's communes in proportion to their population and attached to a
gateway of simulators.city, which journals and uploads their records with its lamps':

- a **junction** (drivers/traffic/README.md) is a `signals-<junction>` bus on a cabinet gateway: one
  sample per detector and counting interval (device `<bus>.<detector>`, citygate_wire.traffic's
  values, the day profile of simulators.traffic_demand: rush hours at 08:00 and 17:30 on weekdays),
  a sample of the controller's state (`mode`, `plan`, `stage` ...) each sampling round, detector
  faults (`detector_stuck_off`/`_on` and their `_restored`, flagged in the samples'
  `detector_fault`), signal lamp failures (`lamp_failure` major, `lamp_failure_cleared`) and
  controller failures (`hardware_error` critical: the controller flashes amber until
  `hardware_error_cleared`);
- a **camera** (drivers/cameras/README.md) is a device of the cabinet's `cameras` bus:
  `camera_identified` at the gateway's first round, a health sample every `camera_sample_s`
  (`reachable`, `streams`, `streams_ok`, `clock_drift_s`, identity), `camera_unreachable` (major) and
  its `_cleared`, `cameras_dark` (critical, device `cameras`) when a cabinet's camera switch fails,
  `camera_stream_unavailable`;
- a **service vehicle** (drivers/gnss/README.md, collector/vehicles/README.md) is a gateway of its
  own (`gw-<vehicle>`, no cabinet) with a `gps` device: in its service's working hours it drives
  trips from its depot along a grid of streets in its commune (`streets()`: loaded into the
  collector's streets table), with thinned positions (`latitude_deg`, `longitude_deg`, `speed_kmh`
  ...: at each turn and every 60 s), `trip_started`/`trip_ended`, and on a refuse truck a `bin_lift`
  at each stop; police vehicles patrol longer, faster and stop rarely;
- a **parking space** (drivers/lorawan, collector/parking/README.md) is a sensor heard by one cabinet
  gateway a commune: `parking_state` samples at each change (`uplink` `status`), a heartbeat every
  `parking_heartbeat_s`, occupancy following simulators.parking's day profile, sensors going silent
  (`sensor_silent`, state `unknown`; `sensor_back`). The collector learns the spaces from an
  inventory (`write_parking_inventory`: one TOML file a commune, $CITYGATE_PARKING).
"""

from __future__ import annotations

import math
import random
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from citygate_wire import traffic as wire
from simulators.traffic_demand import DemandModel, Lane


class Gateway(Protocol):
    """What an asset needs of the simulated gateway it is attached to (simulators.city.Gateway)."""

    city: Any  # its City: `rates` (simulators.city.Rates) and `counters`

    def _record(self, rec: dict[str, Any]) -> None: ...

    def event(self, device: str, ts: int, code: str, severity: str = "info", **detail: Any) -> None: ...

PARIS = ZoneInfo("Europe/Paris")
YEAR_S = 365.25 * 86400
HOUR_MS = 3_600_000
SERVICES = ("police", "waste")
CAMERA_MODELS = (("Axis", "P1455-LE", "10.12.182"), ("Hanwha", "XNO-6080R", "2.21.00"),
                 ("Bosch", "DINION 5100i", "9.00.0115"))
ZONES = (("blue_zone", 90), ("pay_zone", 120), ("delivery_bay", 30), ("disabled_bay", None))
SENSOR_MODELS = ("bosch-pls", "nwave-nps4")
#: a street grid's spacing (degrees): about 220 m both ways at the territory's latitude
GRID_DLAT, GRID_DLON = 0.002, 0.003


# -- the plan ---------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Detector:
    id: str
    approach: str
    lane: int
    lane_count: bool = True  # False: a speed pair's second loop
    speed: bool = False  # the first loop of a speed pair: speed and length classes
    morning: bool = True  # inbound: leans to the morning peak
    peak_veh_h: float = 600.0


@dataclass(frozen=True, slots=True)
class Junction:
    id: str
    detectors: tuple[Detector, ...]

    @property
    def bus(self) -> str:
        return f"signals-{self.id}"


@dataclass(frozen=True, slots=True)
class Grid:
    """A commune's street grid: n x n nodes around its centre (streets `Rue n` east-west, `Avenue n` north-south)."""

    commune: str
    name: str
    lat0: float
    lon0: float
    n: int

    def node(self, i: int, j: int) -> tuple[float, float]:
        return round(self.lat0 + i * GRID_DLAT, 6), round(self.lon0 + j * GRID_DLON, 6)

    def streets(self) -> list[dict[str, Any]]:
        """GeoJSON features (LineStrings, properties name and commune), as `vehicle streets` reads them."""
        out = []
        for k in range(self.n):
            for name, pts in ((f"Rue {k + 1}", [self.node(k, j) for j in range(self.n)]),
                              (f"Avenue {k + 1}", [self.node(i, k) for i in range(self.n)])):
                out.append({"type": "Feature", "properties": {"name": f"{name}, {self.name}", "commune": self.commune},
                            "geometry": {"type": "LineString", "coordinates": [[lon, lat] for lat, lon in pts]}})
        return out


@dataclass(frozen=True, slots=True)
class VehiclePlan:
    name: str
    service: str  # police | waste
    grid: Grid
    depot: tuple[int, int]  # its grid node


@dataclass(frozen=True, slots=True)
class ParkingStreet:
    id: str
    name: str
    commune: str
    lat: float
    lon: float
    runs: tuple[tuple[str, int, str], ...]  # (zone category, spaces, sensor model)

    def spaces(self) -> list[str]:
        n = sum(count for _, count, _ in self.runs)
        return [f"pk-{self.id}-{k:03d}" for k in range(1, n + 1)]


@dataclass(frozen=True, slots=True)
class Assets:
    """How many of each the city has (the metropolis: 113 junctions, 269 cameras, 205 vehicles)."""

    junctions: int = 113
    cameras: int = 269
    vehicles: int = 205
    parking_spaces: int = 5000
    police_share: float = 0.3


NONE = Assets(0, 0, 0, 0)


def grid_of(commune: dict[str, Any]) -> Grid:
    n = max(4, min(14, round(math.sqrt(commune["population"]) / 30)))
    return Grid(commune["insee"], commune["name"], commune["lat"] - (n - 1) / 2 * GRID_DLAT,
                commune["lon"] - (n - 1) / 2 * GRID_DLON, n)


def plan_junction(jid: str, rng: random.Random) -> Junction:
    """Four approaches (V1..V4), one or two lanes each, a speed pair on the first lane of V1."""
    dets: list[Detector] = []
    peak = rng.uniform(350, 800)
    for a in range(1, 5):
        approach, morning = f"V{a}", a % 2 == 1
        for lane in range(1, (2 if rng.random() < 0.5 else 1) + 1):
            stem = f"{'NSEW'[a - 1]}{lane}"
            pair = a == 1 and lane == 1
            dets.append(Detector(stem, approach, lane, True, pair, morning, peak * rng.uniform(0.7, 1.1)))
            if pair:
                dets.append(Detector(stem + "b", approach, lane, False, False, morning, dets[-1].peak_veh_h))
    return Junction(jid, tuple(dets))


def parking_streets(commune: dict[str, Any], spaces: int, rng: random.Random) -> list[ParkingStreet]:
    out: list[ParkingStreet] = []
    left, k = spaces, 0
    while left > 0:
        k += 1
        n = min(left, rng.randint(12, 40))
        left -= n
        runs: list[tuple[str, int, str]] = []
        model = SENSOR_MODELS[k % 2]
        special = min(n - 1, 2) if n > 4 else 0  # a delivery bay and a disabled bay where the street is long enough
        main = "blue_zone" if k % 3 else "pay_zone"
        runs.append((main, n - special, model))
        if special:
            runs.append(("delivery_bay", 1, model))
        if special > 1:
            runs.append(("disabled_bay", 1, model))
        lat = commune["lat"] + rng.gauss(0, 0.004)
        lon = commune["lon"] + rng.gauss(0, 0.006)
        out.append(ParkingStreet(f"c{commune['insee']}-s{k:03d}", f"Rue {k} (stationnement), {commune['name']}",
                                 commune["insee"], round(lat, 6), round(lon, 6), tuple(runs)))
    return out


def write_parking_inventory(streets_by_gateway: dict[str, list[ParkingStreet]], folder: Path) -> Path:
    """One TOML file a commune (collector.parking.inventory's format); the folder for $CITYGATE_PARKING."""
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob("*.toml"):
        old.unlink()
    by_commune: dict[str, list[tuple[str, ParkingStreet]]] = {}
    for gateway, streets in streets_by_gateway.items():
        for s in streets:
            by_commune.setdefault(s.commune, []).append((gateway, s))
    for insee, items in sorted(by_commune.items()):
        lines = [f"# written by citygate-sim city: commune {insee}", f'commune = "{insee}"',
                 f'gateway = "{items[0][0]}"', ""]
        for category, limit in ZONES:
            lines += ["[[zone]]", f'id = "z{insee}-{category.replace("_", "-")}"', f'name = "{category} {insee}"',
                      f'category = "{category}"', *([f"max_stay_min = {limit}"] if limit else []), ""]
        for gateway, s in items:
            lines += ["[[street]]", f'id = "{s.id}"', f'name = "{s.name}"', f'gateway = "{gateway}"',
                      f"lat = {s.lat}", f"lon = {s.lon}"]
            for category, count, model in s.runs:
                lines += ["  [[street.spaces]]", f'  zone = "z{insee}-{category.replace("_", "-")}"',
                          f"  count = {count}", f'  model = "{model}"']
            lines.append("")
        (folder / f"{insee}.toml").write_text("\n".join(lines), encoding="utf-8")
    return folder


# -- behaviour ----------------------------------------------------------------------------------------


def _chance(rng: random.Random, rate_a_year: float, dt_s: float) -> bool:
    return rate_a_year > 0 and rng.random() < rate_a_year * dt_s / YEAR_S


def _lasting(rng: random.Random, lo_s: float, hi_s: float) -> int:
    """A duration in ms, log-uniform between lo and hi seconds (most faults short, a few long)."""
    return int(math.exp(rng.uniform(math.log(lo_s), math.log(hi_s))) * 1000)


@dataclass
class JunctionSim:
    junction: Junction
    rng: random.Random
    model: DemandModel = field(init=False)
    lanes: dict[str, Lane] = field(init=False)
    done: int | None = None  # the last interval index journalled
    faults: dict[str, tuple[str, int]] = field(default_factory=dict)  # detector -> (code, until sim ms)
    signal_fault: tuple[str, int] | None = None  # (code, until)
    plan: int = 0

    def __post_init__(self) -> None:
        j = self.junction
        self.model = DemandModel([], tz=PARIS, seed=zlib.crc32(j.id.encode()))  # the same counts every run
        self.lanes = {d.id: Lane(d.approach, d.lane, d.peak_veh_h, 50, d.morning) for d in j.detectors}

    def tick(self, gw: Gateway, now: int, dt_s: float) -> None:
        r, j = gw.city.rates, self.junction
        length = max(1, int(r.counts_interval_s))
        self._faults(gw, now, dt_s)
        last = now // 1000 // length - 1  # the newest interval completed
        first = last if self.done is None else max(self.done + 1, last - math.ceil(dt_s / length) - 1)
        for idx in range(first, last + 1):
            end = (idx + 1) * length * 1000
            for d in j.detectors:
                gw.city.counters.counts += 1
                gw._record({"kind": "sample", "device": f"{j.bus}.{d.id}", "ts_ms": end,
                            "values": self._values(d, idx, length)})
        self.done = last
        plan = 1 if _local_hour(now) < 6 or _local_hour(now) >= 22 else 3 if _local_hour(now) in (7, 8, 17, 18) else 2
        mode = "yellow_flash" if self.signal_fault and self.signal_fault[0] == "hardware_error" else "normal"
        self.plan = plan
        gw._record({"kind": "sample", "device": j.bus, "ts_ms": now, "values": {
            "mode": mode, "plan": plan if mode == "normal" else 0, "stage": self.rng.randint(1, 4) if mode == "normal"
            else 0, "interstage": False, "cycle_second": self.rng.randrange(90), "central": False,
            "plan_target": plan, "position_target": "normal",
            "alarms": 0 if self.signal_fault is None else 1}})

    def _values(self, d: Detector, idx: int, length: int) -> dict[str, Any]:
        key = (d.approach, d.lane, idx)
        li = self.model.interval(self.lanes[d.id], idx, length)
        self.model.truth.pop(key, None)  # the model keeps every interval otherwise: a long run would grow
        fault = self.faults.get(d.id)
        count, occupancy = li.count, li.occupancy_permille / 10
        if fault is not None:
            count, occupancy = 0, 100.0 if fault[0] == "detector_stuck_on" else 0.0
        return {wire.JUNCTION: self.junction.id, wire.APPROACH: d.approach, wire.LANE: d.lane,
                wire.LANE_COUNT: d.lane_count, wire.INTERVAL: idx, wire.INTERVAL_S: length, wire.COUNT: count,
                wire.OCCUPANCY: occupancy,
                wire.SPEED: None if not d.speed or fault or li.speed_dkmh is None else li.speed_dkmh / 10,
                wire.LIGHT: li.light if d.speed and not fault else None,
                wire.HEAVY: li.heavy if d.speed and not fault else None,
                wire.FAULT: fault[0] if fault else None}

    def _faults(self, gw: Gateway, now: int, dt_s: float) -> None:
        r, j, rng = gw.city.rates, self.junction, self.rng
        for d in j.detectors:
            device = f"{j.bus}.{d.id}"
            fault = self.faults.get(d.id)
            detail: dict[str, Any] = {"detector": d.id, "approach": d.approach, "lane": d.lane, "junction": j.id}
            if fault is not None and now >= fault[1]:
                del self.faults[d.id]
                gw.event(device, now, fault[0] + "_restored", "info", **detail)
            elif fault is None and _chance(rng, r.detector_fault_rate, dt_s):
                code = "detector_stuck_off" if rng.random() < 0.7 else "detector_stuck_on"
                self.faults[d.id] = (code, now + _lasting(rng, 3600, 5 * 86400))
                gw.event(device, now, code, "minor", **detail, for_s=int(r.counts_interval_s) * 5)
        if self.signal_fault is not None and now >= self.signal_fault[1]:
            gw.event(j.bus, now, self.signal_fault[0] + "_cleared")
            self.signal_fault = None
        elif self.signal_fault is None and _chance(rng, r.signal_fault_rate, dt_s):
            if rng.random() < 0.7:
                self.signal_fault = ("lamp_failure", now + _lasting(rng, 1800, 86400))
                gw.event(j.bus, now, "lamp_failure", "major", groups=[f"V{rng.randint(1, 4)}"])
            else:
                self.signal_fault = ("hardware_error", now + _lasting(rng, 1800, 6 * 3600))
                gw.event(j.bus, now, "hardware_error", "critical", junction=j.id)


def _local_hour(ts_ms: int) -> int:
    return datetime.fromtimestamp(ts_ms / 1000, PARIS).hour


@dataclass
class CameraSim:
    """The cabinet's `cameras` bus: its cameras' health as the agent's camera driver reports it."""

    cameras: tuple[str, ...]
    rng: random.Random
    identified: bool = False
    last_sample: int = 0
    down: dict[str, int] = field(default_factory=dict)  # camera -> since (sim ms)
    down_until: dict[str, int] = field(default_factory=dict)
    dark: tuple[int, int] | None = None  # (since, until)
    stream: dict[str, int] = field(default_factory=dict)  # camera -> stream unavailable until
    identity: dict[str, tuple[str, str, str]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.identity = {c: self.rng.choice(CAMERA_MODELS) for c in self.cameras}

    def reachable(self, cam: str) -> bool:
        return self.dark is None and cam not in self.down

    def status(self, cam: str) -> str:
        """What the collector should show of the camera (collector.cameras.views)."""
        if self.dark is not None:
            return "dark"
        return "unreachable" if cam in self.down else "faulty" if cam in self.stream else "ok"

    def tick(self, gw: Gateway, now: int, dt_s: float) -> None:
        r, rng = gw.city.rates, self.rng
        if not self.identified:
            self.identified = True
            for cam in self.cameras:
                m, model, fw = self.identity[cam]
                gw.event(cam, now, "camera_identified", manufacturer=m, model=model, firmware=fw, streams=2,
                         onvif=True)
        self._dark(gw, now, dt_s)
        for cam in self.cameras:
            if cam in self.down and now >= self.down_until[cam]:
                since = self.down.pop(cam)
                del self.down_until[cam]
                gw.event(cam, now, "camera_unreachable_cleared", since_ms=since)
            elif cam not in self.down and self.dark is None and _chance(rng, r.camera_down_rate, dt_s):
                self.down[cam] = now
                self.down_until[cam] = now + _lasting(rng, 1800, 2 * 86400)
                gw.event(cam, now, "camera_unreachable", "major", reason="no answer", since_ms=now)
            if cam in self.stream and now >= self.stream[cam]:
                del self.stream[cam]
                gw.event(cam, now, "camera_stream_unavailable_cleared", stream="main")
            elif cam not in self.stream and self.reachable(cam) and _chance(rng, r.camera_down_rate / 3, dt_s):
                self.stream[cam] = now + _lasting(rng, 600, 86400)
                gw.event(cam, now, "camera_stream_unavailable", "major", stream="main", rtsp_status=503,
                         reason="DESCRIBE answered 503")
        if now - self.last_sample < r.camera_sample_s * 1000:
            return
        self.last_sample = now
        for k, cam in enumerate(self.cameras):
            up = self.reachable(cam)
            m, model, fw = self.identity[cam]
            values: dict[str, Any] = {"reachable": up, "streams": 2}
            if up:
                values.update(streams_ok=1 if cam in self.stream else 2,
                              clock_drift_s=round(rng.gauss(0, 0.3), 2), manufacturer=m, model=model, firmware=fw)
            else:
                values["streams_ok"] = 0
            gw._record({"kind": "sample", "device": cam, "ts_ms": now + k, "values": values})

    def _dark(self, gw: Gateway, now: int, dt_s: float) -> None:
        if self.dark is not None and now >= self.dark[1]:
            first = next((c for c in self.cameras if c not in self.down), self.cameras[0])
            gw.event("cameras", now, "cameras_dark_cleared", first_back=first, since_ms=self.dark[0])
            self.dark = None
        elif (self.dark is None and len(self.cameras) >= 2
              and _chance(self.rng, gw.city.rates.camera_dark_rate, dt_s)):
            self.dark = (now, now + _lasting(self.rng, 1800, 86400))
            gw.event("cameras", now, "cameras_dark", "critical", cameras=len(self.cameras),
                     likely="the cabinet's power or its network switch", since_ms=now)


@dataclass
class Space:
    id: str
    occupied: bool
    ts: int = 0  # its sensor's last uplink (sim ms)
    fcnt: int = 0
    heartbeat_at: int = 0
    silent_until: int | None = None
    rssi: float = -100.0


@dataclass
class ParkingSim:
    """The spaces one cabinet's LoRaWAN bus hears."""

    spaces: list[Space]
    rng: random.Random
    started: bool = False

    @classmethod
    def of(cls, ids: Sequence[str], rng: random.Random) -> ParkingSim:
        return cls([Space(s, False, rssi=round(rng.uniform(-115, -85), 1)) for s in ids], rng)

    def occupied(self) -> dict[str, str]:
        """Each space's state as its last uplink said it (the ground truth the collector should show)."""
        return {s.id: "unknown" if s.silent_until is not None else "occupied" if s.occupied else "free"
                for s in self.spaces}

    def _sample(self, gw: Gateway, s: Space, ts: int, uplink: str) -> None:
        s.ts, s.fcnt = ts, s.fcnt + 1
        gw._record({"kind": "sample", "device": s.id, "ts_ms": ts, "values": {
            "uplink": uplink, "fcnt": s.fcnt, "parking_state": "occupied" if s.occupied else "free",
            "rssi_dbm": round(s.rssi + self.rng.gauss(0, 2), 1), "snr_db": round(self.rng.uniform(-5, 9), 1)}})
        gw.city.counters.parking += 1

    def tick(self, gw: Gateway, now: int, dt_s: float) -> None:
        from simulators.parking import target_occupancy

        r, rng = gw.city.rates, self.rng
        target = min(0.95, max(0.05, target_occupancy(now)))
        heartbeat_ms = int(r.parking_heartbeat_s * 1000)
        if not self.started:
            self.started = True
            for k, s in enumerate(self.spaces):
                s.occupied = rng.random() < target
                s.heartbeat_at = now + rng.randrange(heartbeat_ms)
                self._sample(gw, s, now - 1000 + k % 1000, "startup")
            return
        leave = min(0.9, dt_s / r.parking_stay_s)
        arrive = min(0.9, leave * target / (1 - target))
        for s in self.spaces:
            if s.silent_until is not None:
                if now < s.silent_until:
                    continue
                s.silent_until = None
                ts = max(s.ts + 1, now - 500)
                gw.event(s.id, ts, "sensor_back")
                self._sample(gw, s, ts + 1, "heartbeat")
                continue
            if _chance(rng, r.sensor_silent_rate, dt_s):
                s.silent_until = now + _lasting(rng, 6 * 3600, 3 * 86400)
                gw.event(s.id, now, "sensor_silent", "minor", silent_s=r.parking_heartbeat_s,
                         heartbeat_s=r.parking_heartbeat_s)
                gw._record({"kind": "sample", "device": s.id, "ts_ms": now, "values": {"parking_state": "unknown"}})
                s.ts = now
                continue
            if rng.random() < (leave if s.occupied else arrive):
                s.occupied = not s.occupied
                self._sample(gw, s, max(s.ts + 1, now - int(rng.uniform(0, dt_s) * 1000)), "status")
            if now >= s.heartbeat_at:
                s.heartbeat_at = now + heartbeat_ms
                self._sample(gw, s, max(s.ts + 1, now), "heartbeat")


@dataclass
class VehicleSim:
    """A service vehicle's GNSS bus: trips along its commune's streets in its service's working hours."""

    plan: VehiclePlan
    rng: random.Random
    t: int | None = None  # simulated ms reached
    node: tuple[int, int] = (0, 0)
    path: list[tuple[int, int]] = field(default_factory=list)
    frac: float = 0.0  # along the current segment
    trip: dict[str, Any] | None = None
    rest_until: int = 0  # at the depot (between trips) or stopped (a bin, a check)
    last_pos: int = 0
    last_heading: float | None = None
    position: tuple[int, float, float] | None = None  # the last one sent: (ts, lat, lon)

    STEP_S = 5

    def __post_init__(self) -> None:
        self.node = self.plan.depot

    def _hours(self, gw: Gateway) -> tuple[float, float]:
        r = gw.city.rates
        return r.police_hours if self.plan.service == "police" else r.waste_hours

    def working(self, gw: Gateway, ts: int) -> bool:
        lo, hi = self._hours(gw)
        local = datetime.fromtimestamp(ts / 1000, PARIS)
        if self.plan.service == "waste" and local.weekday() == 6 and (lo, hi) != (0, 24):
            return False  # no refuse round on Sundays
        h = local.hour + local.minute / 60
        return lo <= h < hi

    def tick(self, gw: Gateway, now: int, dt_s: float) -> None:
        if self.t is None:
            self.t = now - int(dt_s * 1000)
        while self.t + self.STEP_S * 1000 <= now:
            self.t += self.STEP_S * 1000
            self._step(gw, self.t)

    def _step(self, gw: Gateway, ts: int) -> None:
        if self.trip is None:
            if ts >= self.rest_until and self.working(gw, ts):
                self._start(gw, ts)
            return
        if ts < self.rest_until:
            self.trip["idle_s"] += self.STEP_S
            return
        if not self.path:
            self._end(gw, ts)
            return
        police = self.plan.service == "police"
        speed = self.rng.uniform(25, 45) if police else self.rng.uniform(12, 25)
        seg_m = 222.0
        self.frac += speed / 3.6 * self.STEP_S / seg_m
        self.trip["distance_m"] += speed / 3.6 * self.STEP_S
        nxt = self.path[0]
        heading = _heading(self.node, nxt)
        if self.frac >= 1.0:
            self.frac = 0.0
            self.node = self.path.pop(0)
            lat, lon = self.plan.grid.node(*self.node)
            turned = self.last_heading is not None and heading != self.last_heading
            if self.path and self.rng.random() < (0.03 if police else 0.8):
                stop_s = self.rng.uniform(20, 40) if not police else self.rng.uniform(120, 900)
                self.rest_until = ts + int(stop_s * 1000)
                if not police:
                    self.trip["cycles"] += 1
                    gw.event("gps", ts, "bin_lift", started_ms=ts, duration_s=round(stop_s, 1),
                             trip=self.trip["trip"], lat=lat, lon=lon)
                self._position(gw, ts, lat, lon, 0.0, heading)
            elif turned or ts - self.last_pos >= 60_000:
                self._position(gw, ts, lat, lon, speed, heading)
            self.last_heading = heading
        elif ts - self.last_pos >= 60_000:
            a, b = self.plan.grid.node(*self.node), self.plan.grid.node(*nxt)
            lat, lon = a[0] + (b[0] - a[0]) * self.frac, a[1] + (b[1] - a[1]) * self.frac
            self._position(gw, ts, round(lat, 6), round(lon, 6), speed, heading)

    def _position(self, gw: Gateway, ts: int, lat: float, lon: float, speed: float, heading: float) -> None:
        self.last_pos = ts
        self.position = (ts, lat, lon)
        gw.city.counters.positions += 1
        gw._record({"kind": "sample", "device": "gps", "ts_ms": ts, "values": {
            "latitude_deg": lat, "longitude_deg": lon, "speed_kmh": round(speed, 1), "heading_deg": heading,
            "altitude_m": round(245 + self.rng.uniform(-3, 3), 1), "hdop": round(self.rng.uniform(0.7, 1.6), 1),
            "satellites": self.rng.randint(8, 15), "fix_quality": "ok", "in_trip": self.trip is not None}})

    def _start(self, gw: Gateway, ts: int) -> None:
        n = self.plan.grid.n
        walk: list[tuple[int, int]] = []
        at = self.node
        steps = self.rng.randint(12, 40) if self.plan.service == "waste" else self.rng.randint(30, 90)
        for _ in range(steps):
            i, j = at
            options = [(a, b) for a, b in ((i + 1, j), (i - 1, j), (i, j + 1), (i, j - 1)) if 0 <= a < n and 0 <= b < n
                       and (not walk or (a, b) != (walk[-2] if len(walk) > 1 else self.node))]
            at = self.rng.choice(options)
            walk.append(at)
        # back to the depot along the grid: first the rows, then the columns
        (i, j), (di, dj) = at, self.plan.depot
        while i != di:
            i += 1 if di > i else -1
            walk.append((i, j))
        while j != dj:
            j += 1 if dj > j else -1
            walk.append((i, j))
        self.path, self.frac, self.last_heading = walk, 0.0, None
        lat, lon = self.plan.grid.node(*self.node)
        self.trip = {"trip": ts, "started_ms": ts, "distance_m": 0.0, "idle_s": 0, "cycles": 0, "start": (lat, lon)}
        gw.event("gps", ts, "trip_started", trip=ts, by="speed", lat=lat, lon=lon)
        self._position(gw, ts + 1, lat, lon, 10.0, _heading(self.node, walk[0]) if walk else 0.0)

    def _end(self, gw: Gateway, ts: int) -> None:
        trip = self.trip
        assert trip is not None
        self.trip = None
        lat, lon = self.plan.grid.node(*self.node)
        self._position(gw, ts, lat, lon, 0.0, self.last_heading or 0.0)
        gw.event("gps", ts + 1, "trip_ended", trip=trip["trip"], started_ms=trip["started_ms"], ended_ms=ts,
                 duration_s=round((ts - trip["started_ms"]) / 1000), distance_m=round(trip["distance_m"]),
                 idle_s=trip["idle_s"], cycles=trip["cycles"], start_lat=trip["start"][0], start_lon=trip["start"][1],
                 lat=lat, lon=lon)
        gw.city.counters.trips += 1
        self.rest_until = ts + int(self.rng.uniform(15, 60) * 60_000)


def _heading(a: tuple[int, int], b: tuple[int, int]) -> float:
    di, dj = b[0] - a[0], b[1] - a[1]
    return 0.0 if di > 0 else 180.0 if di < 0 else 90.0 if dj > 0 else 270.0
